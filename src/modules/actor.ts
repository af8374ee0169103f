/**
 * Who is asking, and what a service needs to answer them: the viewer (null for an anonymous caller), the
 * database, the settings, per-request loaders, and this process's live hub and export jobs when it runs a
 * server. Services take an Actor, never a transport's context, so the CLI, background jobs and the Discord
 * process call them directly with `actorFor`; GraphQL's context (graphql/context.ts) is an Actor built per
 * request after the token is checked.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config";
import type { Database } from "../db/database";
import type { Viewer } from "./user/viewer";
import type { ApiKeyCache } from "./api-key/api-key.cache";
import type { LiveHub } from "./live/live.hub";
import type { LiveStream } from "./live/live-stream";
import type { TranscriptJobs } from "./transcript/transcript.jobs";
import { createLoaders, type Loaders } from "./loaders";

export interface Actor {
  viewer: Viewer | null;
  loaders: Loaders;
  db: Database;
  config: Config;
  log: Logger;
  /** Names the request (or job) in logs and the audit log. */
  requestId: string;
  /** The client's address, when the actor came over the network. */
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

/** What every actor of a process shares. */
export interface ActorDeps {
  db: Database;
  config: Config;
  log: Logger;
  live?: LiveHub;
  apiKeyCache?: ApiKeyCache;
  transcripts?: TranscriptJobs;
}

/** An actor for a known viewer: a request after its token was checked, a subscription event, a job, the CLI. */
export function actorFor(deps: ActorDeps, viewer: Viewer | null, extra: { requestId?: string; ip?: string | null } = {}): Actor {
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
 * New, empty loaders for a long-lived actor: graphql-ws builds a subscription's context once, and rows
 * cached for one event must not be served, stale, for the next.
 */
export function renewLoaders(actor: Actor): void {
  actor.loaders = createLoaders(actor.db.knex, actor.config.encryption);
}
