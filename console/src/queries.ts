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

export const RENAME_CONVERSATION = `
  mutation ConsoleRenameConversation($id: UUID!, $title: String!) {
    updateConversation(id: $id, input: { title: $title }) { ...ConsoleConversationSummary }
  }
  ${CONVERSATION_SUMMARY}`;

export const ARCHIVE_CONVERSATION = `
  mutation ConsoleArchiveConversation($id: UUID!) { archiveConversation(id: $id) { ...ConsoleConversationSummary } }
  ${CONVERSATION_SUMMARY}`;

export type TranscriptFormat = "CSV" | "JSON";

export interface TranscriptFile {
  id: string;
  status: "PENDING" | "READY" | "FAILED";
  format: TranscriptFormat;
  downloadPath: string | null;
  error: string | null;
  messageCount: number | null;
}

const TRANSCRIPT_FIELDS = "id status format downloadPath error messageCount";

export const CREATE_TRANSCRIPT = `
  mutation ConsoleCreateTranscript($input: CreateTranscriptInput!) { createTranscript(input: $input) { ${TRANSCRIPT_FIELDS} } }`;

export const TRANSCRIPT = `
  query ConsoleTranscript($id: UUID!) { transcript(id: $id) { ${TRANSCRIPT_FIELDS} } }`;

