/**
 * Where transcript files live. A backend stores a stream under a key so that the key shows either nothing
 * or the whole file: a failed or interrupted write leaves nothing behind under that key (disk: a temp file
 * renamed at the end; S3: a single PUT, or a multipart upload that becomes visible only when completed and
 * is aborted on failure). Keys are relative paths made by the server from ids, never from names clients chose,
 * and their first segment says what kind of file it is: `transcripts/<conversationId>/<id>-1.csv`,
 * `artifacts/<conversationId>/<artifactId>/<upload>`; every kind shares the one backend of the process.
 *
 * When the storage fails mid-write it may also be unable to take the half-written data back (S3 gone before
 * the multipart upload could be aborted): a backend remembers such leftovers and removes them in cleanUp(),
 * which the export jobs call on every sweep, and the S3 backend before every upload.
 */
import type { Readable } from "node:stream";

export interface StoredFile {
  body: Readable;
  /** The whole file's size, also when `body` is a range of it. */
  size: number;
}

/** Bytes `start` to `end` of a file, both included (HTTP's Range arithmetic). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface TranscriptStorage {
  readonly kind: "disk" | "s3";
  /** Stores `body` under `key`; on rejection nothing is stored under `key`. */
  put(key: string, body: Readable, contentType: string): Promise<void>;
  /** Opens the file under `key` for reading, whole or only `range` (which the caller checked against the size). */
  get(key: string, range?: ByteRange): Promise<StoredFile>;
  /** Deletes the files; keys that do not exist are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Removes leftovers of failed writes that could not be removed then; rejects while the storage is still away. */
  cleanUp(): Promise<void>;
  dispose(): void;
}

/**
 * A failure of the storage itself (unreachable, refusing, full). Its message is safe for clients and
 * FAILED transcripts; the cause, with paths or S3 details, is for the logs only.
 */
export class StorageUnavailableError extends Error {
  override name = "StorageUnavailableError";
  constructor(cause: unknown, message = "Transcript storage is unavailable") {
    super(message, { cause });
  }
}
