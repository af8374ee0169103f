/**
 * Who is signed in. The token (an API key or a JWT) lives in sessionStorage: it is gone when the tab closes,
 * and other tabs do not share it. Any UNAUTHENTICATED answer, over HTTP or the websocket, ends the session
 * with a notice saying why (client.ts calls expire()).
 */
import { ApiError, describeError, request } from "./api";
import { Store } from "./store";

export type Role = "ADMIN" | "MEMBER" | "SERVICE";

export interface Viewer {
  id: string;
  displayName: string;
  role: Role;
}

export type Session =
  | { status: "signed-out"; notice?: string }
  | { status: "checking" }
  /** A stored token could not be checked (the server is away): keep it, offer to retry. */
  | { status: "unreachable"; message: string }
  | { status: "signed-in"; token: string; viewer: Viewer };

const STORAGE_KEY = "parley.console.token";

export const EXPIRED_NOTICE =
  "You were signed out: this key or token is no longer valid (revoked, expired, or its user was deactivated). Sign in again.";

export const VIEWER_QUERY = "query ConsoleViewer { viewer { id displayName role } }";

export const session = new Store<Session>({ status: "checking" });

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the user signs in for each page load
  }
}

function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

/** "Bearer pk_…" pasted whole works too. */
export function normalizeToken(raw: string): string {
  return raw.trim().replace(/^bearer\s+/i, "");
}

async function fetchViewer(token: string): Promise<Viewer> {
  return (await request<{ viewer: Viewer }>(VIEWER_QUERY, undefined, token)).viewer;
}

/** Checks the token with `viewer`; throws a message for the sign-in form when it does not work. */
export async function signIn(raw: string): Promise<void> {
  const token = normalizeToken(raw);
  if (!token) throw new Error("Paste an API key or a JWT.");
  try {
    const viewer = await fetchViewer(token);
    storeToken(token);
    session.set({ status: "signed-in", token, viewer });
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") throw new Error("Parley does not accept this key or token.");
    throw new Error(describeError(error));
  }
}

export function signOut(notice?: string): void {
  storeToken(null);
  session.set({ status: "signed-out", notice });
}

/** The token stopped working. Only the session that used `token` ends (a late answer of an older one is ignored). */
export function expire(token: string): void {
  const current = session.value;
  if (current.status === "signed-in" && current.token === token) signOut(EXPIRED_NOTICE);
}

/** Refreshes the viewer (its role may have changed); ends the session when the token no longer works. */
export async function refreshViewer(): Promise<void> {
  const current = session.value;
  if (current.status !== "signed-in") return;
  try {
    const viewer = await fetchViewer(current.token);
    const now = session.value;
    if (now.status === "signed-in" && now.token === current.token) session.set({ ...now, viewer });
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") expire(current.token);
  }
}

/** At page load: resume the tab's session, if it has one. */
export async function restoreSession(): Promise<void> {
  const token = storedToken();
  if (!token) return session.set({ status: "signed-out" });
  session.set({ status: "checking" });
  try {
    session.set({ status: "signed-in", token, viewer: await fetchViewer(token) });
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") signOut(EXPIRED_NOTICE);
    else session.set({ status: "unreachable", message: describeError(error) });
  }
}
