/**
 * s3rver, a real S3-compatible server, on a free loopback port with a temp folder, plus the one S3 operation
 * the fault tests need that s3rver 3.7.1 lacks: AbortMultipartUpload. s3rver answers that request 405
 * MethodNotAllowed (and ListMultipartUploads 501), so without it no multipart upload could ever be aborted
 * there, by Parley or anyone. The added handler does what S3 does: it drops the upload's parts, here the
 * upload's folder in s3rver's own store, and answers 204, or 404 NoSuchUpload for an unknown upload. It does
 * not check the request's signature (s3rver's router, which does, never sees the request).
 *
 * Uploads left on the server are read from that store (`<folder>/<bucket>/._S3rver_uploads/<uploadId>/`,
 * each with a `key` file), that is as s3rver holds them, not through the code under test.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import S3rver from "s3rver";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";

export const S3_BUCKET = "parley-transcripts";
export const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }; // s3rver's fixed pair

export interface TestS3 {
  endpoint: string;
  /** A client talking to s3rver directly (not through any proxy). */
  client: S3Client;
  /** Multipart uploads started and neither completed nor aborted, as s3rver stores them. */
  pendingUploads(): { uploadId: string; key: string }[];
  /** Keys of the bucket's objects below `prefix`, sorted. */
  objectKeys(prefix?: string): Promise<string[]>;
  dispose(): Promise<void>;
}

/** The environment that points Parley's S3 backend at `url` (s3rver, or a proxy in front of it). */
export function s3Env(url: string): Record<string, string> {
  return {
    TRANSCRIPT_STORAGE: "s3",
    S3_ENDPOINT: url,
    S3_BUCKET,
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    S3_FORCE_PATH_STYLE: "true",
    S3_PART_SIZE_MB: "5",
  };
}

/** The few Koa context members the handler uses (s3rver is a Koa app; its types are not installed). */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

function abortMultipartUpload(folder: string): Middleware {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const [, bucket, ...key] = ctx.path.split("/");
    if (ctx.method !== "DELETE" || typeof uploadId !== "string" || key.length === 0) return next();
    const upload = path.join(folder, bucket, "._S3rver_uploads", uploadId);
    const known = /^[0-9a-f]+$/.test(uploadId) && fs.existsSync(upload);
    if (known && fs.readFileSync(path.join(upload, "key"), "utf8") === decodeURIComponent(key.join("/"))) {
      fs.rmSync(upload, { recursive: true });
      ctx.status = 204;
      return;
    }
    ctx.status = 404;
    ctx.type = "application/xml";
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId.replace(/[^0-9a-zA-Z]/g, "")}</UploadId></Error>`;
  };
}

export async function startS3(): Promise<TestS3> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "parley-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: folder, configureBuckets: [{ name: S3_BUCKET, configs: [] }] });
  // Koa composes its middleware when the server starts listening: put the handler just before s3rver's router.
  const middleware = (server as unknown as { middleware: Middleware[] }).middleware;
  middleware.splice(middleware.length - 1, 0, abortMultipartUpload(folder));
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: S3_CREDENTIALS });
  const uploads = path.join(folder, S3_BUCKET, "._S3rver_uploads");
  return {
    endpoint,
    client,
    pendingUploads() {
      if (!fs.existsSync(uploads)) return [];
      return fs.readdirSync(uploads).map((uploadId) => ({ uploadId, key: fs.readFileSync(path.join(uploads, uploadId, "key"), "utf8") }));
    },
    async objectKeys(prefix) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: S3_BUCKET, Prefix: prefix }));
      return (listed.Contents ?? []).map((object) => object.Key!).sort();
    },
    async dispose() {
      client.destroy();
      await server.close();
      fs.rmSync(folder, { recursive: true, force: true });
    },
  };
}
