/**
 * Conversations: listing with keyset paging, access checks, and the state rules (archived conversations
 * are read-only). Access failures and unknown ids both answer NOT_FOUND, so ids do not leak existence.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";
import { isAdmin, type Viewer } from "../user/viewer";
import { assertMayActFor, assertMayActForUser, canAccessConversation, viewerScope } from "../access/access.service";
import { messagePageBatch, messagePageKey, type MessagePageKey } from "../message/message.loaders";
import { audit } from "../audit/audit.service";
import { publishConversationChanged, publishConversationDeleted } from "../live/live.hub";
import { lockTranscriptKeys } from "../transcript/transcript.jobs";
import { lockArtifactKeys, removeArtifactFiles } from "../artifact/artifact.service";
import { embeddedColumns, plainColumns, rowSplitter } from "../../db/embed";
import { prepared } from "../../db/prepared";
import { Message } from "../message/message.model";
import { Conversation } from "./conversation.model";
import { ConversationOrigin, ConversationStatus } from "./conversation.enums";
import type { ConversationsArgs, CreateConversationInput, UpdateConversationInput } from "./conversation.input";

export class ArchivedConversationError extends ConflictError {
  constructor() {
    super("This conversation is archived: it can be read but not written");
    this.extensions.reason = "CONVERSATION_ARCHIVED";
  }
}

/**
 * The conversation if the viewer may read it, else NOT_FOUND. With `messages` (the arguments of the one
 * `messages` field the operation asks of it), that page and its authors are read in the same statement:
 * the history view in one round trip.
 */
export async function getConversation(ctx: Actor, id: string, messages?: ConnectionArgs): Promise<Conversation> {
  viewerOf(ctx);
  if (messages) await readWithMessages(ctx, id, messages);
  const conversation = await ctx.loaders.conversationById.load(id);
  if (!conversation || !(await canAccessConversation(ctx, conversation))) throw new NotFoundError("Conversation");
  return conversation;
}

/** Primes the request's loaders with the conversation (if the viewer may reach it), its page of messages and their authors. */
async function readWithMessages(ctx: Actor, id: string, args: ConnectionArgs): Promise<void> {
  let key: MessagePageKey;
  try {
    ({ key } = messagePageKey(id, args, ctx.config));
  } catch {
    return; // bad paging arguments: the messages field reports them, at its own path
  }
  const { loaders } = ctx;
  const [page] = await messagePageBatch(ctx.db.knex, [key], {
    authors: (author) => loaders.userById.prime(author.id, author),
    conversations: { model: Conversation, scope: await viewerScope(ctx), take: (row) => loaders.conversationById.prime(id, Conversation.fromDatabaseJson(row)) },
  });
  loaders.messagePage.prime(key, page);
}

/** The conversation if the viewer may write it: readable and not archived. */
export async function getWritableConversation(ctx: Actor, id: string): Promise<Conversation> {
  const conversation = await getConversation(ctx, id);
  if (conversation.status === ConversationStatus.ARCHIVED) throw new ArchivedConversationError();
  return conversation;
}

function refresh(ctx: Actor, conversation: Conversation): Conversation {
  ctx.loaders.conversationById.clear(conversation.id).prime(conversation.id, conversation);
  return conversation;
}

/** After a committed change: the owner's inbox streams pick it up. */
async function changed(ctx: Actor, conversation: Conversation): Promise<Conversation> {
  await publishConversationChanged(ctx.db.knex, conversation.id, conversation.ownerId);
  return refresh(ctx, conversation);
}

export async function listConversations(ctx: Actor, args: ConversationsArgs): Promise<ConnectionShape<Conversation>> {
  const viewer = viewerOf(ctx);
  const ownerId = ownerScope(viewer, args.filter?.ownerId);
  const page = pageRequest(args, ctx.config);
  const knex = ctx.db.knex;
  const filtered = () => {
    const query = Conversation.query(knex).where("conversations.ownerId", ownerId);
    if (args.filter?.status) query.where("conversations.status", args.filter.status);
    if (args.filter?.origin) query.where("conversations.origin", args.filter.origin);
    return query;
  };
  // An inbox shows each conversation with its newest message: read in the same statement, through
  // conversations.last_seq and the (conversation_id, seq) index, for the lastMessage field's loader.
  const columns = [...(await plainColumns(knex, Conversation, "conversations")), ...(await embeddedColumns(knex, Message, "last", "lastMessage"))];
  const withLastMessages = () =>
    filtered()
      .onBuildKnex((query) => prepared(query))
      .select(...columns)
      .leftJoin("messages as last", (join) => join.on("last.conversationId", "conversations.id").andOn("last.seq", "conversations.lastSeq"));
  const connection = await newestFirstPage(withLastMessages, page, "updatedAt", "updated_at", { table: "conversations", counted: filtered });
  const split = rowSplitter(connection.edges.length ? Object.keys(connection.edges[0].node) : []);
  for (const edge of connection.edges) {
    const { base, embedded } = split(edge.node as unknown as Record<string, unknown>);
    edge.node = Conversation.fromDatabaseJson(base); // the conversation without the joined columns
    const last = embedded.get("lastMessage");
    if (last) ctx.loaders.lastMessageByConversationId.prime(edge.node.id, Message.fromDatabaseJson(last));
    ctx.loaders.conversationById.prime(edge.node.id, edge.node);
  }
  return connection;
}

/** Members and services list their own conversations; admins may name another owner. */
export function ownerScope(viewer: Viewer, ownerId: string | undefined): string {
  if (!ownerId || ownerId === viewer.id) return viewer.id;
  if (!isAdmin(viewer)) throw new ForbiddenError("Only admins can list another user's conversations");
  return ownerId;
}

