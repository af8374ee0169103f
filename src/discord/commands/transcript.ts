/**
 * `/parley transcript [format]`: the conversation's export, attached to the reply. Transcripts (issue 6) are
 * not in this build yet: `transcriptsNotAvailable` answers an honest "not available yet". Wiring them is one
 * function: a TranscriptSource that runs createTranscript(input: { conversationId, format }) through the
 * transport, reads the file (GET /transcripts/:id/download, or the storage layer) and returns it.
 */
import { AttachmentBuilder, MessageFlags } from "discord.js";
import { NOT_BOUND, whisper, type Subcommand, type TranscriptSource } from "./command";

export class TranscriptsUnavailableError extends Error {
  override name = "TranscriptsUnavailableError";
}

export const transcriptsNotAvailable: TranscriptSource = async () => {
  throw new TranscriptsUnavailableError("transcripts are not part of this build");
};

export const transcript: Subcommand = {
  name: "transcript",
  define: (sub) =>
    sub
      .setName("transcript")
      .setDescription("Get the conversation as a file")
      .addStringOption((option) =>
        option.setName("format").setDescription("File format (default JSON)").addChoices({ name: "JSON", value: "JSON" }, { name: "CSV", value: "CSV" }),
      ),

  async execute(ctx) {
    if (!ctx.binding) return void (await whisper(ctx, NOT_BOUND));
    const format = ctx.interaction.options.getString("format") === "CSV" ? "CSV" : "JSON";
    let file;
    try {
      file = await ctx.transcripts(ctx.transport, ctx.binding.conversationId, format);
    } catch (error) {
      if (!(error instanceof TranscriptsUnavailableError)) throw error;
      return void (await whisper(ctx, "Transcripts are not available on this Parley server yet."));
    }
    await ctx.interaction.reply({
      content: `The conversation as ${format}:`,
      files: [new AttachmentBuilder(file.data, { name: file.name })],
      flags: MessageFlags.Ephemeral,
    });
  },
};