export interface UsageBucket {
  periodStart: string;
  model: string | null;
  userId: string | null;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export const USAGE = `
  query ConsoleUsage($filter: UsageFilter!, $groupBy: [UsageGroupBy!]) {
    usage(filter: $filter, period: DAY, groupBy: $groupBy) {
      periodStart model userId requests errors promptTokens completionTokens costUsd
    }
  }`;

/** Who a row names, by name (the email beside it, since names need not be unique); null when that account was deleted. */
export interface PersonRef {
  id: string;
  displayName: string;
  email: string | null;
}

const PERSON_FIELDS = "id displayName email";

export interface BudgetState {
  percent: number;
  exceeded: boolean;
  spentUsd: number;
  remainingUsd: number;
  resetsAt: string;
  budget: {
    id: string;
    limitUsd: number;
    period: string;
    enforcement: string;
    userId: string | null;
    guildId: string | null;
    /** Asked for by BUDGETS only (admins); null for a guild's budget. */
    user?: PersonRef | null;
  };
}

const BUDGET_STATUS = `
  fragment ConsoleBudgetStatus on BudgetStatus {
    percent exceeded spentUsd remainingUsd resetsAt
    budget { id limitUsd period enforcement userId guildId }
  }`;

/** The viewer's own budget (null without one). */
export const MY_BUDGET = `query ConsoleMyBudget { budgetStatus { ...ConsoleBudgetStatus } } ${BUDGET_STATUS}`;

/** Admins: every budget, newest first, with the user each caps. */
export const BUDGETS = `
  query ConsoleBudgets($first: Int!, $after: String) {
    budgets(first: $first, after: $after) {
      edges { node { ...ConsoleBudgetStatus budget { user { ${PERSON_FIELDS} } } } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
  ${BUDGET_STATUS}`;

export interface Alert {
  id: string;
  severity: "INFO" | "WARNING" | "CRITICAL";
  source: string;
  message: string;
  createdAt: string;
  acknowledgedAt: string | null;
  resolvedAt: string | null;
  userId: string | null;
}

const ALERT_FIELDS = "id severity source message createdAt acknowledgedAt resolvedAt userId";

export const ALERTS = `
  query ConsoleAlerts($first: Int!) {
    alerts(first: $first, filter: { resolved: false }) { edges { node { ${ALERT_FIELDS} } } totalCount }
  }`;

export const ALERT_RAISED = `subscription ConsoleAlertRaised { alertRaised { ${ALERT_FIELDS} } }`;

export const ACKNOWLEDGE_ALERT = `mutation ConsoleAcknowledgeAlert($id: UUID!) { acknowledgeAlert(id: $id) { ${ALERT_FIELDS} } }`;
export const RESOLVE_ALERT = `mutation ConsoleResolveAlert($id: UUID!) { resolveAlert(id: $id) { ${ALERT_FIELDS} } }`;

export interface UserRow extends PersonRef {
  role: "ADMIN" | "MEMBER" | "SERVICE";
  isActive: boolean;
}

const USER_FIELDS = `${PERSON_FIELDS} role isActive`;

export const USERS = `
  query ConsoleUsers($first: Int!, $after: String, $filter: UserFilter) {
    users(first: $first, after: $after, filter: $filter) { edges { node { ${USER_FIELDS} } } pageInfo { hasNextPage endCursor } totalCount }
  }`;

export const SET_USER_ROLE = `mutation ConsoleSetUserRole($id: UUID!, $role: Role!) { setUserRole(id: $id, role: $role) { ${USER_FIELDS} } }`;
export const DEACTIVATE_USER = `mutation ConsoleDeactivateUser($id: UUID!) { deactivateUser(id: $id) { ${USER_FIELDS} } }`;
export const REACTIVATE_USER = `mutation ConsoleReactivateUser($id: UUID!) { reactivateUser(id: $id) { ${USER_FIELDS} } }`;

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  role: string | null;
  userId: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const KEY_FIELDS = "id name prefix role userId createdAt lastUsedAt revokedAt";

export const API_KEYS = `query ConsoleApiKeys($userId: UUID) { apiKeys(userId: $userId) { ${KEY_FIELDS} } }`;
export const CREATE_API_KEY = `
  mutation ConsoleCreateApiKey($name: String!, $role: Role, $userId: UUID) { createApiKey(name: $name, role: $role, userId: $userId) { key ${KEY_FIELDS} } }`;
export const REVOKE_API_KEY = `mutation ConsoleRevokeApiKey($id: UUID!) { revokeApiKey(id: $id) { ${KEY_FIELDS} } }`;

export interface SystemConfigRow {
  key: string;
  value: unknown;
  description: string | null;
  updatedAt: string;
}

export const SYSTEM_CONFIGS = `query ConsoleSystemConfigs { systemConfigs { key value description updatedAt } }`;
export const SET_SYSTEM_CONFIG = `
  mutation ConsoleSetSystemConfig($key: String!, $value: JSON!) { setSystemConfig(key: $key, value: $value) { key value description updatedAt } }`;

export interface ServiceGrantRow {
  id: string;
  serviceId: string;
  service: PersonRef | null;
  conversationId: string | null;
  origin: string | null;
  createdAt: string;
}

const GRANT_FIELDS = `id serviceId service { ${PERSON_FIELDS} } conversationId origin createdAt`;

export const SERVICE_GRANTS = `query ConsoleServiceGrants { serviceGrants { ${GRANT_FIELDS} } }`;
export const GRANT_SERVICE = `mutation ConsoleGrantService($input: GrantServiceInput!) { grantService(input: $input) { ${GRANT_FIELDS} } }`;
export const REVOKE_SERVICE_GRANT = `mutation ConsoleRevokeServiceGrant($id: UUID!) { revokeServiceGrant(id: $id) }`;

export interface GuildConfigRow {
  guildId: string;
  settings: unknown;
  updatedAt: string;
}

export const GUILD_CONFIG = `query ConsoleGuildConfig($guildId: String!) { guildConfig(guildId: $guildId) { guildId settings updatedAt } }`;
export const SET_GUILD_CONFIG = `
  mutation ConsoleSetGuildConfig($guildId: String!, $settings: JSON!) { setGuildConfig(guildId: $guildId, settings: $settings) { guildId settings updatedAt } }`;

export interface AuditRow {
  id: string;
  action: string;
  actorId: string | null;
  actor: PersonRef | null;
  targetType: string | null;
  targetId: string | null;
  createdAt: string;
  details: unknown;
}

export const AUDIT_LOGS = `
  query ConsoleAuditLogs($first: Int!, $after: String, $filter: AuditLogFilter) {
    auditLogs(first: $first, after: $after, filter: $filter) {
      edges { node { id action actorId actor { ${PERSON_FIELDS} } targetType targetId createdAt details } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }`;
