/**
 * The storage backend TRANSCRIPT_STORAGE names. Apart from the interface (transcript.storage.ts), which the
 * backends implement, so that the interface file imports no backend and other kinds of file can take the
 * same backends.
 */
import type { TranscriptConfig } from "../../config";
import { DiskStorage } from "./disk.storage";
import type { TranscriptStorage } from "./transcript.storage";

export function createStorage(config: TranscriptConfig): TranscriptStorage {
  if (config.storage === "disk") return new DiskStorage(config.dir);
  // Loaded only when configured: the AWS SDK adds about 20 MB to every process that loads it.
  const { S3Storage } = require("./s3.storage") as typeof import("./s3.storage");
  return new S3Storage(config.s3!);
}
