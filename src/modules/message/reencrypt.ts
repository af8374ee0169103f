/**
 * `npm run cli -- reencrypt`: moves every message, and every chunk of a reply still streaming, that is not
 * on the current key (older keys and plain text alike) onto it, while servers keep running. Rows are read in keyset pages by id and each batch is
 * written by one UPDATE whose WHERE names the key_id (and row version) that was read, so a row someone
 * else changed meanwhile is skipped, never overwritten. Nothing is held between batches: an interrupted
 * run is simply started again, and rows already on the current key are not even read.
 */
import type { Knex } from "knex";
import type { EncryptionConfig } from "../../config";
import { encryptContent, messageText, UndecryptableContentError, type ContentRow } from "./encryption";

export interface ReencryptProgress {
  /** Messages not on the current key when the run started (writers may add more while it runs). */
  total: number;
  /** Messages handled so far: reencrypted + skipped + failed. */
  done: number;
  reencrypted: number;
  /** Changed or deleted by someone else between this run's read and its write; left as they are. */
  skipped: number;
  /** Could not be decrypted (altered, or their key is not in the ring); left as they are. */
  failed: number;
}

export interface ReencryptResult extends ReencryptProgress {
  keyId: string;
  /** Some of the failed messages' ids (at most 20), for the operator to look into. */
  failedIds: string[];
  /** Messages still not on the current key after the run: the failed ones, and any a server on old settings wrote meanwhile. */
  remaining: number;
}

export interface ReencryptOptions {
  /** Rows per read and per UPDATE. @default 500 */
  batchSize?: number;
  /** Called after every batch; a throw (or rejection) stops the run, which can be resumed later. */
  onProgress?: (progress: ReencryptProgress) => void | Promise<void>;
}

/** A row as read for re-encryption: its text columns and its version (xmin) at the time of reading. */
export interface ReencryptRow extends ContentRow {
  /** A message's id; for a chunk, `messageId#index` (used only in failedIds). */
  id: string;
  /** Set for a chunk: the message it belongs to. */
  messageId?: string;
  version: string;
}

export const MAX_BATCH_SIZE = 10_000; // at most 5 bind parameters per row, PostgreSQL allows 65535 per statement

export function isValidBatchSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= MAX_BATCH_SIZE;
}

/**
 * Where encrypted text lives: messages, and the chunks of replies still streaming (their AAD adds the
 * chunk index). Each table is read in keyset pages by its primary key and written by one guarded UPDATE.
 */
interface Target {
  table: string;
  read(knex: Knex, keyId: string, after: ReencryptRow | undefined, limit: number): Promise<ReencryptRow[]>;
  /** The UPDATE for `rows` rows of bindings (keyId first, then per row: key columns, old key id, version, ciphertext). */
  update(rows: number): string;
  keyBindings(row: ReencryptRow): Knex.Value[];
}

const messagesTarget: Target = {
  table: "messages",
  read: (knex, keyId, after, limit) => readBatch(knex, keyId, after?.id, limit),
  update: (rows) => `update messages as m set content = null, encrypted_content = v.encrypted_content, key_id = ?
       from (values ${valuesList(rows, "(?::uuid, ?::text, ?::xid, ?::bytea)")}) as v(id, old_key_id, version, encrypted_content)
      where m.id = v.id and m.key_id is not distinct from v.old_key_id and m.xmin = v.version
      returning m.id`,
  keyBindings: (row) => [row.id],
};

const chunksTarget: Target = {
  table: "message_chunks",
  read: async (knex, keyId, after, limit) => {
    const rows = await knex("message_chunks as c")
      .join("messages as m", "m.id", "c.message_id")
      .select("c.message_id", "c.idx as chunk", "m.conversation_id", "m.seq", "c.content", "c.encrypted_content", "c.key_id")
      .select(knex.raw("c.xmin::text as version"))
      .whereRaw("c.key_id is distinct from ?", [keyId])
      .modify((q) => {
        if (after) q.whereRaw("(c.message_id, c.idx) > (?::uuid, ?::int)", [after.messageId!, after.chunk!]);
      })
      .orderBy([{ column: "c.message_id" }, { column: "c.idx" }])
      .limit(limit);
    return rows.map((row: ReencryptRow) => ({ ...row, id: `${row.messageId}#${row.chunk}` }));
  },
  update: (rows) => `update message_chunks as c set content = null, encrypted_content = v.encrypted_content, key_id = ?
       from (values ${valuesList(rows, "(?::uuid, ?::int, ?::text, ?::xid, ?::bytea)")}) as v(message_id, idx, old_key_id, version, encrypted_content)
      where c.message_id = v.message_id and c.idx = v.idx and c.key_id is not distinct from v.old_key_id and c.xmin = v.version
      returning c.message_id`,
  keyBindings: (row) => [row.messageId!, row.chunk!],
};

