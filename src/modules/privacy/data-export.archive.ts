/**
 * The archive of a data export (exportMyData): everything Parley holds of one user, as one JSON document
 * (schema "parley.data-export/v1", UTF-8), written as the rows arrive and never built in memory, by the same
 * pull pipeline as transcripts (transcript.export.ts): keyset pages of rows → JSON text → bytes counted and
 * hashed → the storage backend. Memory stays about one page of rows whatever the user's size; pages hold no
 * connection between them (PGlite has only one).
 *
 * Keys come in this order (each array element on a line of its own):
 *   schema, export { id, createdAt, userId },
 *   user { id, displayName, email, externalId, discordId, role, isActive, preferences, createdAt, updatedAt },
 *   conversations [ the conversations the user OWNS, oldest first: { id, title, origin, status, parameters,
 *     discordGuildId, discordChannelId, endedAt, createdAt, updatedAt, messages [ every message in seq order,
 *     whoever wrote it: MESSAGE_FIELDS as in transcripts, content decrypted ], messageCount } ],
 *   messagesElsewhere [ messages the user WROTE (author) in conversations they do not own, by conversation and
 *     seq: { conversationId, ...MESSAGE_FIELDS } — only theirs, never the other participants' ],
 *   feedback [ the user's own ratings: { id, messageId, conversationId, rating, score, comment, tags, createdAt,
 *     updatedAt } ],
 *   usage [ ai_requests billed to the user, by occurredAt: { id, requestId, conversationId, messageId, guildId,
 *     provider, model, kind, promptTokens, completionTokens, cachedTokens, latencyMs, timeToFirstTokenMs, status,
 *     errorCode, confidence, safety, relevance, costUsd, costSource, metadata, occurredAt, createdAt } ],
 *   budget (the user's own budget, or null),
 *   assistants [ the assistants the user owns (not shared ones), oldest first: { id, name, description, isActive,
 *     currentVersion, createdAt, updatedAt, versions [ { version, model, systemPrompt, parameters, tools,
 *     knowledgeScope, createdAt } ] } ],
 *   documents [ the documents of the user's own knowledge base (scope USER), oldest first: { id, externalId, title,
 *     sourceUrl, tags, metadata, language, sizeBytes, contentSha256, createdAt, updatedAt, chunks [ { position,
 *     content } ] } ] (the text as stored: in chunks, in position order),
 *   queryHistory [ the questions the user asked: { id, conversationId, guildId, channelId, question, answer,
 *     sources, model, responseTimeMs, promptTokens, completionTokens, cacheHit, createdAt } ],
 *   apiKeys [ the user's keys without their secrets or hashes: { id, name, prefix, role, createdAt, lastUsedAt,
 *     revokedAt } ],
 *   counts { conversations, messages, messagesElsewhere, feedback, usage, assistants, documents, queryHistory, apiKeys }
 *
 * What is the user's: a conversation they own is theirs with everything in it, so its messages by other
 * participants (an assistant's replies, a service writing for someone else) are part of it; anywhere else only
 * what they wrote themselves. Other users' conversations, feedback, usage, assistants and documents are never
 * read, nor shared assistants or guild and global documents the user may have written. Ledger rows leave
 * out who reported them (a service's id is not the user's data). Messages added to an owned conversation while
 * the archive is written are left out past the conversation's last seq when it was reached.
 */
import type { Readable } from "node:stream";
import type { Knex } from "knex";
import type { EncryptionConfig } from "../../config";
import { messageText, UndecryptableContentError } from "../message/encryption";
import type { Conversation } from "../conversation/conversation.model";
import { TranscriptFormat } from "../transcript/transcript.enums";
import { ExportError, exportSpec, readMessages, EXPORT_BATCH, sinkText } from "../transcript/transcript.export";
import { MESSAGE_FIELDS, type ExportMessage } from "../transcript/transcript.serializers";
import type { DataExportCounts } from "./data-export.model";

export const DATA_EXPORT_SCHEMA = "parley.data-export/v1";
export const DATA_EXPORT_CONTENT_TYPE = "application/json; charset=utf-8";

/** Rows per page for the small tables (conversations, feedback, usage); messages page by EXPORT_BATCH. */
const PAGE = 500;
/** Conversations of other owners the user wrote in, per page of their ids. */
const CONVERSATION_PAGE = 100;

export interface ArchiveRequest {
  id: string;
  userId: string;
  createdAt: Date;
}

