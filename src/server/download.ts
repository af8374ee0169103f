/**
 * The file routes, with the same bearer token as the API:
 * - GET /transcripts/:id/download: the file of a READY transcript;
 * - GET /artifacts/:id/download: an artifact version's bytes (its file, or its inline text), whole or a range;
 * - PUT /artifacts/:id/content: the one upload of a PENDING file version, streamed to the storage;
 * - GET /exports/:id/download: the archive of a READY data export, to its user only (admins included: 404).
 * Reading is authorised exactly like reading the conversation: another user's file, an unknown id and a
 * malformed id are all the same 404. The storage or the database being away is a 503 with Retry-After
 * (SERVICE_UNAVAILABLE), which a client may retry as it is; only a bug is a 500.
 */
import type http from "node:http";
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import { pipeline } from "node:stream/promises";
import type { Context } from "../graphql/context";
import { AppError, ErrorCode, ServiceUnavailableError, unavailableError } from "../graphql/errors";
import { openTranscriptFile } from "../modules/transcript/transcript.service";
import { CONTENT_TYPES } from "../modules/transcript/transcript.serializers";
import { StorageUnavailableError, type ByteRange, type StoredFile } from "../modules/transcript/transcript.storage";
import { openArtifactDownload, uploadArtifactContent } from "../modules/artifact/artifact.service";
import { openDataExportFile } from "../modules/privacy/data-export.service";
import { DATA_EXPORT_CONTENT_TYPE } from "../modules/privacy/data-export.archive";

export const DOWNLOAD_PATH = /^\/transcripts\/([^/]+)\/download$/;
export const ARTIFACT_DOWNLOAD_PATH = /^\/artifacts\/([^/]+)\/download$/;
export const ARTIFACT_CONTENT_PATH = /^\/artifacts\/([^/]+)\/content$/;
export const EXPORT_DOWNLOAD_PATH = /^\/exports\/([^/]+)\/download$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const STATUS: Partial<Record<string, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
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
function apiError(error: unknown, what: string): AppError | undefined {
  if (error instanceof AppError) return error;
  if (error instanceof StorageUnavailableError) {
    return new ServiceUnavailableError(`${what} storage is unavailable; try again shortly`, "STORAGE_UNAVAILABLE");
  }
  return unavailableError(error);
}

/** What a file route serves, known before a byte is read. */
interface Served {
  size: number;
  headers: Record<string, string>;
  /** Opens the bytes, whole or a range (only when `ranges`). */
  open(range?: ByteRange): Promise<Readable>;
  /** Whether Range requests are answered with 206 (else the whole file, as HTTP allows). */
  ranges: boolean;
  /** Frees what was opened early (a HEAD request reads nothing). */
  release?(): void;
}

interface Route {
  /** "Transcript", "Artifact" or "Data export": names the resource in errors and logs. */
  what: string;
  /** The log field of the id; default `<what>Id` ("transcriptId"). */
  logKey?: string;
  /** Methods besides OPTIONS. */
  methods: string[];
  handle(ctx: Context, id: string): Promise<void>;
}

/**
 * The frame every file route shares: methods, the token, the id's shape, and errors in the API's vocabulary
 * (404 for unknown and unreadable alike, 503 with Retry-After for outages, 500 only for bugs).
 */
async function serveRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, contextOf: () => Promise<Context>, log: Logger, route: Route): Promise<void> {
  const allow = [...route.methods, "OPTIONS"].join(", ");
  const logKey = route.logKey ?? `${route.what.toLowerCase()}Id`;
  if (req.method === "OPTIONS") {
    res.writeHead(204, { allow });
    return void res.end();
  }
  if (!route.methods.includes(req.method ?? "")) {
    return sendError(res, 405, "METHOD_NOT_ALLOWED", `Use ${route.methods.join(" or ")}`, { allow });
  }
  let ctx: Context | undefined;
  try {
    ctx = await contextOf();
    if (!ctx.viewer) return sendError(res, 401, ErrorCode.UNAUTHENTICATED, "A valid bearer token is required");
    if (!UUID.test(id)) return sendError(res, 404, ErrorCode.NOT_FOUND, `${route.what} not found`);
    await route.handle(ctx, id.toLowerCase());
  } catch (error) {
    if (res.headersSent) {
      // Mostly a client that went away mid-file; the response cannot change status any more.
      (ctx?.log ?? log).warn({ err: error, [logKey]: id }, `${route.what.toLowerCase()} transfer interrupted`);
      return void res.destroy();
    }
    const known = apiError(error, route.what);
    if (known && known.extensions.code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      if (known instanceof ServiceUnavailableError) (ctx?.log ?? log).warn({ err: error, [logKey]: id }, `${route.what.toLowerCase()} transfer unavailable`);
      // `http` (status and headers) is for this response, not for the client to read, as in GraphQL answers.
      const { code, http: _http, ...extensions } = known.extensions;
      const retryAfter = extensions.retryAfterSeconds;
      const headers: Record<string, string> = retryAfter ? { "retry-after": String(retryAfter) } : {};
      // An upload refused before its body was read: the client may still be sending it; close after answering.
      if (req.method === "PUT" && !req.readableEnded) {
        headers.connection = "close";
        req.resume();
      }
      return sendError(res, STATUS[String(code)] ?? 400, String(code), known.message, headers, extensions);
    }
    (ctx?.log ?? log).error({ err: error, [logKey]: id }, `${route.what.toLowerCase()} transfer failed`);
    sendError(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error");
  }
}

const BYTES = /^bytes=(\d*)-(\d*)$/;

/**
 * The one range a Range header asks for, clamped to the file: undefined for none (or a form not served, such
 * as several ranges, which HTTP lets a server answer with the whole file); "unsatisfiable" for a range
 * outside the file.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined {
  const match = header ? BYTES.exec(header.trim()) : null;
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  if (match[1] === "") {
    const suffix = Number(match[2]); // the last n bytes
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** Streams a file: whole, or the one range asked for (206, Content-Range; 416 for a range outside it). */
async function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: Served): Promise<void> {
  const range = file.ranges ? parseRange(req.headers.range, file.size) : undefined;
  const common = { ...file.headers, "cache-control": "private, no-store", "x-content-type-options": "nosniff", ...(file.ranges ? { "accept-ranges": "bytes" } : {}) };
  if (range === "unsatisfiable") {
    file.release?.();
    res.writeHead(416, { ...common, "content-range": `bytes */${file.size}`, "content-length": 0 });
    return void res.end();
  }
  if (range) {
    res.writeHead(206, { ...common, "content-range": `bytes ${range.start}-${range.end}/${file.size}`, "content-length": range.end - range.start + 1 });
  } else {
    res.writeHead(200, { ...common, "content-length": file.size });
  }
  if (req.method === "HEAD") {
    file.release?.();
    return void res.end();
  }
  await pipeline(await file.open(range), res);
}

