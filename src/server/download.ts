/**
 * GET /transcripts/:id/download: the file of a READY transcript, streamed from its storage (disk or S3)
 * with its length, type and a download name. Authorised exactly like reading the conversation, with the
 * same bearer token as the API: another user's transcript, an unknown id and a malformed id are all 404.
 */
import type http from "node:http";
import type { Logger } from "pino";
import { pipeline } from "node:stream/promises";
import type { Context } from "../graphql/context";
import { AppError, ErrorCode } from "../graphql/errors";
import { openTranscriptFile } from "../modules/transcript/transcript.service";
import { CONTENT_TYPES } from "../modules/transcript/transcript.serializers";

export const DOWNLOAD_PATH = /^\/transcripts\/([^/]+)\/download$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const STATUS: Partial<Record<string, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.RATE_LIMITED]: 429,
};

function sendError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const text = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
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
    if (error instanceof AppError && error.extensions.code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      const code = String(error.extensions.code);
      const retryAfter = (error as { retryAfterSeconds?: number }).retryAfterSeconds;
      return sendError(res, STATUS[code] ?? 400, code, error.message, retryAfter ? { "retry-after": String(retryAfter) } : {});
    }
    if (res.headersSent) {
      // Mostly a client that went away mid-file; the response cannot change status any more.
      (ctx?.log ?? log).warn({ err: error, transcriptId: id }, "transcript download interrupted");
      return void res.destroy();
    }
    (ctx?.log ?? log).error({ err: error, transcriptId: id }, "transcript download failed");
    sendError(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error");
  }
}
