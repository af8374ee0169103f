/**
 * The request context, built by one factory for every transport (HTTP, graphql-ws, Discord), so auth,
 * limits and loaders behave the same whichever way an operation arrives.
 */
import { randomUUID } from "node:crypto";
import type { Viewer } from "../modules/user/viewer";
import { actorFor, type Actor, type ActorDeps } from "../modules/actor";
import { authenticateApiKey, isApiKey } from "../modules/api-key/api-key.service";
import { looksLikeJwt, viewerForJwt, type RequestMeta } from "../modules/auth/jwt.service";
import { UnauthenticatedError } from "./errors";

/** GraphQL's context is the domain's actor (modules/actor.ts): resolvers hand it to services as it is. */
export type Context = Actor;
export type ContextDeps = ActorDeps;

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
export const contextFor = actorFor;