export async function createConversation(ctx: Actor, input: CreateConversationInput): Promise<Conversation> {
  const viewer = viewerOf(ctx);
  checkText(input.title, "title");
  if (input.parameters != null) checkJson(input.parameters, "parameters", "object");
  const ownerId = input.ownerId ?? viewer.id;
  if (ownerId !== viewer.id) {
    await assertMayActFor(ctx, input.origin);
    const owner = await ctx.loaders.userById.load(ownerId);
    if (!owner || !owner.isActive) throw new NotFoundError("User");
    await assertMayActForUser(ctx, input.origin, owner);
  }
  if (input.discordGuildId || input.discordChannelId) {
    if (input.origin !== ConversationOrigin.DISCORD) throw new BadUserInputError("Discord guild and channel ids need origin DISCORD");
    // Binding a conversation to a channel is the Discord adapter's job: anyone else could claim a channel
    // (its one active conversation) and receive what the adapter relays from it.
    await assertMayActFor(ctx, ConversationOrigin.DISCORD);
  }
  const conversation = await Conversation.query(ctx.db.knex).insertAndFetch({
    ownerId,
    title: input.title,
    origin: input.origin,
    parameters: input.parameters ?? {},
    discordGuildId: input.discordGuildId ?? null,
    discordChannelId: input.discordChannelId ?? null,
  });
  return changed(ctx, conversation);
}

export async function updateConversation(ctx: Actor, id: string, input: UpdateConversationInput): Promise<Conversation> {
  const current = await getWritableConversation(ctx, id);
  const patch: Partial<Conversation> = {};
  if (input.title != null) {
    checkText(input.title, "title");
    patch.title = input.title;
  }
  if (input.parameters != null) {
    checkJson(input.parameters, "parameters", "object");
    patch.parameters = input.parameters;
  }
  if (Object.keys(patch).length === 0) throw new BadUserInputError("Nothing to update: pass title or parameters");
  const [updated] = await patchActive(ctx.db.knex, current.id, patch);
  if (!updated) throw new ArchivedConversationError();
  return changed(ctx, updated);
}

/** Idempotent: archiving an archived conversation returns it unchanged. */
export async function archiveConversation(ctx: Actor, id: string): Promise<Conversation> {
  const current = await getConversation(ctx, id);
  if (current.status === ConversationStatus.ARCHIVED) return current;
  const updated = await ctx.db.knex.transaction(async (trx) => {
    const [row] = await patchActive(trx, current.id, { status: ConversationStatus.ARCHIVED, endedAt: new Date() });
    if (row) await audit(ctx, { action: "conversation.archive", targetType: "conversation", targetId: id }, trx);
    return row;
  });
  // Lost a race with another archive: the row is archived either way (and that one told the inbox).
  return updated ? changed(ctx, updated) : refresh(ctx, await Conversation.query(ctx.db.knex).findById(id).throwIfNotFound());
}

/** Patches the conversation only while it is active; the condition closes the race with a concurrent archive. */
async function patchActive(knex: Knex, id: string, patch: Partial<Conversation>): Promise<Conversation[]> {
  return (await Conversation.query(knex)
    .patch(patch)
    .where({ id, status: ConversationStatus.ACTIVE })
    .returning("*")) as unknown as Conversation[];
}

/**
 * Deletes the conversation with its messages, transcripts and artifacts (foreign keys cascade), then, once
 * that is committed, their files: a rollback must not leave rows whose files are gone.
 */
export async function deleteConversation(ctx: Actor, id: string): Promise<boolean> {
  const current = await getConversation(ctx, id);
  const files = await ctx.db.knex.transaction(async (trx) => {
    const deleted = await deleteConversationRows(trx, current);
    if (!deleted) throw new NotFoundError("Conversation");
    await audit(ctx, { action: "conversation.delete", targetType: "conversation", targetId: id, details: { ownerId: current.ownerId, title: current.title } }, trx);
    return deleted;
  });
  ctx.loaders.conversationById.clear(id);
  await removeConversationFiles(ctx, files);
  return true;
}

/** Storage keys of a deleted conversation's files, removed once its deletion is committed. */
export interface ConversationFiles {
  keys: string[];
  artifactKeys: string[];
}

/**
 * The deleting transaction's part of deleteConversation, shared with retention (ops/retention.ts): locks the
 * file keys, deletes the row (its messages, transcripts and artifacts by cascade) and ends its open streams.
 * Undefined when the row was already gone. The caller audits, and removes the files after the commit.
 */
export async function deleteConversationRows(trx: Knex.Transaction, conversation: Pick<Conversation, "id" | "ownerId">): Promise<ConversationFiles | undefined> {
  const keys = await lockTranscriptKeys(trx, conversation.id);
  const artifactKeys = await lockArtifactKeys(trx, conversation.id);
  const deleted = await Conversation.query(trx).deleteById(conversation.id).returning("id");
  if (deleted.length === 0) return undefined;
  await publishConversationDeleted(trx, conversation.id, conversation.ownerId); // open streams of it end with NOT_FOUND
  return { keys, artifactKeys };
}

/** After the commit: the files of deleted conversations (failures are logged with their keys, never thrown). */
export async function removeConversationFiles(ctx: Actor, files: ConversationFiles): Promise<void> {
  await ctx.transcripts?.removeFiles(files.keys);
  await removeArtifactFiles(ctx, files.artifactKeys);
}
