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
