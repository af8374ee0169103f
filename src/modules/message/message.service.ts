/**
 * Writing messages. addMessage numbers the message, bumps the conversation and inserts atomically (one
 * statement, or one transaction when encrypting): the UPDATE of the conversation row takes its lock, so
 * writers of one conversation queue up, seq follows commit order and has no gaps, and an idempotent retry can
 * be detected reliably under that lock.
 */
import type { Knex } from "knex";
import { snakeCaseMappers } from "objection";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText } from "../../graphql/json-input";
import { canWriteRole } from "../user/viewer";
import { assertMayActFor, assertMayActForUser, canAccessConversation, scopeCondition } from "../access/access.service";
import { Role } from "../user/role.enum";
import { getConversation, getWritableConversation } from "../conversation/conversation.service";
import { Message } from "./message.model";
import { MessageRole, MessageStatus } from "./message.enums";
import type { AddMessageInput } from "./message.input";
import { messageText, storedContent } from "./encryption";
import { plainColumns } from "../../db/embed";
import { prepared } from "../../db/prepared";
import { messageAddedSql, publishMessageAdded } from "../live/live.hub";
import { insertLedgerEntry, ledgerCtes, ledgerDocument, type LedgerEntry } from "../usage/ledger";
import { AiRequestKind, AiRequestStatus } from "../usage/usage.enums";
import { noExhaustedBudget } from "../usage/budget.sql";
import { assertWithinBudget } from "../usage/budget.service";
import { assertMayAttribute } from "../assistant/assistant.service";

export async function getMessage(ctx: Actor, id: string): Promise<Message> {
  viewerOf(ctx);
  const message = await ctx.loaders.messageById.load(id);
  const conversation = message && (await ctx.loaders.conversationById.load(message.conversationId));
  if (!message || !conversation || !(await canAccessConversation(ctx, conversation))) throw new NotFoundError("Message");
  return message;
}

function characterCount(text: string, limit: number): number {
  // UTF-16 length bounds the code point count from above, so the exact count is needed only near the limit.
  return text.length <= limit ? text.length : [...text].length;
}

function checkInput(ctx: Actor, input: AddMessageInput & { role: MessageRole }, status: MessageStatus): void {
  const viewer = viewerOf(ctx);
  if (!canWriteRole(viewer, input.role)) {
    throw new ForbiddenError("Members can add only USER messages; assistant, system and tool messages come from services");
  }
  const limit = input.role === MessageRole.USER ? ctx.config.maxUserMessageLength : ctx.config.maxMessageLength;
  if (characterCount(input.content, limit) > limit) {
    throw new BadUserInputError(`content must be at most ${limit} characters`, { field: "content", maxLength: limit });
  }
  checkText(input.content, "content");
  if (input.requestId != null) checkText(input.requestId, "requestId");
  if (input.model != null) checkText(input.model, "model");
  if (input.metadata != null) checkJson(input.metadata, "metadata", "object");
  if (input.toolCalls != null) checkJson(input.toolCalls, "toolCalls", "array");
  if (input.assistantVersionId != null && input.role !== MessageRole.ASSISTANT) {
    throw new BadUserInputError("Only ASSISTANT messages name an assistant version", { field: "assistantVersionId" });
  }
  const hasToolCalls = Array.isArray(input.toolCalls) && input.toolCalls.length > 0;
  // A streamed message starts empty and grows by chunks.
  if (input.content.trim() === "" && !hasToolCalls && status !== MessageStatus.STREAMING) {
    throw new BadUserInputError("content must not be empty", { field: "content" });
  }
}

/**
 * Who the message is by: the viewer, or with actAs the user a service (or admin) writes for. Acting for
 * someone needs the conversation's whole origin granted, so a worker granted one conversation cannot put
 * words in other users' mouths.
 */
async function authorOf(ctx: Actor, input: AddMessageInput): Promise<string> {
  const viewer = viewerOf(ctx);
  if (!input.actAs || input.actAs === viewer.id) return viewer.id;
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Only services and admins can write as another user");
  const conversation = await getConversation(ctx, input.conversationId);
  await assertMayActFor(ctx, conversation.origin);
  const user = await ctx.loaders.userById.load(input.actAs);
  if (!user || !user.isActive) throw new NotFoundError("User");
  await assertMayActForUser(ctx, conversation.origin, user);
  return user.id;
}

