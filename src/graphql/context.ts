/**
 * The request context, built by one factory for every transport (HTTP, graphql-ws, Discord), so auth,
 * limits and loaders behave the same whichever way an operation arrives.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config";
import type { Database } from "../db/database";
import type { Viewer } from "../modules/user/viewer";
import { authenticateApiKey, isApiKey } from "../modules/api-key/api-key.service";
import type { ApiKeyCache } from "../modules/api-key/api-key.cache";
import { looksLikeJwt, viewerForJwt, type RequestMeta } from "../modules/auth/jwt.service";
import type { LiveHub } from "../modules/live/live.hub";
import type { LiveStream } from "../modules/live/live-stream";
import type { TranscriptJobs } from "../modules/transcript/transcript.jobs";
import { createLoaders, type Loaders } from "./loaders";
import { UnauthenticatedError } from "./errors";

export interface Context {
  viewer: Viewer | null;
  loaders: Loaders;
  db: Database;
  config: Config;
  log: Logger;
  requestId: string;
  ip: string | null;
  /** Live events of this process; absent outside a running server (CLI, seeds). */
  live?: LiveHub;
  /** A subscription's stream, set when it opens: the transport reads its position and stops it (live-stream.ts). */
  liveStream?: LiveStream;
  /** This process's authenticated keys; a change of access clears it (see api-key.cache.ts). */
  apiKeyCache?: ApiKeyCache;
  /** Transcript exports and their storage; absent outside a running server. */
  transcripts?: TranscriptJobs;
}

export interface ContextDeps {
  db: Database;
  config: Config;
  log: Logger;
  live?: LiveHub;
  apiKeyCache?: ApiKeyCache;
  transcripts?: TranscriptJobs;
}

export interface ContextInput {
  /** The raw Authorization value ("Bearer <token>"), if any. */
  authorization?: string | null;
  requestId?: string;
  ip?: string | null;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * The viewer a bearer header stands for: null without one; UNAUTHENTICATED when it is malformed, unknown,
 * expired, revoked or its user is deactivated — one message for all, so the answer helps no attacker.
 */
export async function resolveViewer(
  deps: ContextDeps,
  authorization: string | null | undefined,
  meta: RequestMeta = {},
): Promise<Viewer | null> {
  if (authorization == null || authorization === "") return null;
  const token = BEARER.exec(authorization)?.[1];
  let viewer: Viewer | undefined;
  if (token && isApiKey(token)) viewer = await authenticateApiKey(deps.db.knex, token, deps.apiKeyCache);
  else if (token && deps.config.jwt && looksLikeJwt(token)) viewer = await viewerForJwt(deps.db.knex, deps.config.jwt, token, meta);
  if (!viewer) throw new UnauthenticatedError("Invalid or revoked token");
  return viewer;
}

export async function createContext(deps: ContextDeps, input: ContextInput = {}): Promise<Context> {
  const requestId = input.requestId ?? randomUUID();
  const viewer = await resolveViewer(deps, input.authorization, { ip: input.ip, requestId });
  return contextFor(deps, viewer, { ...input, requestId });
}

/** A context for an already known viewer (subscription events, in-process callers, tests). */
export function contextFor(deps: ContextDeps, viewer: Viewer | null, extra: { requestId?: string; ip?: string | null } = {}): Context {
  const requestId = extra.requestId ?? randomUUID();
  return {
    viewer,
    loaders: createLoaders(deps.db.knex, deps.config.encryption),
    db: deps.db,
    config: deps.config,
    log: deps.log.child({ requestId }),
    requestId,
    ip: extra.ip ?? null,
    live: deps.live,
    apiKeyCache: deps.apiKeyCache,
    transcripts: deps.transcripts,
  };
}

/**
 * New, empty loaders for a long-lived context: graphql-ws builds a subscription's context once, and rows
 * cached for one event must not be served, stale, for the next.
 */
export function renewLoaders(ctx: Context): void {
  ctx.loaders = createLoaders(ctx.db.knex, ctx.config.encryption);
}

/** The viewer, or UNAUTHENTICATED. Resolvers call this rather than reading ctx.viewer. */
export function viewerOf(ctx: Context): Viewer {
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer;
}