export interface ArchiveResult {
  fileSizeBytes: number;
  sha256: string;
  counts: DataExportCounts;
}

const USER_COLUMNS = ["id", "displayName", "email", "externalId", "discordId", "role", "isActive", "preferences", "createdAt", "updatedAt"];
const CONVERSATION_FIELDS = ["id", "title", "origin", "status", "parameters", "discordGuildId", "discordChannelId", "endedAt", "createdAt", "updatedAt"] as const;
const FEEDBACK_COLUMNS = ["id", "messageId", "conversationId", "rating", "score", "comment", "tags", "createdAt", "updatedAt"];
const USAGE_COLUMNS = [
  "id",
  "requestId",
  "conversationId",
  "messageId",
  "guildId",
  "provider",
  "model",
  "kind",
  "promptTokens",
  "completionTokens",
  "cachedTokens",
  "latencyMs",
  "timeToFirstTokenMs",
  "status",
  "errorCode",
  "confidence",
  "safety",
  "relevance",
  "costUsd",
  "costSource",
  "metadata",
  "occurredAt",
  "createdAt",
];
const ASSISTANT_COLUMNS = ["id", "name", "description", "isActive", "currentVersion", "createdAt", "updatedAt"];
const ASSISTANT_VERSION_COLUMNS = ["version", "model", "systemPrompt", "parameters", "tools", "knowledgeScope", "createdAt"];
const DOCUMENT_COLUMNS = ["id", "externalId", "title", "sourceUrl", "tags", "metadata", "language", "sizeBytes", "contentSha256", "createdAt", "updatedAt"];
const QUERY_COLUMNS = ["id", "conversationId", "guildId", "channelId", "question", "answer", "sources", "model", "responseTimeMs", "promptTokens", "completionTokens", "cacheHit", "createdAt"];
const API_KEY_COLUMNS = ["id", "name", "prefix", "role", "createdAt", "lastUsedAt", "revokedAt"];
/** Chunks of a document per page: a document may be large, its chunks are read a page at a time. */
const CHUNK_PAGE = 200;
const BUDGET_COLUMNS = ["id", "period", "timeZone", "limitUsd", "thresholds", "enforcement", "periodStart", "spentUsd", "createdAt", "updatedAt"];
/** numeric columns: both drivers return them as strings. */
const NUMERIC = new Set(["confidence", "safety", "relevance", "costUsd", "limitUsd", "spentUsd"]);
/** What reading a message's text needs besides MESSAGE_FIELDS. */
const MESSAGE_COLUMNS = [...MESSAGE_FIELDS, "conversationId", "encryptedContent", "keyId"];

type Row = Record<string, unknown>;

/** The row with its numeric columns as numbers, keys in `columns` order. */
function plain(row: Row, columns: readonly string[]): Row {
  const out: Row = {};
  for (const column of columns) {
    const value = row[column];
    out[column] = NUMERIC.has(column) && value != null ? Number(value) : value;
  }
  return out;
}

/** Rows of `query()` in keyset pages over (time, id) ascending; `onPage` runs after each full page. */
async function* pages(query: () => Knex.QueryBuilder, time: string, timeSql: string, onPage: () => void): AsyncGenerator<Row> {
  let after: [Date, string] | undefined;
  for (;;) {
    const q = query().orderBy([{ column: time }, { column: "id" }]).limit(PAGE);
    if (after) q.whereRaw(`(${timeSql}, id) > (?, ?)`, after);
    const rows: Row[] = await q;
    for (const row of rows) yield row;
    if (rows.length < PAGE) return;
    const last = rows[rows.length - 1];
    after = [last[time] as Date, last.id as string];
    onPage();
  }
}

/** A message in the archive's (and transcripts') field order. */
function messageObject(message: ExportMessage, conversationId?: string): Row {
  const ordered: Row = conversationId ? { conversationId } : {};
  for (const field of MESSAGE_FIELDS) ordered[field] = message[field];
  return ordered;
}

/** A message row of the user's in someone else's conversation, as exported (decrypted, numbers as numbers). */
function authoredMessage(encryption: EncryptionConfig | undefined, row: Row): ExportMessage {
  let content: string;
  try {
    content = messageText(encryption, row as never);
  } catch (error) {
    if (error instanceof UndecryptableContentError) throw new ExportError(`Message ${String(row.seq)} could not be decrypted`, { cause: error.reason });
    throw error;
  }
  const message = plain(row, MESSAGE_FIELDS) as unknown as ExportMessage;
  message.content = content;
  return message;
}

