/**
 * Writing imported conversations. addMessage cannot be used: it stamps every message with the time of the
 * write, and an import must keep the source's times. So this writes the rows itself and keeps every invariant
 * addMessage keeps, in one transaction per batch:
 *   - seq 1, 2, 3 … without gaps, from the conversation's last_seq, under the conversation's row lock (FOR
 *     UPDATE), with last_seq and message_count bumped by the batch;
 *   - the content stored as addMessage stores it (encrypted, bound to its seq, when a key ring is set);
 *   - an ASSISTANT message naming its model with tokens or a cost goes on the usage ledger (recordMessageUsage:
 *     budgets and the cost roll-ups follow, in the period of the message's own time);
 *   - user_activity follows by itself: its triggers fire on the inserted rows and read their created_at, so
 *     the imported history counts where it happened;
 *   - live streams hear of the new messages (one NOTIFY per batch: a stream reads on from its last seq).
 *
 * Idempotency: the conversation's id is a UUID v5 of (owner, source, source id), so a second run finds the
 * conversation by primary key, and each message's requestId is derived from its source id, so the unique
 * (conversation_id, request_id) index tells which messages are there already. A run that stopped half-way left
 * whole batches (a prefix of the file's order); the next run skips them and appends the rest.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { Message } from "../message/message.model";
import { storedContent } from "../message/encryption";
import { MessageRole, MessageStatus } from "../message/message.enums";
import { recordMessageUsage, usageOf } from "../message/message.service";
import { ConversationOrigin, ConversationStatus } from "../conversation/conversation.enums";
import { publishConversationChanged, publishMessageAdded } from "../live/live.hub";
import type { ImportSource, SkipLog, SourceConversation, SourceMessage } from "./import.types";

/** The namespace of imported conversations' ids (UUID v5): fixed, so that ids are the same on every run. */
const NAMESPACE = Buffer.from("6f1c2a4e9b3d4c8a8e5f7a1b2c3d4e5f", "hex");

