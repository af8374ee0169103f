import { STOP } from "../operations";
import { NOT_BOUND, whisper, type Subcommand } from "./command";

export const stop: Subcommand = {
  name: "stop",
  binds: true,
  define: (sub) => sub.setName("stop").setDescription("Stop recording this channel and archive its conversation"),

  async execute(ctx) {
    if (!ctx.binding) return void (await whisper(ctx, NOT_BOUND));
    const { archiveConversation } = await ctx.transport.run<{ archiveConversation: { id: string; messageCount: number } }>(STOP, {
      id: ctx.binding.conversationId,
    });
    ctx.unbind();
    await ctx.interaction.reply(
      `Parley stopped recording this channel. The conversation \`${archiveConversation.id}\` is archived with ${archiveConversation.messageCount} messages.`,
    );
  },
};
