/**
 * Who is asking. Decisions that need the database (conversation access, service grants) live in
 * modules/access; the rules here need only the viewer.
 */
import { Role } from "./role.enum";
import { UnauthenticatedError } from "../../graphql/errors";

export interface Viewer {
  id: string;
  /** The effective role: the user's, or the lower one its API key carries. */
  role: Role;
  displayName: string;
  /** The API key the request came with (undefined for JWTs): rate limits count per key, revocation closes its sockets. */
  apiKeyId?: string;
}

export const isAdmin = (viewer: Viewer): boolean => viewer.role === Role.ADMIN;

const RANK: Record<Role, number> = { [Role.MEMBER]: 0, [Role.SERVICE]: 1, [Role.ADMIN]: 2 };

/** The lower of two roles: a key never has more power than its user. */
export function lowerRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}

export function roleAtMost(role: Role, limit: Role): boolean {
  return RANK[role] <= RANK[limit];
}

/** Members write only USER messages; assistant, system and tool messages come from services and admins. */
export function canWriteRole(viewer: Viewer, role: string): boolean {
  return viewer.role !== Role.MEMBER || role === "user";
}

/** The viewer who asks, or UNAUTHENTICATED. Services and resolvers call this rather than reading `viewer`. */
export function viewerOf(actor: { viewer: Viewer | null }): Viewer {
  if (!actor.viewer) throw new UnauthenticatedError();
  return actor.viewer;
}
