/**
 * Parley Console at /console: the built page (scripts/build-console.js → dist/console) and its assets.
 *
 * - Only the files manifest.json lists are served, by name, from memory: a path is never joined onto the
 *   file system, so no path can reach another file.
 * - /console/assets/<name> are named by content hash: cached for a year, immutable; any other name is 404.
 * - Every other /console path that looks like a page (no dot in its last segment) is the page itself,
 *   revalidated on each load (no-cache, ETag); the page routes in the browser.
 * - Every answer carries a strict Content-Security-Policy: scripts and styles from the console only (no
 *   inline ones), images from the console or data: URIs, connections to this server and websockets,
 *   no framing, no <base>, forms posting back here only.
 * - Without a build, /console answers 503 with a page that says to run `npm run build`.
 *
 * The build is re-read when manifest.json changes, so a new build is served without a restart.
 */
import fs from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import type http from "node:http";
import type { Logger } from "pino";
import type { ConsoleConfig } from "../config";

export const CONSOLE_PATH = /^\/console(?:\/|$)/;

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const IMMUTABLE = "public, max-age=31536000, immutable";
const ASSET_PATH = /^\/console\/assets\/([A-Za-z0-9][A-Za-z0-9._-]*)$/;

type Encoding = "br" | "gzip";

interface ManifestEntry {
  type: string;
  bytes: number;
  encodings?: Partial<Record<Encoding, string>>;
}

interface Manifest {
  version: 1;
  index: ManifestEntry;
  assets: Record<string, ManifestEntry>;
}

interface LoadedFile {
  type: string;
  etag: string;
  bodies: { identity: Buffer } & Partial<Record<Encoding, Buffer>>;
}

interface Build {
  manifestMtimeMs: number;
  index: LoadedFile;
  assets: Map<string, LoadedFile>;
}

/** dist/console beside the package.json above this file, whether it runs from src/ or from dist/src/. */
export function defaultConsoleDir(from = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve("dist", "console");
    dir = parent;
  }
  return path.join(dir, "dist", "console");
}

async function loadFile(dir: string, name: string, entry: ManifestEntry): Promise<LoadedFile> {
  const identity = await fs.readFile(path.join(dir, name));
  const bodies: LoadedFile["bodies"] = { identity };
  for (const encoding of ["br", "gzip"] as const) {
    const file = entry.encodings?.[encoding];
    if (file) bodies[encoding] = await fs.readFile(path.join(dir, path.dirname(name), path.basename(file)));
  }
  const etag = `"${crypto.createHash("sha256").update(identity).digest("base64url").slice(0, 22)}"`;
  return { type: entry.type, etag, bodies };
}

async function loadBuild(dir: string, manifestMtimeMs: number): Promise<Build> {
  const manifest = JSON.parse(await fs.readFile(path.join(dir, "manifest.json"), "utf8")) as Manifest;
  if (manifest.version !== 1) throw new Error(`unknown console manifest version ${String(manifest.version)}`);
  const assets = new Map<string, LoadedFile>();
  for (const [name, entry] of Object.entries(manifest.assets)) {
    if (!ASSET_PATH.test(`/console/assets/${name}`)) throw new Error(`console manifest names an unsafe asset: ${name}`);
    assets.set(name, await loadFile(path.join(dir, "assets"), name, entry));
  }
  return { manifestMtimeMs, index: await loadFile(dir, "index.html", manifest.index), assets };
}

/** The encoding to send: brotli, then gzip, when the client accepts it (q > 0) and the build has it. */
function chooseEncoding(file: LoadedFile, acceptEncoding: string | undefined): Encoding | undefined {
  if (!acceptEncoding) return undefined;
  const accepted = new Set<string>();
  for (const part of acceptEncoding.split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (!q || Number(q.slice(2)) > 0) accepted.add(name.trim());
  }
  for (const encoding of ["br", "gzip"] as const) {
    if (file.bodies[encoding] && (accepted.has(encoding) || accepted.has("*"))) return encoding;
  }
  return undefined;
}

function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
  const buffer = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, "content-length": String(buffer.length) });
  res.end(req.method === "HEAD" ? undefined : buffer);
}

function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: LoadedFile, cacheControl: string): void {
  const headers: Record<string, string> = { "content-type": file.type, "cache-control": cacheControl, etag: file.etag, vary: "accept-encoding" };
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifNoneMatch && ifNoneMatch.split(",").some((tag) => tag.trim() === file.etag || tag.trim() === "*")) {
    res.writeHead(304, { ...SECURITY_HEADERS, "cache-control": cacheControl, etag: file.etag, vary: "accept-encoding" });
    return void res.end();
  }
  const encoding = chooseEncoding(file, req.headers["accept-encoding"]);
  if (encoding) headers["content-encoding"] = encoding;
  send(req, res, 200, headers, encoding ? file.bodies[encoding]! : file.bodies.identity);
}

const TEXT = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Parley Console is not built</title></head>
<body>
<h1>Parley Console is not built</h1>
<p>This server has no built console to serve. Run <code>npm run build</code> in the Parley folder (or <code>npm start</code>, which builds what is missing), then reload this page.</p>
</body>
</html>
`;

export type ConsoleHandler = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => Promise<void>;

/** The handler of every path CONSOLE_PATH matches. */
export function createConsoleHandler(config: ConsoleConfig, log: Logger): ConsoleHandler {
  const dir = config.dir ?? defaultConsoleDir();
  let build: Build | undefined;
  let loading: Promise<Build | undefined> | undefined;

  /** The build as on disk now; undefined when there is none. Concurrent requests share one load. */
  const current = async (): Promise<Build | undefined> => {
    const stat = await fs.stat(path.join(dir, "manifest.json")).catch(() => undefined);
    if (!stat) return (build = undefined);
    if (build?.manifestMtimeMs === stat.mtimeMs) return build;
    loading ??= loadBuild(dir, stat.mtimeMs)
      .then(
        (loaded) => (build = loaded),
        (error: unknown) => {
          log.error({ err: error, dir }, "the built console could not be read");
          return (build = undefined);
        },
      )
      .finally(() => (loading = undefined));
    return loading;
  };

  return async (req, res, pathname) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(req, res, 405, { ...TEXT, allow: "GET, HEAD" }, "Method not allowed\n");
    }
    const loaded = await current();
    if (!loaded) {
      return send(req, res, 503, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }, NOT_BUILT_PAGE);
    }
    const asset = ASSET_PATH.exec(pathname);
    if (asset) {
      const file = loaded.assets.get(asset[1]);
      return file ? sendFile(req, res, file, IMMUTABLE) : send(req, res, 404, TEXT, "Not found\n");
    }
    // A page of the console: anything else with a dot in its last segment is a file we do not have.
    const last = pathname.slice(pathname.lastIndexOf("/") + 1);
    if (pathname === "/console/assets" || pathname.startsWith("/console/assets/") || last.includes(".")) return send(req, res, 404, TEXT, "Not found\n");
    return sendFile(req, res, loaded.index, "no-cache");
  };
}
