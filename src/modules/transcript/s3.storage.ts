/**
 * Transcripts as objects in an S3 bucket (AWS or any S3-compatible server). Uploads go through lib-storage's
 * Upload: a file smaller than one part is a single PUT, a larger one a multipart upload of S3_PART_SIZE_MB
 * parts (at most 4 in flight, so memory stays at a few parts whatever the file size); a failed multipart
 * upload is aborted, so nothing becomes visible under the key and no parts are left to pay for.
 *
 * The abort is ours rather than lib-storage's, because it can fail too: S3 gone mid-upload is also gone for
 * the abort. Such an upload is remembered and aborted again by cleanUp(), before the next upload (S3
 * answering again) and on every sweep of the export jobs. The memory is this process's: a server that stops
 * before S3 comes back leaves the upload to the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
 */
import type { Readable } from "node:stream";
import { AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, NoSuchUpload, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { S3Config } from "../../config";
import { StorageUnavailableError, type ByteRange, type StoredFile, type TranscriptStorage } from "./transcript.storage";

export class S3Storage implements TranscriptStorage {
  readonly kind = "s3";
  private readonly client: S3Client;
  /** Multipart uploads (id → key) whose abort failed, to abort again in cleanUp(). */
  private readonly unaborted = new Map<string, string>();

  constructor(private readonly config: S3Config) {
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      credentials: config.credentials,
      forcePathStyle: config.forcePathStyle,
      // Checksums only where S3 requires them: S3-compatible servers differ in the newer (aws-chunked,
      // trailing) checksum encodings; the file's own sha256 is recorded on the transcript anyway.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  async put(key: string, body: Readable, contentType: string): Promise<void> {
    // S3 answering again is the first chance to abort what an earlier failure left; if it does not, the
    // upload below fails and says so.
    await this.cleanUp().catch(() => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.config.bucket, Key: key, Body: body, ContentType: contentType },
      partSize: this.config.partSizeBytes,
      queueSize: 4,
      leavePartsOnError: true, // aborted below, where a failed abort is remembered
    });
    try {
      await upload.done();
    } catch (error) {
      // The serializer may still be producing: stop it (and its database reads) rather than leave it paused.
      body.destroy();
      if (upload.uploadId) await this.abort(upload.uploadId, key).catch(() => undefined);
      throw new StorageUnavailableError(error);
    }
  }

  /** Aborts a multipart upload, or remembers it for cleanUp() when S3 cannot be reached. */
  private async abort(uploadId: string, key: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.config.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      // Already gone: aborted by a concurrent cleanUp, or completed after all (the caller deletes the object).
      if (!(error instanceof NoSuchUpload)) {
        this.unaborted.set(uploadId, key);
        throw new StorageUnavailableError(error);
      }
    }
    this.unaborted.delete(uploadId);
  }

  async cleanUp(): Promise<void> {
    for (const [uploadId, key] of [...this.unaborted]) await this.abort(uploadId, key);
  }

  async get(key: string, range?: ByteRange): Promise<StoredFile> {
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      // A ranged answer's length is the range's; the whole size is the part of Content-Range after the slash.
      const size = range ? Number(object.ContentRange?.split("/")[1]) : Number(object.ContentLength);
      return { body: object.Body as Readable, size };
    } catch (error) {
      throw new StorageUnavailableError(error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    try {
      // One by one: a conversation has few transcripts, and DeleteObjects needs checksums some servers lack.
      for (const key of keys) await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key }));
    } catch (error) {
      throw new StorageUnavailableError(error);
    }
  }

  dispose(): void {
    this.client.destroy();
  }
}
