/**
 * The three operations of the workload, as each measured system is asked for them, and one normal form of
 * their answers so that the systems can be checked against each other before anything is timed.
 *   H  one conversation by id with its newest H_PAGE messages (chronological), each with its author;
 *   I  one member's I_PAGE most recently updated conversations, each with its newest message;
 *   W  add one message to a conversation, returning the new message's id.
 */
import { H_PAGE, I_PAGE } from "./workload";

export type OperationName = "H" | "I" | "W";
export const OPERATIONS: OperationName[] = ["H", "I", "W"];

export interface Target {
  /** A member and one of their conversations, picked at random per request. */
  userId: string;
  conversationId: string;
  /** The member's Parley API key. */
  token: string;
  content: string;
}

export interface HistoryAnswer {
  id: string;
  title: string;
  messages: { id: string; role: string; content: string; createdAt: string; author: { id: string; displayName: string } | null }[];
}

export interface InboxItem {
  id: string;
  title: string;
  updatedAt: string;
  lastMessage: { id: string; role: string; content: string; createdAt: string } | null;
}

export interface Request {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface System {
  name: string;
  request(op: OperationName, target: Target): Request;
  /** The answer of H, I or W in normal form (W: the new message's id). */
  normalise(op: OperationName, body: any): HistoryAnswer | InboxItem[] | string;
}

const json = { "content-type": "application/json" };
const time = (value: string) => new Date(value).toISOString();
const gql = (query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}): Request => ({
  path: "/graphql",
  headers: { ...json, ...headers },
  body: JSON.stringify({ query, variables }),
});

function assertData(body: any): any {
  if (!body?.data || body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body?.errors ?? body).slice(0, 500)}`);
  return body.data;
}

const PARLEY_H = `query H($id: UUID!) { conversation(id: $id) { id title messages(last: ${H_PAGE}) { edges { node {
  id role content createdAt author { id displayName } } } } } }`;
const PARLEY_I = `query I { conversations(first: ${I_PAGE}) { edges { node { id title updatedAt lastMessage { id role content createdAt } } } } }`;
const PARLEY_W = `mutation W($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { id } }`;

export const parley: System = {
  name: "Parley",
  request(op, t) {
    const auth = { authorization: `Bearer ${t.token}` };
    if (op === "H") return gql(PARLEY_H, { id: t.conversationId }, auth);
    if (op === "I") return gql(PARLEY_I, {}, auth);
    return gql(PARLEY_W, { c: t.conversationId, t: t.content }, auth);
  },
  normalise(op, body) {
    const data = assertData(body);
    if (op === "W") return data.addMessage.id;
    if (op === "H") {
      const { id, title, messages } = data.conversation;
      return { id, title, messages: messages.edges.map(({ node }: any) => ({ ...node, role: node.role.toLowerCase(), createdAt: time(node.createdAt) })) };
    }
    return data.conversations.edges.map(({ node }: any) => ({
      ...node,
      updatedAt: time(node.updatedAt),
      lastMessage: node.lastMessage && { ...node.lastMessage, role: node.lastMessage.role.toLowerCase(), createdAt: time(node.lastMessage.createdAt) },
    }));
  },
};

// PostGraphile's amber preset names a table's id column `rowId`; aliases give it back its name.
const PG_H = `query H($id: UUID!) { conversation: conversationByRowId(rowId: $id) { id: rowId title
  messages: messagesByConversationId(first: ${H_PAGE}, orderBy: SEQ_DESC) { nodes {
    id: rowId role content createdAt author: userByAuthorId { id: rowId displayName } } } } }`;
const PG_I = `query I($u: UUID!) { user: userByRowId(rowId: $u) {
  conversations: conversationsByOwnerId(first: ${I_PAGE}, orderBy: [UPDATED_AT_DESC, PRIMARY_KEY_DESC]) { nodes {
    id: rowId title updatedAt last: messagesByConversationId(first: 1, orderBy: SEQ_DESC) { nodes { id: rowId role content createdAt } } } } } }`;
const PG_W = `mutation W($c: UUID!, $u: UUID!, $t: String!) {
  benchAddMessage(input: { conversationId: $c, authorId: $u, content: $t }) { result { id: rowId } } }`;

export const postgraphile: System = {
  name: "PostGraphile",
  request(op, t) {
    if (op === "H") return gql(PG_H, { id: t.conversationId });
    if (op === "I") return gql(PG_I, { u: t.userId });
    return gql(PG_W, { c: t.conversationId, u: t.userId, t: t.content });
  },
  normalise(op, body) {
    const data = assertData(body);
    if (op === "W") return data.benchAddMessage.result.id;
    if (op === "H") {
      const { id, title, messages } = data.conversation;
      return { id, title, messages: [...messages.nodes].reverse().map((m: any) => ({ ...m, createdAt: time(m.createdAt) })) };
    }
    return data.user.conversations.nodes.map(({ last, ...c }: any) => ({
      ...c,
      updatedAt: time(c.updatedAt),
      lastMessage: last.nodes[0] ? { ...last.nodes[0], createdAt: time(last.nodes[0].createdAt) } : null,
    }));
  },
};

export const floor: System = {
  name: "floor",
  request(op, t) {
    const body = op === "H" ? { id: t.conversationId } : op === "I" ? { userId: t.userId } : { conversationId: t.conversationId, userId: t.userId, content: t.content };
    return { path: `/${op.toLowerCase()}`, headers: json, body: JSON.stringify(body) };
  },
  normalise(op, body) {
    if (op === "W") return body.id;
    if (op === "H") return { ...body, messages: body.messages.map((m: any) => ({ ...m, createdAt: time(m.createdAt) })) };
    return body.map((c: any) => ({
      ...c,
      updatedAt: time(c.updatedAt),
      lastMessage: c.lastMessage && { ...c.lastMessage, createdAt: time(c.lastMessage.createdAt) },
    }));
  },
};
