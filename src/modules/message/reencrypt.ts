/**
 * `npm run cli -- reencrypt`: moves every message that is not on the current key (older keys and plain
 * text alike) onto it, while servers keep running. Rows are read in keyset pages by id and each batch is
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
  id: string;
  version: string;
}

export const MAX_BATCH_SIZE = 10_000; // 4 bind parameters per row, PostgreSQL allows 65535 per statement

export function isValidBatchSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= MAX_BATCH_SIZE;
}

async function countNotOnKey(knex: Knex, keyId: string): Promise<number> {
  const row = await knex("messages").whereRaw("key_id is distinct from ?", [keyId]).count({ n: "*" }).first();
  return Number(row?.n ?? 0);
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
 * rewrite or a delete wins, and the row is counted as skipped.
 */
export async function writeBatch(
  knex: Knex,
  encryption: EncryptionConfig,
  rows: readonly ReencryptRow[],
): Promise<{ written: number; failedIds: string[] }> {
  const failedIds: string[] = [];
  const bindings: Knex.Value[] = [];
  for (const row of rows) {
    try {
      const { encryptedContent } = encryptContent(encryption, row.conversationId, row.seq, messageText(encryption, row));
      bindings.push(row.id, row.keyId, row.version, encryptedContent);
    } catch (error) {
      if (!(error instanceof UndecryptableContentError)) throw error;
      failedIds.push(row.id);
    }
  }
  if (bindings.length === 0) return { written: 0, failedIds };
  const values = Array.from({ length: bindings.length / 4 }, () => "(?::uuid, ?::text, ?::xid, ?::bytea)").join(", ");
  const { rows: written } = await knex.raw(
    `update messages as m set content = null, encrypted_content = v.encrypted_content, key_id = ?
       from (values ${values}) as v(id, old_key_id, version, encrypted_content)
      where m.id = v.id and m.key_id is not distinct from v.old_key_id and m.xmin = v.version
      returning m.id`,
    [encryption.currentKeyId, ...bindings],
  );
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
  let afterId: string | undefined;
  for (;;) {
    const rows = await readBatch(knex, keyId, afterId, batchSize);
    if (rows.length === 0) break;
    const batch = await writeBatch(knex, encryption, rows);
    progress.done += rows.length;
    progress.reencrypted += batch.written;
    progress.failed += batch.failedIds.length;
    progress.skipped += rows.length - batch.written - batch.failedIds.length;
    progress.total = Math.max(progress.total, progress.done); // rows written meanwhile by old-settings servers
    failedIds.push(...batch.failedIds.slice(0, 20 - failedIds.length));
    afterId = rows[rows.length - 1].id;
    await onProgress?.({ ...progress });
  }
  return { ...progress, keyId, failedIds, remaining: await countNotOnKey(knex, keyId) };
}