/** RFC 4122 version 5: SHA-1 of namespace and name, with the version and variant bits set. */
function uuidV5(name: string): string {
  const hash = createHash("sha1").update(NAMESPACE).update(name, "utf8").digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The Parley id of an imported conversation. The owner is part of the name: the same file imported for two
 * users gives each their own copy.
 */
export const importedConversationId = (ownerId: string, source: ImportSource, sourceId: string): string => uuidV5(`${ownerId}\n${source}\n${sourceId}`);

/** requestId is at most 255 characters (a check constraint); longer source ids are hashed. */
export function importedRequestId(source: ImportSource, conversationSourceId: string, messageSourceId: string): string {
  const plain = `import:${source}:${conversationSourceId}:${messageSourceId}`;
  return plain.length <= 255 ? plain : `import:${source}:sha256:${createHash("sha256").update(plain).digest("hex")}`;
}

/** A message ready for writing: its time settled and its request id derived. */
export interface ReadyMessage extends SourceMessage {
  createdAt: Date;
  requestId: string;
}

export interface ImportTarget {
  id: string;
  source: ImportSource;
  conversation: SourceConversation;
  /** The conversation's creation time: the source's, else its first message's. */
  createdAt: Date;
}

export interface BatchResult {
  created: boolean;
  written: number;
  present: number;
}

type ConversationRow = { id: string; ownerId: string; status: string; lastSeq: number | string; discordGuildId: string | null };

/** The conversation, locked; created (empty) when it is not there yet. */
async function lockOrCreate(trx: Knex.Transaction, actor: Actor, target: ImportTarget): Promise<{ row: ConversationRow; created: boolean }> {
  const columns = ["id", "ownerId", "status", "lastSeq", "discordGuildId"];
  const found: ConversationRow | undefined = await trx("conversations").where({ id: target.id }).forUpdate().first(columns);
  if (found) return { row: found, created: false };
  const { conversation } = target;
  const [row] = (await trx("conversations")
    .insert({
      id: target.id,
      ownerId: actor.viewer!.id,
      title: [...conversation.title.replaceAll("\u0000", "")].slice(0, 500).join(""), // the column's check: 500 characters
      // The owner's own chats, as in a chat app: what a service granted WEB conversations may act in.
      origin: ConversationOrigin.WEB,
      parameters: JSON.stringify(conversation.parameters),
      createdAt: target.createdAt,
      updatedAt: target.createdAt,
    })
    .returning(columns)) as ConversationRow[];
  await publishConversationChanged(trx, row.id, row.ownerId);
  return { row, created: true };
}

/**
 * Writes one batch of a conversation's messages (in file order) in one transaction, creating the conversation
 * first if needed. After its last batch, the conversation's updated_at is then set to its last activity in the
 * source (the later of its update time and its newest message): the seq bump, like every update, set it to now.
 */
export async function writeBatch(
  knex: Knex,
  actor: Actor,
  target: ImportTarget,
  messages: ReadyMessage[],
  /** Null for a batch with more of the conversation after it; else whether earlier batches of this run wrote to it. */
  last: { wroteBefore: boolean } | null,
  skips: SkipLog,
): Promise<BatchResult> {
  return knex.transaction(async (trx) => {
    const { row, created } = await lockOrCreate(trx, actor, target);
    if (row.ownerId !== actor.viewer!.id) throw new Error(`conversation ${row.id} belongs to another user`); // a v5 collision: never expected
    const ids = messages.map((message) => message.requestId);
    const stored: { requestId: string }[] = ids.length ? await trx("messages").where({ conversationId: row.id }).whereIn("requestId", ids).select("requestId") : [];
    const present = new Set(stored.map((message) => message.requestId));
    const fresh: ReadyMessage[] = [];
    for (const message of messages) {
      if (present.has(message.requestId)) continue;
      if (fresh.some((other) => other.requestId === message.requestId)) skips.note("duplicate-id", message.where);
      else fresh.push(message);
    }
    if (fresh.length && row.status === ConversationStatus.ARCHIVED) {
      skips.note("archived", target.conversation.where, fresh.length);
      return { created, written: 0, present: present.size };
    }
    if (fresh.length) await insertMessages(trx, actor, row, fresh);
    if (last && (last.wroteBefore || fresh.length || created)) {
      // Only when this run wrote to it: an untouched conversation keeps whatever Parley did with it since.
      await trx.raw(
        `update conversations c set updated_at = t.at
          from (select greatest(?::timestamptz, (select max(created_at) from messages where conversation_id = ?)) as at) t
          where c.id = ? and c.updated_at is distinct from t.at`,
        [target.conversation.updatedAt ?? target.createdAt, row.id, row.id],
      );
    }
    return { created, written: fresh.length, present: present.size };
  });
}

async function insertMessages(trx: Knex.Transaction, actor: Actor, conversation: ConversationRow, messages: ReadyMessage[]): Promise<void> {
  const first = Number(conversation.lastSeq) + 1;
  const owner = actor.viewer!.id;
  const rows = messages.map((message, index) => ({
    conversationId: conversation.id,
    seq: first + index,
    // The owner wrote their messages; the other app's assistant and tools have no Parley user.
    authorId: message.role === MessageRole.USER ? owner : null,
    sentBy: null,
    role: message.role,
    status: MessageStatus.COMPLETE,
    requestId: message.requestId,
    ...storedContent(actor.config.encryption, conversation.id, first + index, message.content),
    metadata: JSON.stringify(message.metadata),
    toolCalls: message.toolCalls == null ? null : JSON.stringify(message.toolCalls),
    model: message.model,
    promptTokens: message.promptTokens,
    completionTokens: message.completionTokens,
    costUsd: message.costUsd,
    latencyMs: message.latencyMs,
    createdAt: message.createdAt,
    updatedAt: message.createdAt,
  }));
  const inserted: Record<string, unknown>[] = await trx("messages").insert(rows).returning(["id", "seq"]);
  await trx("conversations")
    .where({ id: conversation.id })
    .update({ lastSeq: trx.raw("last_seq + ?", [messages.length]), messageCount: trx.raw("message_count + ?", [messages.length]) });
  // RETURNING's order is not promised to be the VALUES' order: match by seq.
  const idBySeq = new Map(inserted.map((row) => [Number(row.seq), row.id as string]));
  for (const [index, message] of messages.entries()) {
    const usage = usageOf(actor, { ...message, conversationId: conversation.id });
    if (!usage) continue;
    const stored = Object.assign(new Message(), { id: idBySeq.get(first + index)!, createdAt: message.createdAt });
    await recordMessageUsage(trx, stored, usage, conversation);
  }
  await publishMessageAdded(trx, conversation.id, first + messages.length - 1, conversation.ownerId);
}
