/**
 * The node http server: /graphql (Apollo, plus graphql-ws on the same path), /healthz, /readyz, /metrics and
 * /console (Parley Console, console.ts).
 * A plain http handler instead of express keeps per-request overhead low and the body limit exact.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import { HeaderMap, type ApolloServer } from "@apollo/server";
import type { Config } from "../config";
import type { Context, ContextDeps } from "../graphql/context";
import { createContext } from "../graphql/context";
import { AppError, ErrorCode, unavailableError } from "../graphql/errors";
import { applyCors } from "./cors";
import { CONSOLE_PATH, createConsoleHandler } from "./console";
import {
  ARTIFACT_CONTENT_PATH,
  ARTIFACT_DOWNLOAD_PATH,
  DOWNLOAD_PATH,
  EXPORT_DOWNLOAD_PATH,
  serveArtifactDownload,
  serveArtifactUpload,
  serveDataExport,
  serveTranscript,
} from "./download";
import type { RateLimiter } from "./rate-limit";
import type { Metrics } from "./metrics";

const REQUEST_ID = /^[\w.:-]{1,128}$/;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: http.ServerResponse, error: HttpError): void {
  sendJson(res, error.status, { errors: [{ message: error.message, extensions: { code: error.code } }] });
}

/** Reads the body up to `limit` bytes; a larger one is refused as soon as it passes the limit. */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) return reject(tooLarge(limit));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume(); // drain the rest so the 413 reaches the client
        reject(tooLarge(limit));
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const tooLarge = (limit: number) => new HttpError(413, ErrorCode.PAYLOAD_TOO_LARGE, `Request body exceeds ${limit} bytes`);

async function parseBody(req: http.IncomingMessage, config: Config): Promise<unknown> {
  if (req.method !== "POST") return undefined;
  const text = await readBody(req, config.maxBodyBytes);
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type === "application/graphql-response+json") {
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(400, "BAD_REQUEST", "The request body is not valid JSON");
    }
  }
  return text; // Apollo answers unsupported content types (and CSRF-suspect requests) itself
}

/** The file route a path names (download.ts), with the id it carries. */
function fileRoute(pathname: string) {
  for (const [pattern, serve] of [
    [DOWNLOAD_PATH, serveTranscript],
    [ARTIFACT_DOWNLOAD_PATH, serveArtifactDownload],
    [ARTIFACT_CONTENT_PATH, serveArtifactUpload],
    [EXPORT_DOWNLOAD_PATH, serveDataExport],
  ] as const) {
    const match = pattern.exec(pathname);
    if (match) return { serve, id: match[1] };
  }
  return undefined;
}

export interface FileRoutesDeps extends ContextDeps {
  rateLimiter: RateLimiter;
}

export interface HttpHandlerDeps extends FileRoutesDeps {
  apollo: ApolloServer<Context>;
  /** Present with METRICS_ENABLED; /metrics is served here unless METRICS_PORT gives it a listener of its own. */
  metrics?: Metrics;
}

/**
 * The context of an HTTP request. Every request counts against its address (also when its token turns out
 * to be invalid) and against its token; over either budget it is refused with 429 before anything runs.
 */
export async function requestContext(deps: FileRoutesDeps, req: http.IncomingMessage, requestId: string): Promise<Context> {
  const ip = req.socket.remoteAddress ?? null;
  let context;
  try {
    context = await createContext(deps, { authorization: req.headers.authorization, requestId, ip });
  } catch (error) {
    // The token could not be checked: 503 with Retry-After (Apollo takes the status from an AppError only).
    const unavailable = unavailableError(error);
    if (unavailable) throw unavailable;
    await deps.rateLimiter.consume(ip, null); // an invalid token still costs its address budget
    throw error;
  }
  await deps.rateLimiter.consume(ip, context.viewer); // address and token together, in one statement
  return context;
}

/** The client's x-request-id when it is a sane one, else a new one; set on the response either way. */
function requestIdOf(req: http.IncomingMessage, res: http.ServerResponse): string {
  const header = req.headers["x-request-id"];
  const requestId = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
  res.setHeader("x-request-id", requestId);
  return requestId;
}

/**
 * The file routes alone, for the standalone Discord process (discord/main.ts): it has no API server, and its
 * transport fetches transcripts from the download route like any client. Everything else is 404.
 */
export function createFileRoutesHandler(deps: FileRoutesDeps): http.RequestListener {
  return async (req, res) => {
    const requestId = requestIdOf(req, res);
    const file = fileRoute(new URL(req.url ?? "/", "http://localhost").pathname);
    if (!file) return sendError(res, new HttpError(404, ErrorCode.NOT_FOUND, "Not found"));
    // A file route answers every error itself (download.ts), in the API's vocabulary.
    await file.serve(req, res, file.id, () => requestContext(deps, req, requestId), deps.log.child({ requestId }));
  };
}

export function createHttpHandler(deps: HttpHandlerDeps): http.RequestListener {
  const { apollo, config, db, log, metrics } = deps;
  const metricsHere = metrics && config.metrics.port === undefined ? metrics : undefined;
  const serveConsole = config.console.enabled ? createConsoleHandler(config.console, log) : undefined;
  return async (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req, res);
    const url = new URL(req.url ?? "/", "http://localhost");
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.debug({ requestId, method: req.method, path: url.pathname, status: res.statusCode, ms }, "request");
    });
    try {
      if (url.pathname === "/healthz") return sendJson(res, 200, { status: "ok" });
      if (url.pathname === "/metrics" && metricsHere) return await metricsHere.serve(req, res, config.metrics.token);
      if (url.pathname === "/readyz") {
        const ready = await db.isReady();
        return sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "unavailable" });
      }
      if (serveConsole && CONSOLE_PATH.test(url.pathname)) return await serveConsole(req, res, url.pathname);
      const file = fileRoute(url.pathname);
      if (file) {
        applyCors(req, res, config.corsOrigins, req.method === "OPTIONS");
        return await file.serve(req, res, file.id, () => requestContext(deps, req, requestId), log.child({ requestId }));
      }
      if (url.pathname !== "/graphql") throw new HttpError(404, ErrorCode.NOT_FOUND, "Not found");
      applyCors(req, res, config.corsOrigins, req.method === "OPTIONS");
      if (req.method === "OPTIONS") {
        res.writeHead(204, { allow: "GET, POST, OPTIONS" });
        return res.end();
      }
      if (req.method !== "GET" && req.method !== "POST") throw new HttpError(405, "METHOD_NOT_ALLOWED", "Use GET or POST");

      const body = await parseBody(req, config);
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      const run = () =>
        apollo.executeHTTPGraphQLRequest({
          httpGraphQLRequest: { method: req.method!, headers, search: url.search, body },
          context: () => requestContext(deps, req, requestId),
        });
      const response = await (metrics ? metrics.request(run) : run());
      for (const [name, value] of response.headers) res.setHeader(name, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === "complete") {
        res.end(response.body.string);
      } else {
        for await (const chunk of response.body.asyncIterator) res.write(chunk);
        res.end();
      }
    } catch (error) {
      if (error instanceof HttpError) return sendError(res, error);
      if (error instanceof AppError) {
        const http = error.extensions.http as { status?: number; headers?: Map<string, string> } | undefined;
        for (const [name, value] of http?.headers ?? []) res.setHeader(name, value);
        return sendError(res, new HttpError(http?.status ?? 400, String(error.extensions.code), error.message));
      }
      log.error({ err: error, requestId }, "request failed");
      if (!res.headersSent) sendError(res, new HttpError(500, ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error"));
      else res.destroy();
    }
  };
}
