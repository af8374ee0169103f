/**
 * The operations the console sends, next to the shapes they answer with (a subset of schema.graphql).
 * Names start with Console so that server logs and metrics tell the console's traffic apart.
 */

export type Origin = "WEB" | "API" | "DISCORD";
export type ConversationStatus = "ACTIVE" | "ARCHIVED";
export type MessageRole = "USER" | "ASSISTANT" | "SYSTEM" | "TOOL";
export type MessageStatus = "COMPLETE" | "STREAMING" | "FAILED";

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface Person {
  id: string;
  displayName: string;
  role: string;
}

export interface ConversationSummary {
  id: string;
  title: string;
  origin: Origin;
  status: ConversationStatus;
  updatedAt: string;
  messageCount: number;
  owner: Person;
  lastMessage: { id: string; role: MessageRole; content: string; createdAt: string } | null;
}

export interface ChatMessage {
  id: string;
  seq: number;
  role: MessageRole;
  status: MessageStatus;
  content: string;
  chunkCount: number;
  createdAt: string;
  model: string | null;
  toolCalls: unknown;
  author: Person | null;
}

export interface MessageDetails {
  id: string;
  metadata: Record<string, unknown>;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  requestId: string | null;
  createdAt: string;
  updatedAt: string;
  sentBy: Person | null;
}

const CONVERSATION_SUMMARY = `
  fragment ConsoleConversationSummary on Conversation {
    id title origin status updatedAt messageCount
    owner { id displayName role }
    lastMessage { id role content createdAt }
  }`;

const CHAT_MESSAGE = `
  fragment ConsoleChatMessage on Message {
    id seq role status content chunkCount createdAt model toolCalls
    author { id displayName role }
  }`;

export const CONVERSATIONS = `
  query ConsoleConversations($first: Int!, $after: String, $filter: ConversationFilter) {
    conversations(first: $first, after: $after, filter: $filter) {
      edges { node { ...ConsoleConversationSummary } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
  ${CONVERSATION_SUMMARY}`;

export const CONVERSATIONS_CHANGED = `
  subscription ConsoleConversationsChanged {
    conversationsChanged { conversationId deleted conversation { ...ConsoleConversationSummary } }
  }
  ${CONVERSATION_SUMMARY}`;

export const CREATE_CONVERSATION = `
  mutation ConsoleCreateConversation($title: String!) {
    createConversation(input: { title: $title, origin: WEB }) { ...ConsoleConversationSummary }
  }
  ${CONVERSATION_SUMMARY}`;

export const SEARCH_MESSAGES = `
  query ConsoleSearchMessages($query: String!, $first: Int!) {
    searchMessages(query: $query, first: $first) {
      highlight
      message { id seq createdAt conversation { id title } }
    }
  }`;

export const CONVERSATION = `
  query ConsoleConversation($id: UUID!, $last: Int!) {
    conversation(id: $id) {
      ...ConsoleConversationSummary
      messages(last: $last) {
        edges { node { ...ConsoleChatMessage } }
        pageInfo { hasPreviousPage startCursor }
      }
    }
  }
  ${CONVERSATION_SUMMARY}
  ${CHAT_MESSAGE}`;

export const OLDER_MESSAGES = `
  query ConsoleOlderMessages($id: UUID!, $last: Int!, $before: String!) {
    conversation(id: $id) {
      id
      messages(last: $last, before: $before) {
        edges { node { ...ConsoleChatMessage } }
        pageInfo { hasPreviousPage startCursor }
      }
    }
  }
  ${CHAT_MESSAGE}`;

export const MESSAGE = `
  query ConsoleMessage($id: UUID!) { message(id: $id) { ...ConsoleChatMessage } }
  ${CHAT_MESSAGE}`;

export const MESSAGE_DETAILS = `
  query ConsoleMessageDetails($id: UUID!) {
    message(id: $id) {
      id metadata model promptTokens completionTokens costUsd latencyMs requestId createdAt updatedAt
      sentBy { id displayName role }
    }
  }`;

export const ADD_MESSAGE = `
  mutation ConsoleAddMessage($input: AddMessageInput!) { addMessage(input: $input) { ...ConsoleChatMessage } }
  ${CHAT_MESSAGE}`;

export const CONVERSATION_EVENTS = `
  subscription ConsoleConversationEvents($id: UUID!, $after: Int, $streaming: [Int!]) {
    conversationEvents(conversationId: $id, afterSeq: $after, streamingSeqs: $streaming) {
      __typename
      ... on MessageAddedEvent { message { ...ConsoleChatMessage } }
      ... on MessageDeltaEvent { messageId seq index text }
      ... on MessageUpdatedEvent { message { ...ConsoleChatMessage } }
    }
  }
  ${CHAT_MESSAGE}`;

export type ConversationEvent =
  | { __typename: "MessageAddedEvent"; message: ChatMessage }
  | { __typename: "MessageDeltaEvent"; messageId: string; seq: number; index: number; text: string }
  | { __typename: "MessageUpdatedEvent"; message: ChatMessage };

export interface Connection<T> {
  edges: { node: T }[];
  pageInfo: PageInfo;
  totalCount?: number;
}
