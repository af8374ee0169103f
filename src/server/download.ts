/**
 * GET /transcripts/:id/download: the file of a READY transcript, streamed from its storage (disk or S3)
 * with its length, type and a download name. Authorised exactly like reading the conversation, with the
 * same bearer token as the API: another user's transcript, an unknown id and a malformed id are all 404.
 * The storage or the database being away is a 503 with Retry-After (SERVICE_UNAVAILABLE), which a client
 * may retry as it is; only a bug is a 500.
 */
import type http from "node:http";
import type { Logger } from "pino";
import { pipeline } from "node:stream/promises";
import type { Context } from "../graphql/context";
import { AppError, ErrorCode, ServiceUnavailableError, unavailableError } from "../graphql/errors";
import { openTranscriptFile } from "../modules/transcript/transcript.service";
import { CONTENT_TYPES } from "../modules/transcript/transcript.serializers";
import { StorageUnavailableError } from "../modules/transcript/transcript.storage";

export const DOWNLOAD_PATH = /^\/transcripts\/([^/]+)\/download$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const STATUS: Partial<Record<string, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

function sendError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  extensions: Record<string, unknown> = {},
): void {
  const text = JSON.stringify({ errors: [{ message, extensions: { ...extensions, code } }] });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The error in the API's vocabulary: storage and database outages become SERVICE_UNAVAILABLE; undefined for a bug. */
function apiError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (error instanceof StorageUnavailableError) {
    return new ServiceUnavailableError("Transcript storage is unavailable; try again shortly", "STORAGE_UNAVAILABLE");
  }
  return unavailableError(error);
}

export async function serveTranscript(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  id: string,
  contextOf: () => Promise<Context>,
  log: Logger,
): Promise<void> {
  if (req.method === "OPTIONS") {
    res.writeHead(204, { allow: "GET, HEAD, OPTIONS" });
    return void res.end();
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    return sendError(res, 405, "METHOD_NOT_ALLOWED", "Use GET or HEAD", { allow: "GET, HEAD, OPTIONS" });
  }
  let ctx: Context | undefined;
  try {
    ctx = await contextOf();
    if (!ctx.viewer) return sendError(res, 401, ErrorCode.UNAUTHENTICATED, "A valid bearer token is required");
    if (!UUID.test(id)) return sendError(res, 404, ErrorCode.NOT_FOUND, "Transcript not found");
    const { transcript, file } = await openTranscriptFile(ctx, id.toLowerCase());
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[transcript.format],
      "content-length": file.size,
      "content-disposition": `attachment; filename="transcript-${transcript.id}.${transcript.format}"`,
      etag: `"${transcript.sha256}"`,
      "cache-control": "private, no-store",
      "x-content-type-options": "nosniff",
    });
    if (req.method === "HEAD") {
      file.body.destroy();
      return void res.end();
    }
    await pipeline(file.body, res);
  } catch (error) {
    if (res.headersSent) {
      // Mostly a client that went away mid-file; the response cannot change status any more.
      (ctx?.log ?? log).warn({ err: error, transcriptId: id }, "transcript download interrupted");
      return void res.destroy();
    }
    const known = apiError(error);
    if (known && known.extensions.code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      if (known instanceof ServiceUnavailableError) (ctx?.log ?? log).warn({ err: error, transcriptId: id }, "transcript download unavailable");
      // `http` (status and headers) is for this response, not for the client to read, as in GraphQL answers.
      const { code, http: _http, ...extensions } = known.extensions;
      const retryAfter = extensions.retryAfterSeconds;
      const headers: Record<string, string> = retryAfter ? { "retry-after": String(retryAfter) } : {};
      return sendError(res, STATUS[String(code)] ?? 400, String(code), known.message, headers, extensions);
    }
    (ctx?.log ?? log).error({ err: error, transcriptId: id }, "transcript download failed");
    sendError(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error");
  }
}