/** The messages `userId` wrote in conversations owned by others, conversation by conversation in seq order. */
async function* messagesElsewhere(knex: Knex, encryption: EncryptionConfig | undefined, userId: string, onPage: () => void): AsyncGenerator<Row> {
  let afterConversation: string | undefined;
  for (;;) {
    const found: { conversationId: string }[] = await knex("messages as m")
      .join("conversations as c", "c.id", "m.conversationId")
      .where("m.authorId", userId)
      .whereNot("c.ownerId", userId)
      .modify((q) => {
        if (afterConversation) q.where("m.conversationId", ">", afterConversation);
      })
      .select("m.conversationId")
      .groupBy("m.conversationId")
      .orderBy("m.conversationId")
      .limit(CONVERSATION_PAGE);
    const ids = found.map((row) => row.conversationId);
    for (const conversationId of ids) {
      let afterSeq = 0;
      for (;;) {
        const rows: Row[] = await knex("messages")
          .select(MESSAGE_COLUMNS)
          .where({ conversationId, authorId: userId })
          .where("seq", ">", afterSeq)
          .orderBy("seq")
          .limit(EXPORT_BATCH);
        for (const row of rows) yield messageObject(authoredMessage(encryption, row), conversationId);
        if (rows.length < EXPORT_BATCH) break;
        afterSeq = rows[rows.length - 1].seq as number;
        onPage();
      }
    }
    if (ids.length < CONVERSATION_PAGE) return;
    afterConversation = ids[ids.length - 1];
    onPage();
  }
}

/** Writes `items` as the elements of a JSON array (the opening bracket is the caller's), counting them. */
async function* elements(items: AsyncIterable<Row>, count: (n: number) => void): AsyncGenerator<string> {
  let n = 0;
  for await (const item of items) {
    yield `${n === 0 ? "\n" : ",\n"}${JSON.stringify(item)}`;
    count(++n);
  }
  yield n === 0 ? "]" : "\n]";
}

/** The archive's text, piece by piece. `counts` is filled as it goes; `onPage` runs between pages (it may throw to stop). */
async function* archiveText(
  knex: Knex,
  encryption: EncryptionConfig | undefined,
  request: ArchiveRequest,
  user: Row,
  counts: DataExportCounts,
  onPage: () => void,
): AsyncGenerator<string> {
  const { userId } = request;
  /** The user's rows of a table that names them in user_id, oldest first by `time`, as plain objects of `columns`. */
  const usersRows = (table: string, columns: readonly string[], time = "createdAt", timeSql = "created_at") =>
    mapRows(pages(() => knex(table).select(columns).where({ userId }), time, timeSql, onPage), columns);
  const info = { id: request.id, createdAt: request.createdAt, userId };
  yield `{"schema":${JSON.stringify(DATA_EXPORT_SCHEMA)},\n"export":${JSON.stringify(info)},\n"user":${JSON.stringify(plain(user, USER_COLUMNS))},\n"conversations":[`;

  const owned = pages(() => knex("conversations").select([...CONVERSATION_FIELDS, "ownerId", "lastSeq"]).where({ ownerId: userId }), "createdAt", "created_at", onPage);
  for await (const row of owned) {
    const conversation = row as unknown as Conversation;
    const header = plain(row, CONVERSATION_FIELDS);
    yield `${counts.conversations === 0 ? "\n" : ",\n"}${JSON.stringify(header).slice(0, -1)},"messages":[`;
    counts.conversations++;
    // The transcripts' reader: keyset pages in seq order, decrypted, up to the last seq as of now.
    const spec = exportSpec(conversation, {
      id: request.id,
      format: TranscriptFormat.JSON,
      createdAt: request.createdAt,
      createdBy: userId,
      fromSeq: 1,
      toSeq: conversation.lastSeq,
      from: null,
      to: null,
      includeToolCalls: true,
      includeSystem: true,
    });
    let inConversation = 0;
    for await (const message of readMessages(knex, encryption, spec, async () => onPage())) {
      yield `${inConversation === 0 ? "\n" : ",\n"}${JSON.stringify(messageObject(message))}`;
      inConversation++;
      counts.messages++;
    }
    yield `${inConversation === 0 ? "" : "\n"}],"messageCount":${inConversation}}`;
  }
  yield `${counts.conversations === 0 ? "" : "\n"}],\n"messagesElsewhere":[`;
  yield* elements(messagesElsewhere(knex, encryption, userId, onPage), (n) => (counts.messagesElsewhere = n));

  yield `,\n"feedback":[`;
  yield* elements(usersRows("feedback", FEEDBACK_COLUMNS), (n) => (counts.feedback = n));

  yield `,\n"usage":[`;
  yield* elements(usersRows("ai_requests", USAGE_COLUMNS, "occurredAt", "occurred_at"), (n) => (counts.usage = n));

  const budget: Row | undefined = await knex("user_budgets").where({ userId }).first(BUDGET_COLUMNS);
  yield `,\n"budget":${JSON.stringify(budget ? plain(budget, BUDGET_COLUMNS) : null)},\n"assistants":[`;
  const assistants = pages(() => knex("assistants").select(ASSISTANT_COLUMNS).where({ ownerId: userId }), "createdAt", "created_at", onPage);
  yield* elements(withVersions(knex, assistants), (n) => (counts.assistants = n));

  yield `,\n"documents":[`;
  const ownBase = knex("knowledge_bases").select("id").where({ scope: "user", userId });
  const documents = pages(() => knex("documents").select(DOCUMENT_COLUMNS).whereIn("knowledgeBaseId", ownBase.clone()), "createdAt", "created_at", onPage);
  yield* elements(withChunks(knex, documents, onPage), (n) => (counts.documents = n));

  yield `,\n"queryHistory":[`;
  yield* elements(usersRows("query_history", QUERY_COLUMNS), (n) => (counts.queryHistory = n));

  yield `,\n"apiKeys":[`;
  yield* elements(usersRows("api_keys", API_KEY_COLUMNS), (n) => (counts.apiKeys = n));
  yield `,\n"counts":${JSON.stringify(counts)}}\n`;
}

