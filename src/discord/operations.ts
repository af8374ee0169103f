/**
 * Every GraphQL document the Discord adapter runs, and the shapes of their answers. They are ordinary
 * operations of the public schema: anything the adapter does, a client with the same key could do over HTTP.
 */

export const VIEWER = /* GraphQL */ `
  query DiscordAdapterViewer {
    viewer { id displayName role }
    discordBindings(first: 0) { totalCount }
  }
`;

const BINDING_FIELDS = /* GraphQL */ `
  fragment BindingFields on DiscordBinding {
    channelId
    guildId
    lastRelayedMessageId
    resumeAfterSeq
    conversation { id title status messageCount createdAt }
  }
`;

export const BINDINGS = /* GraphQL */ `
  query DiscordBindings($after: String) {
    discordBindings(first: 100, after: $after) {
      edges { node { ...BindingFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
  ${BINDING_FIELDS}
`;

export const BINDING = /* GraphQL */ `
  query DiscordBinding($channelId: String!) {
    discordBinding(channelId: $channelId) { ...BindingFields }
  }
  ${BINDING_FIELDS}
`;

export interface BindingData {
  channelId: string;
  guildId: string | null;
  lastRelayedMessageId: string | null;
  resumeAfterSeq: number;
  conversation: { id: string; title: string; status: string; messageCount: number; createdAt: string };
}

export const UPSERT_USER = /* GraphQL */ `
  mutation DiscordUpsertUser($input: UpsertDiscordUserInput!) {
    upsertDiscordUser(input: $input) { id displayName }
  }
`;

export const START = /* GraphQL */ `
  mutation DiscordStart($input: CreateConversationInput!) {
    createConversation(input: $input) { id title status messageCount createdAt }
  }
`;

export const STOP = /* GraphQL */ `
  mutation DiscordStop($id: UUID!) {
    archiveConversation(id: $id) { id status messageCount }
  }
`;

export const STATUS = /* GraphQL */ `
  query DiscordStatus($id: UUID!) {
    conversation(id: $id) { id title status messageCount createdAt updatedAt owner { displayName } }
  }
`;

export const USAGE = /* GraphQL */ `
  query DiscordUsage($userId: UUID!, $guildId: String!, $from: DateTime!, $to: DateTime!) {
    mine: budgetStatus(userId: $userId) { spentUsd percent resetsAt budget { limitUsd period } }
    guild: budgetStatus(guildId: $guildId) { spentUsd percent resetsAt budget { limitUsd period } }
    usage(filter: { userId: $userId, from: $from, to: $to }, period: MONTH) { requests costUsd }
  }
`;

export const HISTORY = /* GraphQL */ `
  query DiscordHistory($id: UUID!, $count: Int!) {
    conversation(id: $id) {
      messageCount
      messages(last: $count) { edges { node { seq role content createdAt author { displayName } } } }
    }
  }
`;

export interface HistoryData {
  conversation: {
    messageCount: number;
    messages: { edges: { node: { seq: number; role: string; content: string; createdAt: string; author: { displayName: string } | null } }[] };
  };
}

export const ADD_MESSAGE = /* GraphQL */ `
  mutation DiscordRelay($input: AddMessageInput!) {
    addMessage(input: $input) { id seq }
  }
`;

export const RECORD_EDIT = /* GraphQL */ `
  mutation DiscordEdit($input: RecordDiscordEditInput!) {
    recordDiscordEdit(input: $input) { id }
  }
`;

export const RECORD_DELETION = /* GraphQL */ `
  mutation DiscordDeletion($input: DiscordMessageRef!) {
    recordDiscordDeletion(input: $input) { id }
  }
`;

export const RECORD_POST = /* GraphQL */ `
  mutation DiscordPost($input: RecordDiscordPostInput!) {
    recordDiscordPost(input: $input) { status discordMessageIds }
  }
`;

/** A click on a reply's 👍/👎 button, as the clicking Discord member's feedback (see feedback.ts). */
export const RATE_MESSAGE = /* GraphQL */ `
  mutation DiscordRate($input: RateMessageInput!) {
    rateMessage(input: $input) { id rating }
  }
`;

/** Everything that happens in a bound conversation; the adapter posts the ASSISTANT messages. */
export const EVENTS = /* GraphQL */ `
  subscription DiscordEvents($id: UUID!, $after: Int) {
    conversationEvents(conversationId: $id, afterSeq: $after) {
      __typename
      ... on MessageAddedEvent { message { ...Reply } }
      ... on MessageUpdatedEvent { message { ...Reply } }
      ... on MessageDeltaEvent { messageId index text }
    }
  }
  fragment Reply on Message {
    id seq role status content chunkCount
    discordPost { status discordMessageIds }
  }
`;

export interface ReplyData {
  id: string;
  seq: number;
  role: string;
  status: "COMPLETE" | "STREAMING" | "FAILED";
  content: string;
  chunkCount: number;
  discordPost: { status: "POSTING" | "POSTED" | "FAILED"; discordMessageIds: string[] } | null;
}

export type EventData =
  | { __typename: "MessageAddedEvent" | "MessageUpdatedEvent"; message: ReplyData }
  | { __typename: "MessageDeltaEvent"; messageId: string; index: number; text: string };

/** The guild's settings (guild-configs.ts caches them); null when none are stored. */
export const GUILD_CONFIG = /* GraphQL */ `
  query DiscordGuildConfig($guildId: String!) {
    guildConfig(guildId: $guildId) { settings }
  }
`;

/** The settings the adapter acts on; the server checked their shape (see GuildConfig.settings). */
export interface GuildSettingsData {
  allowedChannels?: string[];
  rag?: { enabled: boolean; topK: number };
  language?: string;
}

/**
 * `/parley search`: the guild's documents and, in a recorded channel, its conversation's messages. The messages
 * part is left out (not searched everywhere) when the channel is not recorded.
 */
export const SEARCH = /* GraphQL */ `
  query DiscordSearch($query: String!, $guildId: String!, $first: Int!, $language: String, $conversationId: UUID, $inChannel: Boolean!) {
    documents: searchDocuments(query: $query, filter: { scope: { kind: GUILD, guildId: $guildId } }, first: $first, language: $language) {
      score
      highlight
      chunk { id position content }
      document { id title sourceUrl }
    }
    messages: searchMessages(query: $query, filter: { conversationId: $conversationId }, first: $first) @include(if: $inChannel) {
      rank
      highlight
      message { id seq role author { displayName } }
    }
  }
`;

export interface SearchData {
  documents: { score: number; highlight: string | null; chunk: { id: string; position: number; content: string }; document: { id: string; title: string; sourceUrl: string | null } }[];
  /** Absent when the channel is not recorded. */
  messages?: { rank: number; highlight: string; message: { id: string; seq: number; role: string; author: { displayName: string } | null } }[];
}
