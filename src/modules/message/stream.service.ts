/**
 * Streamed replies. startMessage adds a STREAMING message; appendMessageChunk appends chunk `index` as a row
 * of its own (cheap: the text so far is never rewritten); completeMessage or failMessage folds the chunks into
 * the message's content, once, and drops them.
 *
 * Chunks must come in order. A retried chunk (an index already stored) is answered as stored when its text is
 * the same and is CONFLICT otherwise; a chunk ahead of the next index is refused with BAD_USER_INPUT naming
 * `expectedIndex`, so the worker resends from there. Holding early chunks back would hide a lost one until
 * completion; refusing makes the worker notice at once.
 */
import type { Knex } from "knex";
import type { Config, EncryptionConfig } from "../../config";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { isAdmin } from "../user/viewer";
import { publishMessageUpdated } from "../live/live.hub";
import { Message } from "./message.model";
import { MessageRole, MessageStatus } from "./message.enums";
import { addMessage, getMessage, recordMessageUsage, usageOf } from "./message.service";
import { messageText, storedContent, type StoredContent } from "./encryption";
import type { CompleteMessageInput, MessageChunk, StartMessageInput } from "./stream.input";

export function startMessage(ctx: Actor, input: StartMessageInput): Promise<Message> {
  return addMessage(ctx, { ...input, role: input.role ?? MessageRole.ASSISTANT, content: "" }, MessageStatus.STREAMING);
}

/** The message if the viewer wrote it (as its author, or as the service that sent it) or is an admin. */
async function ownStreamedMessage(ctx: Actor, id: string): Promise<Message> {
  const viewer = viewerOf(ctx);
  const message = await getMessage(ctx, id); // NOT_FOUND for messages the viewer cannot read
  const writer = message.sentBy ?? message.authorId;
  if (writer !== viewer.id && !isAdmin(viewer)) throw new ForbiddenError("Only the writer of a message can stream into it");
  return message;
}

class NotStreamingError extends ConflictError {
  constructor(status: string) {
    super(`The message is ${status.toUpperCase()}, no longer STREAMING`);
    this.extensions.reason = "MESSAGE_NOT_STREAMING";
  }
}

export type ChunkRow = StoredContent & { idx: number };

/** A stored chunk's text (its ciphertext is bound to the message's position and the chunk's index). */
export const chunkText = (encryption: EncryptionConfig | undefined, message: Message, row: ChunkRow) =>
  messageText(encryption, { ...row, conversationId: message.conversationId, seq: message.seq, chunk: row.idx });

export async function appendChunk(ctx: Actor, messageId: string, index: number, text: string): Promise<MessageChunk> {
  if (index < 0) throw new BadUserInputError("index must be 0 or more", { field: "index" });
  if (text.length > ctx.config.maxMessageLength) throw new BadUserInputError(`text must be at most ${ctx.config.maxMessageLength} characters`, { field: "text" });
  checkText(text, "text");
  const message = await ownStreamedMessage(ctx, messageId);
  const ack = { messageId, index, text };
  return ctx.db.knex.transaction(async (trx) => {
    // The row lock orders appenders: of two sending the same index, the second finds it taken.
    const bumped = await trx("messages")
      .where({ id: messageId, status: MessageStatus.STREAMING, chunkCount: index })
      .increment("chunkCount", 1);
    if (bumped) {
      await trx("message_chunks").insert({
        messageId,
        idx: index,
        ...storedContent(ctx.config.encryption, message.conversationId, message.seq, text, index),
      });
      await publishMessageUpdated(trx, message.conversationId, message.seq, index);
      return ack;
    }
    const current: { status: string; chunkCount: number } = await trx("messages").where({ id: messageId }).first("status", "chunkCount");
    if (!current) throw new NotFoundError("Message");
    if (index < current.chunkCount) {
      const stored: ChunkRow | undefined = await trx("message_chunks").where({ messageId, idx: index }).first();
      // Folded into the content by completion: a late retry of a chunk that made it is acknowledged.
      if (!stored || chunkText(ctx.config.encryption, message, stored) === text) return ack;
      throw new ConflictError(`Chunk ${index} was already stored with other text`);
    }
    if (current.status !== MessageStatus.STREAMING) throw new NotStreamingError(current.status);
    throw new BadUserInputError(`Chunk ${index} is out of order: the next chunk is ${current.chunkCount}`, {
      reason: "CHUNK_OUT_OF_ORDER",
      expectedIndex: current.chunkCount,
    });
  });
}

export interface StreamedText {
  text: string;
  chunks: number;
}

/** The text streamed into each message so far and how many chunks it took (Message.content while STREAMING). */
export async function streamedTexts(knex: Knex, encryption: EncryptionConfig | undefined, messages: readonly Message[]): Promise<StreamedText[]> {
  const rows: (ChunkRow & { messageId: string })[] = await knex("message_chunks")
    .whereIn("message_id", messages.map((message) => message.id))
    .orderBy(["message_id", "idx"]);
  return messages.map((message) => {
    const mine = rows.filter((row) => row.messageId === message.id);
    return { text: mine.map((row) => chunkText(encryption, message, row)).join(""), chunks: mine.length };
  });
}

/**
 * The chunks of several STREAMING messages from a given index on (message id → first index wanted), in one
 * statement for all of them, each message's in index order.
 */
