/**
 * The signed-in session's GraphQL: `gql` over HTTP, `subscribe` over one graphql-ws connection (the token in
 * connection_init's payload, as every Parley client sends it). Either way an UNAUTHENTICATED answer ends
 * the session.
 *
 * A revoked key (or a deactivated user) gets its websocket closed by the server with 4403, as does a role
 * change. The two are told apart without another request: graphql-ws reconnects, and a token that no longer
 * works is refused at connection_init (4403 again, before any acknowledgement), while a re-roled one is
 * accepted, after which the viewer is read again.
 */
import { createClient, type Client } from "graphql-ws";
import { ApiError, request, type GraphQLError } from "./api";
import { expire, refreshViewer, session } from "./session";
import { Store } from "./store";

const FORBIDDEN = 4403;

export type LiveStatus = "idle" | "connecting" | "connected" | "reconnecting";
export const liveStatus = new Store<LiveStatus>("idle");

function currentToken(): string {
  const current = session.value;
  if (current.status !== "signed-in") throw new ApiError("UNAUTHENTICATED", "Not signed in.");
  return current.token;
}

export async function gql<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const token = currentToken();
  try {
    return await request<T>(query, variables, token);
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") expire(token);
    throw error;
  }
}

let live: { token: string; client: Client } | undefined;

function wsUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
}

function createLiveClient(token: string): Client {
  let acknowledged = false;
  let reconnectAfterForbidden = false;
  return createClient({
    url: wsUrl(),
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: true,
    lazyCloseTimeout: 5_000, // moving between pages should not drop and reopen the socket
    retryAttempts: Infinity, // a console left open rides out server restarts
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 300 * 2 ** retries) + Math.random() * 300)),
    shouldRetry: () => true,
    on: {
      connecting: (isRetry) => {
        acknowledged = false;
        liveStatus.set(isRetry ? "reconnecting" : "connecting");
      },
      connected: () => {
        acknowledged = true;
        liveStatus.set("connected");
        if (reconnectAfterForbidden) {
          reconnectAfterForbidden = false;
          void refreshViewer(); // accepted again: the role may be another one now
        }
      },
      closed: (event) => {
        const code = (event as { code?: number } | undefined)?.code;
        if (code === FORBIDDEN && !acknowledged) return queueMicrotask(() => expire(token)); // refused at connection_init
        if (code === FORBIDDEN) reconnectAfterForbidden = true;
        liveStatus.set(code === 1000 ? "idle" : "reconnecting");
      },
    },
  });
}

function liveClient(): Client {
  const token = currentToken();
  if (live?.token !== token) {
    live?.client.dispose();
    live = { token, client: createLiveClient(token) };
  }
  return live.client;
}

session.subscribe((current) => {
  if (live && (current.status !== "signed-in" || current.token !== live.token)) {
    live.client.dispose();
    live = undefined;
    liveStatus.set("idle");
  }
});

export interface SubscriptionHandlers<T> {
  next(data: T): void;
  /** The stream ended with an error (NOT_FOUND when access was lost, SERVICE_UNAVAILABLE, ...). */
  error(error: ApiError): void;
}

/** Starts a subscription; returns what stops it. */
export function subscribe<T>(query: string, variables: Record<string, unknown>, handlers: SubscriptionHandlers<T>): () => void {
  const token = currentToken();
  const fail = (errors: readonly GraphQLError[]) => {
    const error = ApiError.from(errors[0]);
    if (error.code === "UNAUTHENTICATED") expire(token);
    handlers.error(error);
  };
  return liveClient().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) fail(result.errors as readonly GraphQLError[]);
        else if (result.data) handlers.next(result.data as T);
      },
      error: (error) => {
        if (Array.isArray(error)) fail(error as GraphQLError[]);
        else if (session.value.status === "signed-in") handlers.error(new ApiError("NETWORK", "The live connection closed."));
      },
      complete: () => undefined,
    },
  );
}

/**
 * GETs a file Parley serves behind the bearer token (a transcript's downloadPath): a plain link cannot send
 * the Authorization header, so the page fetches the bytes and offers them as a blob: URL.
 */
export async function fetchFile(path: string): Promise<Blob> {
  const token = currentToken();
  let response: Response;
  try {
    response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  } catch {
    throw new ApiError("NETWORK", "Parley could not be reached. Check the connection and try again.");
  }
  if (response.status === 401) {
    expire(token);
    throw new ApiError("UNAUTHENTICATED", "Not signed in.");
  }
  if (!response.ok) throw new ApiError("DOWNLOAD_FAILED", `The download failed (HTTP ${response.status}).`);
  return response.blob();
}
