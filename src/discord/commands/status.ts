import { STATUS } from "../operations";
import { NOT_BOUND, whisper, type Subcommand } from "./command";

interface StatusData {
  conversation: { id: string; title: string; status: string; messageCount: number; createdAt: string; updatedAt: string; owner: { displayName: string } };
}

/** Discord renders <t:seconds:R> as a relative time in the reader's own time zone. */
const when = (iso: string) => `<t:${Math.floor(new Date(iso).getTime() / 1000)}:R>`;

export const status: Subcommand = {
  name: "status",
  define: (sub) => sub.setName("status").setDescription("Show whether Parley records this channel, and into which conversation"),

  async execute(ctx) {
    if (!ctx.binding) return void (await whisper(ctx, NOT_BOUND));
    const { conversation: c } = await ctx.transport.run<StatusData>(STATUS, { id: ctx.binding.conversationId });
    await whisper(
      ctx,
      `Parley records this channel into **${c.title}** (\`${c.id}\`), started by ${c.owner.displayName} ${when(c.createdAt)}: ` +
        `${c.messageCount} messages, the last ${when(c.updatedAt)}.`,
    );
  },
};
