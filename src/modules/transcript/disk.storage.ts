/**
 * Transcripts as files below TRANSCRIPT_DIR. A file is written as `<name>.<random>.partial` next to its final
 * name and renamed when complete: rename is atomic within a folder, so readers never see half a file.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StorageUnavailableError, type ByteRange, type StoredFile, type TranscriptStorage } from "./transcript.storage";

/**
 * Writes `body` to `file` through a temp file and a rename; on failure the temp file is removed and `file`
 * is untouched. Errors of the source stream are rethrown as they are; those of the file system are not
 * told apart here (the caller knows which side it trusts).
 */
export async function writeFileAtomically(file: string, body: Readable): Promise<void> {
  const partial = `${file}.${randomBytes(6).toString("hex")}.partial`;
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await pipeline(body, fs.createWriteStream(partial, { flags: "wx" }));
    await fs.promises.rename(partial, file);
  } catch (error) {
    body.destroy(); // a source not yet piped would otherwise wait forever, holding its reader
    await fs.promises.rm(partial, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** The file system's failure as the storage's; a full disk (or quota) says so, since only freeing space helps. */
function storageError(error: unknown): StorageUnavailableError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return new StorageUnavailableError(error, "Transcript storage is full");
  return new StorageUnavailableError(error);
}

export class DiskStorage implements TranscriptStorage {
  readonly kind = "disk";

  constructor(private readonly dir: string) {}

  private pathOf(key: string): string {
    const file = path.resolve(this.dir, key);
    // Keys are made by the server, never by clients; this only guards against a bug writing elsewhere.
    if (!file.startsWith(path.resolve(this.dir) + path.sep)) throw new Error(`storage key outside TRANSCRIPT_DIR: ${key}`);
    return file;
  }

  async put(key: string, body: Readable): Promise<void> {
    try {
      await writeFileAtomically(this.pathOf(key), body);
    } catch (error) {
      throw storageError(error);
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredFile> {
    const file = this.pathOf(key);
    try {
      const { size } = await fs.promises.stat(file);
      return { body: fs.createReadStream(file, range ? { start: range.start, end: range.end } : {}), size };
    } catch (error) {
      throw storageError(error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    try {
      for (const key of keys) await fs.promises.rm(this.pathOf(key), { force: true });
    } catch (error) {
      throw storageError(error);
    }
  }

  /** Nothing to do: a failed write removes its temp file at once (removing needs no free space). */
  async cleanUp(): Promise<void> {}

  dispose(): void {}
}