const TARGETS = [messagesTarget, chunksTarget];

function valuesList(rows: number, tuple: string): string {
  return Array.from({ length: rows }, () => tuple).join(", ");
}

async function countNotOnKey(knex: Knex, keyId: string): Promise<number> {
  let total = 0;
  for (const { table } of TARGETS) {
    const row = await knex(table).whereRaw("key_id is distinct from ?", [keyId]).count({ n: "*" }).first();
    total += Number(row?.n ?? 0);
  }
  return total;
}

/** The next `limit` messages after `afterId` (by id) that are not on `keyId`. */
export async function readBatch(knex: Knex, keyId: string, afterId: string | undefined, limit: number): Promise<ReencryptRow[]> {
  return knex("messages")
    .select("id", "conversationId", "seq", "content", "encryptedContent", "keyId", knex.raw("xmin::text as version"))
    .whereRaw("key_id is distinct from ?", [keyId])
    .modify((q) => {
      if (afterId) q.where("id", ">", afterId);
    })
    .orderBy("id")
    .limit(limit);
}

/**
 * Re-encrypts `rows` with the current key in one statement. A row is written only if it still has the
 * key_id and the version (xmin changes with every UPDATE) it was read with: a concurrent re-encryption, a
 * rewrite, a delete or (for a chunk) the reply completing wins, and the row is counted as skipped.
 */
export async function writeBatch(
  knex: Knex,
  encryption: EncryptionConfig,
  rows: readonly ReencryptRow[],
  target: Target = messagesTarget,
): Promise<{ written: number; failedIds: string[] }> {
  const failedIds: string[] = [];
  const bindings: Knex.Value[] = [];
  let count = 0;
  for (const row of rows) {
    try {
      const { encryptedContent } = encryptContent(encryption, row.conversationId, row.seq, messageText(encryption, row), row.chunk);
      bindings.push(...target.keyBindings(row), row.keyId, row.version, encryptedContent);
      count += 1;
    } catch (error) {
      if (!(error instanceof UndecryptableContentError)) throw error;
      failedIds.push(row.id);
    }
  }
  if (count === 0) return { written: 0, failedIds };
  const { rows: written } = await knex.raw(target.update(count), [encryption.currentKeyId, ...bindings]);
  return { written: (written as unknown[]).length, failedIds };
}

export async function reencryptMessages(
  knex: Knex,
  encryption: EncryptionConfig,
  { batchSize = 500, onProgress }: ReencryptOptions = {},
): Promise<ReencryptResult> {
  if (!isValidBatchSize(batchSize)) {
    throw new RangeError(`batch size must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  const keyId = encryption.currentKeyId;
  const progress: ReencryptProgress = { total: await countNotOnKey(knex, keyId), done: 0, reencrypted: 0, skipped: 0, failed: 0 };
  const failedIds: string[] = [];
  for (const target of TARGETS) {
    let after: ReencryptRow | undefined;
    for (;;) {
      const rows = await target.read(knex, keyId, after, batchSize);
      if (rows.length === 0) break;
      const batch = await writeBatch(knex, encryption, rows, target);
      progress.done += rows.length;
      progress.reencrypted += batch.written;
      progress.failed += batch.failedIds.length;
      progress.skipped += rows.length - batch.written - batch.failedIds.length;
      progress.total = Math.max(progress.total, progress.done); // rows written meanwhile by old-settings servers
      failedIds.push(...batch.failedIds.slice(0, 20 - failedIds.length));
      after = rows[rows.length - 1];
      await onProgress?.({ ...progress });
    }
  }
  return { ...progress, keyId, failedIds, remaining: await countNotOnKey(knex, keyId) };
}
