/**
 * Who is asking, and what that lets them reach. Every access decision about conversations goes through
 * these functions, so the access issue (service grants) changes one place.
 */
import { Role } from "./role.enum";

export interface Viewer {
  id: string;
  /** The effective role: the user's, or the lower one its API key carries. */
  role: Role;
  displayName: string;
  /** The API key the request came with (undefined for JWTs): rate limits count per key, revocation closes its sockets. */
  apiKeyId?: string;
}

export const isAdmin = (viewer: Viewer): boolean => viewer.role === Role.ADMIN;

/**
 * Admins reach every conversation. Services (bots, AI workers) also do until per-conversation grants
 * exist; members reach only their own.
 */
export function reachesAllConversations(viewer: Viewer): boolean {
  return viewer.role === Role.ADMIN || viewer.role === Role.SERVICE;
}

export function canReadConversation(viewer: Viewer, conversation: { ownerId: string }): boolean {
  return reachesAllConversations(viewer) || conversation.ownerId === viewer.id;
}

/** Members write only USER messages; assistant, system and tool messages come from services and admins. */
export function canWriteRole(viewer: Viewer, role: string): boolean {
  return viewer.role !== Role.MEMBER || role === "user";
}