/** Adds a message; with status STREAMING (startMessage), an empty one that appendMessageChunk fills. */
export async function addMessage(ctx: Actor, given: AddMessageInput, status = MessageStatus.COMPLETE): Promise<Message> {
  const input = { ...given, role: given.role ?? MessageRole.USER }; // an explicit null means the default
  const viewer = viewerOf(ctx);
  checkInput(ctx, input, status);
  const author = await authorOf(ctx, input);
  if (input.assistantVersionId != null) await assertMayAttribute(ctx, input.conversationId, input.assistantVersionId);
  const scope = await scopeCondition(ctx, "conversations");
  const fields: NewMessage = {
    conversationId: input.conversationId,
    authorId: author,
    sentBy: author === viewer.id ? null : viewer.id,
    role: input.role,
    status,
    requestId: input.requestId ?? null,
    metadata: input.metadata ?? {},
    toolCalls: input.toolCalls ?? null,
    model: input.model ?? null,
    promptTokens: input.promptTokens ?? null,
    completionTokens: input.completionTokens ?? null,
    costUsd: input.costUsd ?? null,
    latencyMs: input.latencyMs ?? null,
    // Always present (null when not given), so the one-statement write keeps one text: a prepared statement.
    assistantVersionId: input.assistantVersionId ?? null,
  };
  try {
    // Plain text needs nothing computed from the seq, so the whole write is one statement; ciphertext is bound
    // to the seq, which is known only once the conversation row is locked.
    // New USER messages and started replies are what a spent HARD budget refuses; reports of spend never are.
    const budgeted = input.role === MessageRole.USER || status === MessageStatus.STREAMING;
    const message = ctx.config.encryption
      ? await insertInTransaction(ctx, scope, fields, input.content, budgeted)
      : await insertInOneStatement(ctx, scope, fields, input.content, budgeted);
    if (!message) {
      // A retry of a write that succeeded before the conversation was archived still gets its message.
      const earlier = input.requestId == null ? undefined : await findRetried(ctx, input);
      if (earlier) return sameOrConflict(ctx, earlier, input, status);
      const conversation = await getWritableConversation(ctx, input.conversationId); // throws NOT_FOUND or CONFLICT (archived)
      if (budgeted) await assertWithinBudget(ctx.db.knex, conversation); // throws BUDGET_EXCEEDED
      throw new NotFoundError("Conversation"); // vanished between the two reads
    }
    ctx.loaders.conversationById.clear(input.conversationId);
    ctx.loaders.messageById.prime(message.id, message);
    return message;
  } catch (error) {
    // The request id is taken. The write failed as a whole (no seq used), and the conversation's row lock made
    // the earlier writer committed by now.
    if (isDuplicateRequest(error)) {
      const earlier = await findRetried(ctx, input);
      if (!earlier) throw new NotFoundError("Message"); // its conversation was deleted meanwhile
      return sameOrConflict(ctx, earlier, input, status);
    }
    throw error;
  }
}

/** The viewer's access rule over `conversations` (access.service.ts), none for admins. */
type Scope = { sql: string; bindings: Knex.RawBinding[] } | undefined;

/** A new messages row, keyed by property, before its seq and its (plain or encrypted) content are known. */
interface NewMessage {
  conversationId: string;
  authorId: string;
  sentBy: string | null;
  role: MessageRole;
  status: MessageStatus;
  requestId: string | null;
  metadata: unknown;
  toolCalls: unknown;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  /** Null: an assistant message takes the conversation's pinned version (ATTRIBUTION below). */
  assistantVersionId: string | null;
}

/**
 * Numbers the message (the UPDATE takes the conversation's row lock, so writers of one conversation queue up,
 * seq follows commit order and has no gaps) and bumps the conversation's counters. Only active conversations
 * the viewer may reach match, and with `budgeted`, only those whose owner's and guild's HARD budgets are not spent.
 */
function bumpConversation(conversationId: string, scope: Scope, budgeted: boolean): { sql: string; bindings: Knex.RawBinding[] } {
  // now() is the transaction's start, which can be earlier than the time of a writer that committed while this
  // one waited for the lock; updated_at orders the inbox, so it must never go backwards. A HARD budget of the
  // owner or guild that is spent refuses the write in the same statement (a join, no query).
  const sql = `update conversations set last_seq = last_seq + 1, message_count = message_count + 1,
      updated_at = greatest(updated_at, clock_timestamp())
    where id = ?::uuid and status = 'active'${scope ? ` and ${scope.sql}` : ""}${budgeted ? ` and ${noExhaustedBudget}` : ""}
    returning last_seq, owner_id, discord_guild_id, assistant_version_id`;
  return { sql, bindings: [conversationId, ...(scope?.bindings ?? [])] };
}

