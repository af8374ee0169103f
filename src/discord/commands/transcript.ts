/**
 * `/parley transcript [format]`: the conversation's export (createTranscript, run through the transport like
 * every other operation), attached to an ephemeral reply. The requestId names the format and the number of
 * messages, so asking again before anything new is said returns the same transcript instead of a new export;
 * a conversation too large to finish within the interaction's 3 seconds (a background export) is ready when
 * asked again. Files over Discord's attachment limit are refused with the way to download them instead.
 */
import { AttachmentBuilder, MessageFlags } from "discord.js";
import { NOT_BOUND, whisper, type Subcommand, type TranscriptSource } from "./command";

/** Discord's attachment limit for bots in servers without boosts. */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;

/** A reason the file cannot be attached; its message is the reply. */
export class TranscriptUnavailableError extends Error {
  override name = "TranscriptUnavailableError";
}

const COUNT = `query($c: UUID!) { conversation(id: $c) { messageCount } }`;
const CREATE = `mutation($input: CreateTranscriptInput!) { createTranscript(input: $input) { id status error downloadPath } }`;

interface CreatedTranscript {
  id: string;
  status: "PENDING" | "READY" | "FAILED";
  error: string | null;
  downloadPath: string | null;
}

export const transcriptsFromParley: TranscriptSource = async (transport, conversationId, format) => {
  const { conversation } = await transport.run<{ conversation: { messageCount: number } }>(COUNT, { c: conversationId });
  const requestId = `discord-${format.toLowerCase()}-${conversation.messageCount}`;
  const { createTranscript: created } = await transport.run<{ createTranscript: CreatedTranscript }>(CREATE, {
    input: { conversationId, format, requestId },
  });
  if (created.status === "PENDING") throw new TranscriptUnavailableError("The export is being written; ask again in a minute.");
  if (created.status === "FAILED") throw new TranscriptUnavailableError(`The export failed: ${created.error ?? "unknown error"}.`);
  const file = await transport.transcriptFile(created.id, MAX_ATTACHMENT_BYTES);
  if (!file) {
    throw new TranscriptUnavailableError(`The export is larger than Discord allows; download it from Parley: GET ${created.downloadPath} (transcript ${created.id}).`);
  }
  return file;
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
      if (!(error instanceof TranscriptUnavailableError)) throw error;
      return void (await whisper(ctx, error.message));
    }
    await ctx.interaction.reply({
      content: `The conversation as ${format}:`,
      files: [new AttachmentBuilder(file.data, { name: file.name })],
      flags: MessageFlags.Ephemeral,
    });
  },
};
