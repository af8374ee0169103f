/**
 * What the live suites share: a graphql-ws client as the tests use it (no reconnecting by itself: a test
 * resumes as a client would), and the conversationEvents document a chat view would send.
 */
import WebSocket from "ws";
import { createClient, type Client, type ClientOptions } from "graphql-ws";

/** A graphql-ws client of the server at `httpUrl` (http://host:port) with `token` in connection_init. */
export function wsClient(httpUrl: string, token: string, options: Partial<ClientOptions> = {}): Client {
  return createClient({
    url: `${httpUrl.replace("http", "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    ...options,
  });
}

/** conversationEvents with every event's fields; `streaming` is streamingSeqs. */
export const CONVERSATION_EVENTS = `subscription($id: UUID!, $after: Int, $streaming: [Int!]) {
  conversationEvents(conversationId: $id, afterSeq: $after, streamingSeqs: $streaming) {
    __typename
    ... on MessageAddedEvent { message { id seq status content chunkCount } }
    ... on MessageDeltaEvent { messageId seq index text }
    ... on MessageUpdatedEvent { message { id seq status content chunkCount } }
  }
}`;

/**
 * One subscription on a websocket of its own, speaking graphql-transport-ws by hand: light enough to open by the
 * thousand in one test process. Keeps every `next` payload as the text the server sent, so tests can compare
 * the bytes different subscribers got.
 */
export class RawSubscription {
  /** Each `next` message's payload, as received. */
  readonly payloads: string[] = [];
  /** How the subscription ended: `complete`, or the socket closed (with its code). */
  ended: string | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {}

  /** Connects with `token`, subscribes, and resolves once the subscribe message is sent. */
  static open(httpUrl: string, token: string, query: string, variables: Record<string, unknown>): Promise<RawSubscription> {
    const socket = new WebSocket(`${httpUrl.replace("http", "ws")}/graphql`, "graphql-transport-ws");
    const subscription = new RawSubscription(socket);
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
      socket.on("close", (code) => {
        subscription.ended ??= `closed ${code}`;
        subscription.settle();
      });
      socket.on("message", (data) => {
        const text = String(data);
        const message = JSON.parse(text) as { type: string; payload?: unknown };
        if (message.type === "connection_ack") {
          socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
          resolve(subscription);
        } else if (message.type === "next") {
          // The payload's text exactly as sent: everything after `"payload":` but the closing brace.
          subscription.payloads.push(text.slice(text.indexOf('"payload":') + 10, -1));
          subscription.settle();
        } else if (message.type === "ping") socket.send(JSON.stringify({ type: "pong" }));
        else if (message.type === "complete" || message.type === "error") {
          subscription.ended = message.type;
          subscription.settle();
        }
      });
    });
  }

  /** The payloads parsed. */
  get events(): { data?: any; errors?: { message: string; extensions?: { code?: string } }[] }[] {
    return this.payloads.map((payload) => JSON.parse(payload));
  }

  /** Resolves once `done()` holds or the subscription ended; rejects after `ms`. */
  until(done: (subscription: RawSubscription) => boolean, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done(this) && !this.ended) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`still waiting after ${ms} ms; received ${this.payloads.length}: ${this.payloads.slice(-3).join(" ").slice(0, 500)}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Stops reading from the socket (a client too slow to keep up), or reads again. */
  pause(paused: boolean): void {
    if (paused) this.socket.pause();
    else this.socket.resume();
  }

  close(): void {
    this.socket.close();
  }

  private settle(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
