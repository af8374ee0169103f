/**
 * CORS for browser clients on other origins (CORS_ORIGINS). An allowed Origin is echoed back; any other
 * gets no CORS header at all, so the browser withholds the response. Tokens travel in the Authorization
 * header, never in cookies, so credentials are not allowed. Apollo's CSRF prevention stays on regardless.
 */
import type http from "node:http";

const ALLOW_METHODS = "GET, POST";
const ALLOW_HEADERS = "authorization, content-type, apollo-require-preflight, x-request-id";
const EXPOSE_HEADERS = "x-request-id, retry-after";
/** Seconds a browser may cache a preflight answer. */
const MAX_AGE = "600";

export function isAllowedOrigin(origins: readonly string[], origin: string | undefined): origin is string {
  return origin !== undefined && (origins.includes("*") || origins.includes(origin));
}

/**
 * Sets the CORS headers of a /graphql response (before anything is written, so error answers such as 429
 * and 413 carry them too and the browser lets the client read them). `preflight`: an OPTIONS request.
 */
export function applyCors(req: http.IncomingMessage, res: http.ServerResponse, origins: readonly string[], preflight: boolean): void {
  // The answer depends on Origin, so caches must keep one copy per origin.
  res.setHeader("vary", "Origin");
  const origin = req.headers.origin;
  if (!isAllowedOrigin(origins, origin)) return;
  res.setHeader("access-control-allow-origin", origin);
  if (preflight) {
    res.setHeader("access-control-allow-methods", ALLOW_METHODS);
    res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
    res.setHeader("access-control-max-age", MAX_AGE);
  } else {
    res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
  }
}