export async function chunksFrom(knex: Knex, from: ReadonlyMap<string, number>): Promise<Map<string, ChunkRow[]>> {
  const rows: (ChunkRow & { messageId: string })[] = await knex("message_chunks as ch")
    .joinRaw("join unnest(?::uuid[], ?::int[]) as f(message_id, idx) on f.message_id = ch.message_id and ch.idx >= f.idx", [
      [...from.keys()],
      [...from.values()],
    ])
    .orderBy(["ch.message_id", "ch.idx"])
    .select("ch.*");
  const byMessage = new Map<string, ChunkRow[]>();
  for (const row of rows) {
    const chunks = byMessage.get(row.messageId);
    if (chunks) chunks.push(row);
    else byMessage.set(row.messageId, [row]);
  }
  return byMessage;
}

/** Ends the stream: the chunks become the content. Idempotent for the same ending; the other one is CONFLICT. */
async function finish(
  ctx: Actor,
  id: string,
  status: MessageStatus,
  patch: (message: Message) => Record<string, unknown>,
  ended?: (trx: Knex.Transaction, done: Message) => Promise<void>,
): Promise<Message> {
  await ownStreamedMessage(ctx, id);
  return endStream(ctx.db.knex, ctx.config, id, status, patch, ended);
}

/** finish() without the writer check: for the server itself (stale streams). */
async function endStream(
  knex: Knex,
  config: Pick<Config, "encryption" | "maxMessageLength">,
  id: string,
  status: MessageStatus,
  patch: (message: Message) => Record<string, unknown>,
  ended?: (trx: Knex.Transaction, done: Message) => Promise<void>,
): Promise<Message> {
  return knex.transaction(async (trx) => {
    const message = await Message.query(trx).findById(id).forUpdate();
    if (!message) throw new NotFoundError("Message");
    if (message.status === status) return message;
    if (message.status !== MessageStatus.STREAMING) throw new NotStreamingError(message.status);
    let [{ text }] = await streamedTexts(trx, config.encryption, [message]);
    const characters = [...text];
    if (characters.length > config.maxMessageLength) {
      if (status === MessageStatus.COMPLETE) {
        throw new BadUserInputError(`The streamed text is over ${config.maxMessageLength} characters; fail the message instead`);
      }
      text = characters.slice(0, config.maxMessageLength).join(""); // a failed reply keeps what fits
    }
    const [done] = (await Message.query(trx)
      .patch({ status, ...storedContent(config.encryption, message.conversationId, message.seq, text), ...patch(message) })
      .where({ id })
      .returning("*")) as unknown as Message[];
    await trx("message_chunks").where({ messageId: id }).delete();
    await publishMessageUpdated(trx, message.conversationId, message.seq);
    await ended?.(trx, done); // only when it ends now: a repeated ending returned above and records nothing
    return done;
  });
}

/** With usage (and a model named at startMessage), the reply's model call goes on the ledger in the same transaction. */
export function completeMessage(ctx: Actor, id: string, usage: CompleteMessageInput = {}): Promise<Message> {
  const fields = {
    promptTokens: usage.promptTokens ?? null,
    completionTokens: usage.completionTokens ?? null,
    costUsd: usage.costUsd ?? null,
    latencyMs: usage.latencyMs ?? null,
  };
  return finish(ctx, id, MessageStatus.COMPLETE, () => fields, async (trx, done) => {
    const entry = usageOf(ctx, { ...fields, role: done.role, model: done.model, conversationId: done.conversationId });
    if (!entry) return;
    const conversation: { ownerId: string; discordGuildId: string | null } = await trx("conversations")
      .where({ id: done.conversationId })
      .first("ownerId", "discordGuildId");
    await recordMessageUsage(trx, done, entry, conversation, null);
  });
}

/** The text so far is kept; `error` goes into metadata.error. */
export function failMessage(ctx: Actor, id: string, error: string): Promise<Message> {
  checkText(error, "error");
  if (error.length > 2000) throw new BadUserInputError("error must be at most 2000 characters", { field: "error" });
  return finish(ctx, id, MessageStatus.FAILED, (message) => ({ metadata: { ...message.metadata, error } }));
}

/** STREAMING messages that got no chunk for `timeoutSeconds`. */
const staleStreams = (knex: Knex, timeoutSeconds: number) =>
  knex("messages")
    .where("status", MessageStatus.STREAMING)
    .where("updated_at", "<", knex.raw("now() - make_interval(secs => ?)", [timeoutSeconds]));

/**
 * Fails STREAMING messages that got no chunk for `timeoutSeconds` (their worker crashed or lost them), so no
 * reply stays "typing…" forever. Safe to run in every process at once: each message is ended under its row
 * lock, once. Returns how many it failed.
 *
 * The list is read without locks, so each message is checked again under its lock: a chunk or an ending that
 * committed in between (a writer back just in time, an append that held the lock) keeps the message as it is.
 */
export async function failStaleStreams(knex: Knex, config: Pick<Config, "encryption" | "maxMessageLength">, timeoutSeconds: number): Promise<number> {
  const stale: { id: string }[] = await staleStreams(knex, timeoutSeconds).orderBy("updated_at").limit(100).select("id");
  const error = `The stream timed out: no chunk for ${timeoutSeconds} seconds`;
  let failed = 0;
  for (const { id } of stale) {
    await knex.transaction(async (trx) => {
      // FOR UPDATE waits for a writer holding the row and then tests the conditions on the row it committed.
      if (!(await staleStreams(trx, timeoutSeconds).where({ id }).forUpdate().first("id"))) return;
      await endStream(trx, config, id, MessageStatus.FAILED, (message) => ({ metadata: { ...message.metadata, error } }));
      failed++;
    });
  }
  return failed;
}