/**
 * The select expression of messages.assistant_version_id in the one-statement write: the version the writer
 * named, else for an ASSISTANT message the conversation's pin (read by the bump, under its row lock).
 */
const ATTRIBUTION_COLUMN = "assistant_version_id";
const ATTRIBUTION = `case when r.role = '${MessageRole.ASSISTANT}' then coalesce(r.assistant_version_id, bump.assistant_version_id) end`;

/**
 * The insert of the one-statement write, numbered by the bump, over the columns of its JSON document (its one
 * binding): those are the NewMessage properties and the content, so the text is the same for every write.
 */
function insertMessageSql(columns: string[]): string {
  return `insert into messages (seq, ${columns.join(", ")})
    select bump.last_seq, ${columns.map((column) => (column === ATTRIBUTION_COLUMN ? ATTRIBUTION : `r.${column}`)).join(", ")}
    from bump, jsonb_populate_record(null::messages, ?::jsonb) r
    returning *`;
}

/** The unique violation of a second message with the same requestId in one conversation. */
const isDuplicateRequest = (error: unknown) =>
  (error as { code?: string; constraint?: string }).code === "23505" &&
  (error as { constraint?: string }).constraint === "messages_conversation_request_unique";

/** Property names to column names and back, as knex's mapping does for queries (knex-config.ts). */
const { format: toColumns, parse: fromColumns } = snakeCaseMappers();

/**
 * The plain-text write as ONE statement (no BEGIN/COMMIT round trips): bump, insert and NOTIFY in CTEs. A
 * statement is atomic, so a duplicate requestId fails the whole of it and leaves no gap in seq. The row's
 * values travel as one JSON document that jsonb_populate_record turns into the messages row type, which gives
 * every value its column's type without a cast per column.
 */
async function insertInOneStatement(ctx: Actor, scope: Scope, fields: NewMessage, content: string, budgeted: boolean): Promise<Message | undefined> {
  const knex = ctx.db.knex;
  const bump = bumpConversation(fields.conversationId, scope, budgeted);
  // Keys as column names: the document is read by jsonb_populate_record, which knex's name mapping never sees.
  const document = toColumns({ ...fields, content });
  // An assistant message with usage puts its model call on the ledger in the same statement (ledger.ts).
  const usage = usageOf(ctx, fields);
  const ledger = usage
    ? ledgerCtes(
        knex,
        knex.raw(
          `select (jsonb_populate_record(null::ai_requests, ?::jsonb || jsonb_build_object('request_id', 'message:' || ins.id,
            'message_id', ins.id, 'user_id', bump.owner_id, 'guild_id', bump.discord_guild_id, 'occurred_at', ins.created_at))).* from ins, bump`,
          [ledgerDocument(usage)],
        ),
      )
    : [];
  // Written as text (not a knex builder): it is the hot write, and building it with knex cost about a tenth of it.
  const { rows } = (await prepared(
    knex.raw(
      `with bump as (${bump.sql}), ins as (${insertMessageSql(Object.keys(document))}), notified as (select ${messageAddedSql("ins", "bump")} from ins, bump)${ledger.map(([name]) => `, ${name} as (?)`).join("")}
      select ${await insColumns(knex)} from ins, notified`,
      [...bump.bindings, JSON.stringify(document), ...ledger.map(([, statement]) => statement)],
    ),
  )) as { rows: Record<string, unknown>[] };
  return rows[0] ? Message.fromDatabaseJson(fromColumns(rows[0])) : undefined; // none: unknown, not the viewer's, or archived
}

/** The columns of the new message's row, in the order `insColumns` lists them; read once (from objection's metadata). */
let insertedColumns: string | undefined;
async function insColumns(knex: Knex): Promise<string> {
  return (insertedColumns ??= (await plainColumns(knex, Message, "ins")).map((column) => column.toSQL().sql).join(", "));
}