/** Each assistant with every version of it, oldest first (a handful per assistant). */
async function* withVersions(knex: Knex, assistants: AsyncIterable<Row>): AsyncGenerator<Row> {
  for await (const assistant of assistants) {
    const versions: Row[] = await knex("assistant_versions").select(ASSISTANT_VERSION_COLUMNS).where({ assistantId: assistant.id }).orderBy("version");
    yield { ...plain(assistant, ASSISTANT_COLUMNS), versions: versions.map((version) => plain(version, ASSISTANT_VERSION_COLUMNS)) };
  }
}

/** Each document with its text, chunk by chunk in position order, read a page of chunks at a time. */
async function* withChunks(knex: Knex, documents: AsyncIterable<Row>, onPage: () => void): AsyncGenerator<Row> {
  for await (const document of documents) {
    const chunks: Row[] = [];
    for (let after = -1; ; ) {
      const page: Row[] = await knex("document_chunks").select("position", "content").where({ documentId: document.id }).where("position", ">", after).orderBy("position").limit(CHUNK_PAGE);
      chunks.push(...page);
      if (page.length < CHUNK_PAGE) break;
      after = page[page.length - 1].position as number;
      onPage();
    }
    yield { ...plain(document, DOCUMENT_COLUMNS), chunks };
  }
}

async function* mapRows(rows: AsyncIterable<Row>, columns: readonly string[]): AsyncGenerator<Row> {
  for await (const row of rows) yield plain(row, columns);
}

/**
 * Writes the archive of `request.userId` into `sink` (which must consume the stream and resolve once the bytes
 * are stored); undefined when the user is gone. `onPage` runs between pages; a throw from it stops the archive
 * (and the sink's write). As in exportConversation, a failure of the reading side reaches the sink as a stream
 * error and is rethrown as it was, while a failing sink's own rejection is rethrown as the sink's.
 */
export async function writeArchive(
  knex: Knex,
  encryption: EncryptionConfig | undefined,
  request: ArchiveRequest,
  sink: (body: Readable) => Promise<void>,
  onPage: () => void,
): Promise<ArchiveResult | undefined> {
  const user: Row | undefined = await knex("users").where({ id: request.userId }).first(USER_COLUMNS);
  if (!user) return undefined;
  const counts: DataExportCounts = { conversations: 0, messages: 0, messagesElsewhere: 0, feedback: 0, usage: 0, assistants: 0, documents: 0, queryHistory: 0, apiKeys: 0 };
  const written = await sinkText(archiveText(knex, encryption, request, user, counts, onPage), sink);
  return { ...written, counts };
}