/** A stored export (transcript, data export) as an attachment, whole: its SHA-256 is its ETag. */
function sendWholeFile(req: http.IncomingMessage, res: http.ServerResponse, file: StoredFile, contentType: string, name: string, sha256: string | null): Promise<void> {
  return sendFile(req, res, {
    size: file.size,
    headers: { "content-type": contentType, "content-disposition": `attachment; filename="${name}"`, etag: `"${sha256}"` },
    ranges: false,
    open: async () => file.body,
    release: () => file.body.destroy(),
  });
}

export function serveTranscript(req: http.IncomingMessage, res: http.ServerResponse, id: string, contextOf: () => Promise<Context>, log: Logger): Promise<void> {
  return serveRoute(req, res, id, contextOf, log, {
    what: "Transcript",
    methods: ["GET", "HEAD"],
    async handle(ctx, transcriptId) {
      const { transcript, file } = await openTranscriptFile(ctx, transcriptId);
      await sendWholeFile(req, res, file, CONTENT_TYPES[transcript.format], `transcript-${transcript.id}.${transcript.format}`, transcript.sha256);
    },
  });
}

export function serveDataExport(req: http.IncomingMessage, res: http.ServerResponse, id: string, contextOf: () => Promise<Context>, log: Logger): Promise<void> {
  return serveRoute(req, res, id, contextOf, log, {
    what: "Data export",
    logKey: "dataExportId",
    methods: ["GET", "HEAD"],
    async handle(ctx, exportId) {
      const { dataExport, file } = await openDataExportFile(ctx, exportId);
      await sendWholeFile(req, res, file, DATA_EXPORT_CONTENT_TYPE, `parley-data-${dataExport.id}.json`, dataExport.sha256);
    },
  });
}

/**
 * RFC 6266 with RFC 8187's UTF-8 form, plus a plain ASCII name for old clients; quotes and backslashes
 * cannot break out of the quoted one.
 */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export function serveArtifactDownload(req: http.IncomingMessage, res: http.ServerResponse, id: string, contextOf: () => Promise<Context>, log: Logger): Promise<void> {
  return serveRoute(req, res, id, contextOf, log, {
    what: "Artifact",
    methods: ["GET", "HEAD"],
    async handle(ctx, artifactId) {
      const download = await openArtifactDownload(ctx, artifactId);
      await sendFile(req, res, {
        size: download.size,
        headers: {
          "content-type": download.contentType,
          "content-disposition": contentDisposition(download.filename),
          // Whatever type a writer declared, a browser must not run it in the API's origin.
          "content-security-policy": "default-src 'none'; sandbox",
          ...(download.artifact.sha256 ? { etag: `"${download.artifact.sha256}"` } : {}),
        },
        ranges: true,
        open: download.open,
      });
    },
  });
}

export function serveArtifactUpload(req: http.IncomingMessage, res: http.ServerResponse, id: string, contextOf: () => Promise<Context>, log: Logger): Promise<void> {
  return serveRoute(req, res, id, contextOf, log, {
    what: "Artifact",
    methods: ["PUT"],
    async handle(ctx, artifactId) {
      const declared = req.headers["content-length"];
      const artifact = await uploadArtifactContent(ctx, artifactId, {
        body: req,
        contentType: req.headers["content-type"],
        declaredLength: declared === undefined ? undefined : Number(declared),
      });
      const text = JSON.stringify({
        id: artifact.id,
        status: artifact.status.toUpperCase(),
        sizeBytes: artifact.sizeBytes,
        sha256: artifact.sha256,
        mimeType: artifact.mimeType,
        downloadPath: `/artifacts/${artifact.id}/download`,
      });
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
      res.end(text);
    },
  });
}
