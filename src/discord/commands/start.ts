import { ErrorCode } from "../../graphql/errors";
import { OperationError } from "../transport";
import { BINDING, START, type BindingData } from "../operations";
import { NOT_ENABLED, whisper, type Subcommand } from "./command";

export const start: Subcommand = {
  name: "start",
  binds: true,
  define: (sub) =>
    sub
      .setName("start")
      .setDescription("Record this channel into a new Parley conversation")
      .addStringOption((option) => option.setName("title").setDescription("The conversation's title (default: the channel's name)").setMaxLength(200)),

  async execute(ctx) {
    const { interaction } = ctx;
    if (!(await ctx.channelEnabled())) return void (await whisper(ctx, NOT_ENABLED));
    if (ctx.binding) return void (await whisper(ctx, "Parley already records this channel (`/parley status`)."));
    const channelName = interaction.channel && "name" in interaction.channel ? interaction.channel.name : undefined;
    const input = {
      title: interaction.options.getString("title") ?? (channelName ? `#${channelName}` : `channel ${interaction.channelId}`),
      origin: "DISCORD",
      ownerId: await ctx.actor(),
      discordGuildId: interaction.guildId,
      discordChannelId: interaction.channelId,
    };
    let conversation: BindingData["conversation"];
    try {
      ({ createConversation: conversation } = await ctx.transport.run<{ createConversation: BindingData["conversation"] }>(START, { input }));
    } catch (error) {
      if (!(error instanceof OperationError && error.code === ErrorCode.CONFLICT)) throw error;
      // Bound meanwhile (by another command, or through the API): adopt that binding.
      const { discordBinding } = await ctx.transport.run<{ discordBinding: BindingData | null }>(BINDING, { channelId: interaction.channelId });
      if (discordBinding) ctx.bind(discordBinding);
      return void (await whisper(ctx, "Parley already records this channel (`/parley status`)."));
    }
    ctx.bind({ channelId: interaction.channelId, guildId: interaction.guildId, lastRelayedMessageId: null, resumeAfterSeq: 0, conversation });
    await interaction.reply(
      `Parley now records this channel into the conversation **${conversation.title}** (\`${conversation.id}\`). ` +
        "Messages sent here from now on are stored, and replies written by the assistant are posted here. `/parley stop` ends it.",
    );
  },
};
