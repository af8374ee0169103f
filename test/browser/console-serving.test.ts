/**
 * How /console is served, over plain HTTP: the page and its hashed assets with their cache headers and the
 * Content-Security-Policy, compression, 404 for anything that is not a built file (paths that try to climb
 * out included), 503 with directions when there is no build, and nothing at all with CONSOLE_ENABLED=false.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import zlib from "node:zlib";
import { buildConsoleForTests } from "../helpers/browser";
import { createTestApp, type TestApp } from "../helpers/server";
import { loadConfig } from "../../src/config";
import { CONSOLE_CSP } from "../../src/server/console";

let app: TestApp;
let dir: string;
let manifest: { assets: Record<string, { type: string; encodings: { br?: string; gzip?: string } }> };
let js: string;
let css: string;

beforeAll(async () => {
  dir = await buildConsoleForTests();
  manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  js = Object.keys(manifest.assets).find((name) => /^console-\w+\.js$/.test(name))!;
  css = Object.keys(manifest.assets).find((name) => /^console-\w+\.css$/.test(name))!;
  app = await createTestApp({ CONSOLE_ENABLED: "true", CONSOLE_DIR: dir });
}, 120_000);
afterAll(async () => {
  await app?.dispose();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A raw request: fetch would normalise the path (../) and decode the body itself. */
