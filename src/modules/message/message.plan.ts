/**
 * How the read planner reads messages (graphql/planner): a conversation's page of messages and its last
 * message, with their authors, in the conversation's own statement.
 */
import { columnFields, columnsOf, PLANNED, toOne, type Planned, type Relation, type TypePlan } from "../../graphql/planner/plan";
import { toConnection, type ConnectionArgs, type PageRequest } from "../../graphql/connection";
import type { Actor } from "../actor";
import { userPlan } from "../user/user.plan";
import { conversationPlan } from "../conversation/conversation.plan";
import { decryptContent } from "./encryption";
import { messagePageKey, type MessagePageKey } from "./message.loaders";
import { MessageStatus } from "./message.enums";

const SCALARS = [
  "id",
  "seq",
  "role",
  "status",
  "requestId",
  "metadata",
  "toolCalls",
  "model",
  "promptTokens",
  "completionTokens",
  "costUsd",
  "latencyMs",
  "createdAt",
  "updatedAt",
] as const;

/**
 * What content and chunkCount read, and their resolvers when they fall back (a STREAMING or undecryptable
 * message). The conversation id, which encrypted text is bound to, is the parent's (ofConversation below).
 */
const CONTENT = ["content", "status", "encryptedContent", "keyId", "seq"];

export const messagePlan: TypePlan = {
  name: "Message",
  table: "messages",
  columns: columnsOf({
    id: "plain",
    conversationId: "plain",
    seq: "plain",
    authorId: "plain",
    sentBy: "plain",
    assistantVersionId: "plain",
    role: "plain",
    content: "plain",
    encryptedContent: "bytes",
    keyId: "plain",
    requestId: "plain",
    status: "plain",
    chunkCount: "plain",
    metadata: "plain",
    toolCalls: "plain",
    model: "plain",
    promptTokens: "plain",
    completionTokens: "plain",
    costUsd: "plain", // numeric: a JSON number, as the model's own parsing makes it
    latencyMs: "plain",
    createdAt: "date",
    updatedAt: "date",
  }),
  fields: {
    ...columnFields(SCALARS),
    content: { needs: CONTENT },
    chunkCount: { needs: [...CONTENT, "chunkCount"] },
    author: { needs: ["authorId"], relation: toOne(() => userPlan, (user, message) => `${user}.id = ${message}.author_id`) },
    sentBy: { needs: ["sentBy"], relation: toOne(() => userPlan, (user, message) => `${user}.id = ${message}.sent_by`) },
    // A message is only ever handed out to readers of its conversation (as MessageResolver.conversation).
    conversation: { needs: ["conversationId"], relation: toOne(() => conversationPlan, (conversation, message) => `${conversation}.id = ${message}.conversation_id`) },
    assistant: { needs: ["assistantVersionId"] },
    artifacts: { needs: ["id"] },
    myFeedback: { needs: ["id"] },
    feedbackSummary: { needs: ["id"] },
    discordPost: { needs: ["id"] },
  },
  always: ["id", "seq", "status"],
};

/** Messages read below a conversation are that conversation's: their conversationId need not be read. */
export function ofConversation<T extends Planned | null>(message: T, conversation: Planned): T {
  if (message && message.conversationId === undefined) message.conversationId = conversation.id;
  return message;
}

/**
 * A planned message's text when it is at hand: not STREAMING, stored plain or decrypted here. Text that cannot
 * be decrypted is left to MessageResolver.content, which reports and logs it.
 */
export function plannedText(message: Planned, actor: Actor): string | undefined {
  if (message[PLANNED] === undefined || message.status === MessageStatus.STREAMING) return undefined;
  if (typeof message.content === "string") return message.content;
  if (!message.encryptedContent) return undefined;
  try {
    return (message.content = decryptContent(actor.config.encryption, message as never));
  } catch {
    return undefined;
  }
}

/** A planned message's chunk count when no stream is open (while STREAMING it is counted with the text). */
export const plannedChunkCount = (message: Planned): number | undefined =>
  message[PLANNED] !== undefined && message.status !== MessageStatus.STREAMING && typeof message.chunkCount === "number" ? message.chunkCount : undefined;

interface PlannedPage {
  page: PageRequest;
  key: MessagePageKey;
}

/**
 * Conversation.messages: the page walks the (conversation_id, seq) index from the cursor and stops at the
 * limit, as messagePageBatch does, and comes back in the same order for the same toConnection.
 */
export const messagePage: Relation = {
  type: () => messagePlan,
  many: true,
  prepare(args, actor: Actor): PlannedPage | undefined {
    try {
      return messagePageKey("", args as ConnectionArgs, actor.config);
    } catch {
      return undefined; // bad paging arguments: the field's resolver reports them at its own path
    }
  },
  sql(q, { alias, parent, row, prepared }) {
    const { key } = prepared as PlannedPage;
    const order = key.direction === "forward" ? "asc" : "desc";
    // array(subquery) keeps the subquery's order (json_agg would sort again), and builds only the rows the
    // limit lets through.
    q.text("array_to_json(array(select ");
    row(q);
    q.text(` from messages ${alias} where ${alias}.conversation_id = ${parent}.id`);
    if (key.cursorSeq !== undefined) q.text(` and ${alias}.seq ${key.direction === "forward" ? ">" : "<"} `).bind(key.cursorSeq);
    q.text(` order by ${alias}.seq ${order} limit `).bind(key.limit).text("))");
  },
  value(rows, prepared, conversation) {
    const { page } = prepared as PlannedPage;
    const messages = (rows as Planned[]).map((message) => ofConversation(message, conversation));
    return toConnection(messages, page, (message) => [message.seq], () => conversation.messageCount as number);
  },
};