/** The encrypted write: the ciphertext's AAD holds the seq, so it is computed between bump and insert. */
async function insertInTransaction(ctx: Actor, scope: Scope, fields: NewMessage, content: string, budgeted: boolean): Promise<Message | undefined> {
  return ctx.db.knex.transaction(async (trx) => {
    const bump = bumpConversation(fields.conversationId, scope, budgeted);
    const { rows } = (await trx.raw(bump.sql, bump.bindings)) as { rows: Record<string, unknown>[] };
    const conversation = rows[0] && (fromColumns(rows[0]) as { lastSeq: number; ownerId: string; discordGuildId: string | null; assistantVersionId: string | null });
    if (!conversation) return undefined; // unknown, not the viewer's, or archived
    const pinned = fields.role === MessageRole.ASSISTANT ? conversation.assistantVersionId : null;
    const [row] = await trx("messages")
      .insert({
        ...fields,
        assistantVersionId: fields.assistantVersionId ?? pinned, // as ATTRIBUTION does in the one-statement write
        seq: conversation.lastSeq,
        ...storedContent(ctx.config.encryption, fields.conversationId, conversation.lastSeq, content),
        metadata: JSON.stringify(fields.metadata),
        toolCalls: fields.toolCalls == null ? null : JSON.stringify(fields.toolCalls),
      })
      .returning("*"); // a taken request id fails the insert, and so rolls back the bump: no seq is used
    await publishMessageAdded(trx, fields.conversationId, conversation.lastSeq, conversation.ownerId);
    const message = Message.fromDatabaseJson(row);
    const usage = usageOf(ctx, fields);
    if (usage) await recordMessageUsage(trx, message, usage, conversation);
    return message;
  });
}

/**
 * The ledger entry of a message written with usage: an ASSISTANT message naming its model and carrying
 * tokens or a cost. Billed to the conversation's owner, reported by the writer; its request id is the
 * message's (`message:<id>`), so the message and its ledger row are one write.
 */
export function usageOf(
  ctx: Actor,
  fields: Pick<NewMessage, "role" | "model" | "promptTokens" | "completionTokens" | "costUsd" | "latencyMs" | "conversationId">,
): Omit<LedgerEntry, "requestId" | "messageId" | "userId" | "guildId" | "occurredAt"> | undefined {
  const hasUsage = fields.promptTokens != null || fields.completionTokens != null || fields.costUsd != null;
  if (fields.role !== MessageRole.ASSISTANT || !fields.model || !hasUsage) return undefined;
  return {
    reportedBy: viewerOf(ctx).id,
    conversationId: fields.conversationId,
    provider: null,
    model: fields.model,
    kind: AiRequestKind.CHAT,
    promptTokens: fields.promptTokens ?? 0,
    completionTokens: fields.completionTokens ?? 0,
    cachedTokens: 0,
    latencyMs: fields.latencyMs,
    timeToFirstTokenMs: null,
    status: AiRequestStatus.SUCCESS,
    errorCode: null,
    confidence: null,
    safety: null,
    relevance: null,
    costUsd: fields.costUsd,
    metadata: {},
  };
}

/**
 * Puts a message's usage on the ledger inside the message's transaction (the encrypted and streamed paths).
 * `occurredAt`: when the call was made (a streamed reply's ends at completion: null, the statement's time).
 */
export async function recordMessageUsage(
  trx: Knex.Transaction,
  message: Message,
  usage: NonNullable<ReturnType<typeof usageOf>>,
  conversation: { ownerId: string; discordGuildId: string | null },
  occurredAt: Date | null = message.createdAt,
): Promise<void> {
  const entry = {
    ...usage,
    requestId: `message:${message.id}`,
    messageId: message.id,
    userId: conversation.ownerId,
    guildId: conversation.discordGuildId,
    occurredAt, // null: now, the statement's time
  };
  await insertLedgerEntry(trx, entry);
}

/** The message an earlier request with this requestId created, if the viewer may read the conversation. */
async function findRetried(ctx: Actor, input: AddMessageInput): Promise<Message | undefined> {
  await getConversation(ctx, input.conversationId); // NOT_FOUND before anything about its messages leaks
  return Message.query(ctx.db.knex).findOne({ conversationId: input.conversationId, requestId: input.requestId! });
}

/** The original of a retried request; CONFLICT when the retry carries a different message. */
function sameOrConflict(ctx: Actor, original: Message, input: AddMessageInput, status: MessageStatus): Message {
  const text = messageText(ctx.config.encryption, original);
  // A message that was streamed: started by startMessage, whatever has been appended or completed since.
  const streamed = original.status !== MessageStatus.COMPLETE || original.chunkCount > 0 || (text === "" && original.toolCalls == null);
  const same = status === MessageStatus.STREAMING ? streamed : !streamed && text === input.content;
  if (original.role !== input.role || !same) {
    throw new ConflictError("requestId was already used for a different message in this conversation");
  }
  return original;
}
