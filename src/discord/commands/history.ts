import { HISTORY, type HistoryData } from "../operations";
import { DISCORD_MESSAGE_LIMIT } from "../split";
import { NOT_BOUND, whisper, type Subcommand } from "./command";

const DEFAULT_COUNT = 10;
const MAX_COUNT = 25;
/** Each message is shortened to this in the listing. */
const EXCERPT = 300;

/** One line per message, newest last; older lines are left out when they would not fit into one Discord message. */
export function historyText(data: HistoryData): string {
  const lines = data.conversation.messages.edges.map(({ node }) => {
    const who = node.role === "USER" ? (node.author?.displayName ?? "someone") : node.role.toLowerCase();
    const text = node.content.replace(/\s+/g, " ").trim();
    const shown = text === "" ? "*(deleted)*" : text.length > EXCERPT ? `${text.slice(0, EXCERPT - 1)}…` : text;
    return `\`#${node.seq}\` **${who}**: ${shown}`;
  });
  const header = `The last ${lines.length} of ${data.conversation.messageCount} messages:`;
  while (lines.length && [header, ...lines].join("\n").length > DISCORD_MESSAGE_LIMIT) lines.shift();
  return lines.length ? [header, ...lines].join("\n") : "The conversation has no messages yet.";
}

export const history: Subcommand = {
  name: "history",
  define: (sub) =>
    sub
      .setName("history")
      .setDescription("Show the latest messages Parley stored for this channel")
      .addIntegerOption((option) => option.setName("count").setDescription(`How many (default ${DEFAULT_COUNT})`).setMinValue(1).setMaxValue(MAX_COUNT)),

  async execute(ctx) {
    if (!ctx.binding) return void (await whisper(ctx, NOT_BOUND));
    const count = ctx.interaction.options.getInteger("count") ?? DEFAULT_COUNT;
    const data = await ctx.transport.run<HistoryData>(HISTORY, { id: ctx.binding.conversationId, count });
    await whisper(ctx, historyText(data));
  },
};