function get(url: string, pathname: string, headers: Record<string, string> = {}, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}${pathname}`, { method, headers, path: pathname }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on("error", reject);
    request.end();
  });
}

const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

it("serves the page without caching it, under a strict Content-Security-Policy", async () => {
  expect(CONSOLE_CSP).toBe(EXPECTED_CSP);
  for (const pathname of ["/console", "/console/", "/console/conversations", "/console/conversations/0b7c3c3e-1f7e-4a51-9f39-2f1d2f6f0a11"]) {
    const answer = await get(app.url, pathname);
    expect({ pathname, status: answer.status }).toEqual({ pathname, status: 200 });
    expect(answer.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(answer.headers["cache-control"]).toBe("no-cache");
    expect(answer.headers["content-security-policy"]).toBe(EXPECTED_CSP);
    expect(answer.headers["x-content-type-options"]).toBe("nosniff");
    expect(answer.headers["x-frame-options"]).toBe("DENY");
    expect(answer.headers["referrer-policy"]).toBe("no-referrer");
    const html = answer.body.toString("utf8");
    expect(html).toContain(`<script type="module" src="/console/assets/${js}"></script>`);
    expect(html).toContain(`<link rel="stylesheet" href="/console/assets/${css}" />`);
    // Nothing inline that the policy would have to allow: no inline script or style, no remote URL.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  }
});

it("answers a revalidation of the page with 304 while it is unchanged", async () => {
  const first = await get(app.url, "/console");
  const etag = first.headers.etag!;
  expect(etag).toMatch(/^"[\w-]+"$/);
  const again = await get(app.url, "/console", { "if-none-match": etag });
  expect(again.status).toBe(304);
  expect(again.body.length).toBe(0);
  expect(again.headers["content-security-policy"]).toBe(EXPECTED_CSP);
});

it("serves hashed assets for a year, compressed when the client accepts it", async () => {
  const plain = await get(app.url, `/console/assets/${js}`);
  expect(plain.status).toBe(200);
  expect(plain.headers["content-type"]).toBe("text/javascript; charset=utf-8");
  expect(plain.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
  expect(plain.headers["x-content-type-options"]).toBe("nosniff");
  expect(plain.headers["content-encoding"]).toBeUndefined();
  expect(plain.headers.vary).toBe("accept-encoding");
  expect(Number(plain.headers["content-length"])).toBe(plain.body.length);
  // No CDN, nothing fetched from elsewhere at run time: the bundle names no remote script or stylesheet.
  expect(plain.body.toString("utf8")).not.toMatch(/\bimport\s*\(\s*["']https?:/);

  const brotli = await get(app.url, `/console/assets/${js}`, { "accept-encoding": "gzip, deflate, br" });
  expect(brotli.headers["content-encoding"]).toBe("br");
  expect(zlib.brotliDecompressSync(brotli.body).equals(plain.body)).toBe(true);

  const gzip = await get(app.url, `/console/assets/${js}`, { "accept-encoding": "gzip, br;q=0" });
  expect(gzip.headers["content-encoding"]).toBe("gzip");
  expect(zlib.gunzipSync(gzip.body).equals(plain.body)).toBe(true);

  const style = await get(app.url, `/console/assets/${css}`);
  expect(style.headers["content-type"]).toBe("text/css; charset=utf-8");
  expect(style.headers["cache-control"]).toBe("public, max-age=31536000, immutable");

  const head = await get(app.url, `/console/assets/${css}`, {}, "HEAD");
  expect(head.status).toBe(200);
  expect(head.body.length).toBe(0);
  expect(Number(head.headers["content-length"])).toBe(style.body.length);
});

it("answers 404 for anything that is not a built file, paths climbing out included", async () => {
  const secret = path.join(dir, "..", `parley-console-secret-${process.pid}.txt`);
  fs.writeFileSync(secret, "must not be served");
  try {
    for (const pathname of [
      "/console/assets/console-NOTHERE.js",
      "/console/assets/",
      "/console/assets",
      "/console/manifest.json",
      "/console/index.html",
      "/console/favicon.ico",
      `/console/assets/${js}.missing`,
      "/console/assets/..%2f..%2fpackage.json",
      "/console/assets/%2e%2e/%2e%2e/package.json",
      "/console/assets/../../package.json",
      `/console/assets/..%2f..%2f${path.basename(secret)}`,
      "/console/assets/%2fetc%2fpasswd",
      "/console/..%2f..%2fpackage.json",
    ]) {
      const answer = await get(app.url, pathname);
      const text = answer.body.toString("utf8");
      // "../" may be resolved before the console sees the path: then it is not a console path at all.
      expect({ pathname, status: answer.status }).toEqual({ pathname, status: 404 });
      expect(text).not.toContain("must not be served");
      expect(text).not.toContain('"name": "parley"');
    }
  } finally {
    fs.rmSync(secret, { force: true });
  }
});

it("answers only GET and HEAD", async () => {
  const answer = await get(app.url, "/console", {}, "POST");
  expect(answer.status).toBe(405);
  expect(answer.headers.allow).toBe("GET, HEAD");
});

it("says to run npm run build when there is no build", async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "parley-console-empty-"));
  const unbuilt = await createTestApp({ CONSOLE_ENABLED: "true", CONSOLE_DIR: empty });
  try {
    for (const pathname of ["/console", `/console/assets/${js}`]) {
      const answer = await get(unbuilt.url, pathname);
      expect(answer.status).toBe(503);
      expect(answer.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(answer.headers["cache-control"]).toBe("no-store");
      expect(answer.headers["content-security-policy"]).toBe(EXPECTED_CSP);
      expect(answer.body.toString("utf8")).toContain("npm run build");
    }
  } finally {
    await unbuilt.dispose();
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

it("serves nothing at /console with CONSOLE_ENABLED=false, and is off by default in production", async () => {
  const off = await createTestApp({ CONSOLE_ENABLED: "false", CONSOLE_DIR: dir });
  try {
    expect((await get(off.url, "/console")).status).toBe(404);
    expect((await get(off.url, `/console/assets/${js}`)).status).toBe(404);
  } finally {
    await off.dispose();
  }
  expect(loadConfig({ NODE_ENV: "production" }).console.enabled).toBe(false);
  expect(loadConfig({ NODE_ENV: "production", CONSOLE_ENABLED: "true" }).console.enabled).toBe(true);
  expect(loadConfig({ NODE_ENV: "development" }).console.enabled).toBe(true);
  expect(() => loadConfig({ CONSOLE_ENABLED: "maybe" })).toThrow(/CONSOLE_ENABLED must be true or false/);
});
