/**
 * The Discord adapter's side of the schema: the channels bound to conversations, what it posted of the
 * assistant's replies, and edits and deletions its users made in Discord. Everything here is for admins and
 * for services granted the DISCORD origin (the adapter); others get FORBIDDEN, and nothing here reaches a
 * conversation of another origin.
 *
 * Edits and deletions of relayed messages:
 * - an edit replaces the message's content (stored the way all content is, so encrypted with a key ring) and
 *   appends `{ editedAt, previousContent }` to metadata.discord.edits (the last MAX_EDITS). With encryption at
 *   rest on, `previousContent` is left out: metadata is not encrypted, and old text must not leak through it;
 * - a deletion empties the content, drops the old texts from the edit history and sets
 *   metadata.discord.deletedAt. The row and its seq stay, so history keeps no gap and replies keep their context.
 */
import { isDeepStrictEqual } from "node:util";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText } from "../../graphql/json-input";
import { mapNodes, newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";
import { assertMayActFor, mayActFor } from "../access/access.service";
import { ArchivedConversationError, getConversation } from "../conversation/conversation.service";
import { Conversation } from "../conversation/conversation.model";
import { ConversationOrigin, ConversationStatus } from "../conversation/conversation.enums";
import { Message } from "../message/message.model";
import { MessageRole } from "../message/message.enums";
import { getMessage } from "../message/message.service";
import { messageText, storedContent } from "../message/encryption";
import { isAdmin } from "../user/viewer";
import { publishMessageUpdated } from "../live/live.hub";
import { DiscordBinding, DiscordPost, DiscordPostStatus } from "./discord.model";
import type { DiscordMessageRef, RecordDiscordEditInput, RecordDiscordPostInput } from "./discord.input";

/** Edit history entries kept per message; older ones are dropped (metadata has a size limit). */
export const MAX_EDITS = 20;
const SNOWFLAKE = /^\d{1,25}$/;

const assertDiscordRelay = (ctx: Actor) => assertMayActFor(ctx, ConversationOrigin.DISCORD);

/**
 * Active conversations bound to a channel, each with two computed columns: the Discord id of the newest
 * relayed message (the last one by seq written for a user by a service), and the seq after which assistant
 * messages still wait to be posted (the first one without a finished post, minus one; else last_seq).
 */
function bindings(ctx: Actor) {
  const knex = ctx.db.knex;
  return Conversation.query(knex)
    .select(
      "conversations.*",
      knex.raw(`(select m.metadata #>> '{discord,messageId}' from messages m
        where m.conversation_id = conversations.id and m.role = 'user' and m.sent_by is not null
          and m.metadata #>> '{discord,messageId}' is not null
        order by m.seq desc limit 1) as last_relayed_message_id`),
      knex.raw(`coalesce((select min(m.seq) - 1 from messages m
        where m.conversation_id = conversations.id and m.role = 'assistant'
          and not exists (select 1 from discord_posts p where p.message_id = m.id and p.status <> 'posting')),
        conversations.last_seq) as resume_after_seq`),
    )
    .where({ origin: ConversationOrigin.DISCORD, status: ConversationStatus.ACTIVE })
    .whereNotNull("discordChannelId");
}

type BindingRow = Conversation & { lastRelayedMessageId: string | null; resumeAfterSeq: number };

function toBinding(ctx: Actor, row: BindingRow): DiscordBinding {
  ctx.loaders.conversationById.prime(row.id, row);
  return Object.assign(new DiscordBinding(), {
    conversation: row,
    guildId: row.discordGuildId,
    channelId: row.discordChannelId!,
    lastRelayedMessageId: row.lastRelayedMessageId ?? null,
    resumeAfterSeq: Number(row.resumeAfterSeq),
  });
}

/** The active conversation bound to the channel, or null. */
export async function getBinding(ctx: Actor, channelId: string): Promise<DiscordBinding | null> {
  await assertDiscordRelay(ctx);
  if (!SNOWFLAKE.test(channelId)) throw new BadUserInputError("channelId must be a Discord id (digits)", { field: "channelId" });
  const row = (await bindings(ctx).where("discordChannelId", channelId).first()) as BindingRow | undefined;
  return row ? toBinding(ctx, row) : null;
}

/** Every bound channel, most recently bound first. */
export async function listBindings(ctx: Actor, args: ConnectionArgs): Promise<ConnectionShape<DiscordBinding>> {
  await assertDiscordRelay(ctx);
  const page = await newestFirstPage(() => bindings(ctx), pageRequest(args, ctx.config), "createdAt", "created_at");
  return mapNodes(page, (node) => toBinding(ctx, node as BindingRow));
}

/**
 * Records what was posted of an assistant message. A finished post (POSTED or FAILED) is final: a later
 * record for it changes nothing and answers the row as it is, so a delayed retry cannot reopen it.
 */
export async function recordPost(ctx: Actor, input: RecordDiscordPostInput): Promise<DiscordPost> {
  await assertDiscordRelay(ctx);
  const message = await getMessage(ctx, input.messageId); // NOT_FOUND for messages the viewer cannot read
  const conversation = await getConversation(ctx, message.conversationId);
  if (conversation.origin !== ConversationOrigin.DISCORD || !conversation.discordChannelId) {
    throw new BadUserInputError("Only messages of a conversation bound to a Discord channel are posted there");
  }
  if (message.role !== MessageRole.ASSISTANT) throw new BadUserInputError("Only ASSISTANT messages are posted to Discord");
  if (input.error != null) checkText(input.error, "error");
  const knex = ctx.db.knex;
  const [row] = await knex("discord_posts")
    .insert({
      messageId: message.id,
      channelId: conversation.discordChannelId,
      discordMessageIds: JSON.stringify(input.discordMessageIds),
      status: input.status,
      error: input.error ?? null,
    })
    .onConflict("messageId")
    .merge(["discordMessageIds", "status", "error"])
    .where("discord_posts.status", DiscordPostStatus.POSTING)
    .returning("*");
  const post = DiscordPost.fromDatabaseJson(row ?? (await knex("discord_posts").where({ messageId: message.id }).first()));
  ctx.loaders.discordPostByMessageId.clear(message.id).prime(message.id, post);
  return post;
}

/** Message.discordPost: null unless the viewer is the adapter (or an admin). */
export async function discordPostOf(ctx: Actor, message: Message): Promise<DiscordPost | null> {
  if (!(await mayActFor(ctx, ConversationOrigin.DISCORD))) return null;
  return (await ctx.loaders.discordPostByMessageId.load(message.id)) ?? null;
}

/** The relayed message `ref` names, if the viewer is the service that relayed it (or an admin). */
async function relayedMessage(ctx: Actor, ref: DiscordMessageRef): Promise<Message> {
  await assertDiscordRelay(ctx);
  const viewer = viewerOf(ctx);
  const conversation = await getConversation(ctx, ref.conversationId); // NOT_FOUND before anything else
  const message =
    conversation.origin === ConversationOrigin.DISCORD
      ? await Message.query(ctx.db.knex).findOne({ conversationId: conversation.id, requestId: ref.discordMessageId })
      : undefined;
  if (!message || message.role !== MessageRole.USER || message.sentBy == null) throw new NotFoundError("Message");
  if (message.sentBy !== viewer.id && !isAdmin(viewer)) throw new ForbiddenError("Only the service that relayed a message records its edits");
  if (conversation.status === ConversationStatus.ARCHIVED) throw new ArchivedConversationError();
  return message;
}

type DiscordMeta = Record<string, unknown> & { edits?: Record<string, unknown>[]; deletedAt?: string };

/** Changes a relayed message under its row lock; `change` returns the new content and Discord metadata, or undefined for "as it is". */
async function changeRelayed(
  ctx: Actor,
  ref: DiscordMessageRef,
  change: (text: string, discord: DiscordMeta) => { content: string; discord: DiscordMeta } | undefined,
): Promise<Message> {
  const found = await relayedMessage(ctx, ref);
  const { encryption } = ctx.config;
  const message = await ctx.db.knex.transaction(async (trx) => {
    const current = await Message.query(trx).findById(found.id).forUpdate().throwIfNotFound();
    const discord = (current.metadata.discord ?? {}) as DiscordMeta;
    const text = messageText(encryption, current);
    const next = discord.deletedAt ? undefined : change(text, discord); // deleted stays deleted
    if (!next || (next.content === text && isDeepStrictEqual(next.discord, discord))) return current;
    const metadata = { ...current.metadata, discord: next.discord };
    checkJson(metadata, "metadata", "object");
    const [updated] = (await Message.query(trx)
      .patch({ metadata, ...(next.content === text ? {} : storedContent(encryption, current.conversationId, current.seq, next.content)) })
      .where({ id: current.id })
      .returning("*")) as unknown as Message[];
    await publishMessageUpdated(trx, current.conversationId, current.seq);
    return updated;
  });
  ctx.loaders.messageById.clear(message.id).prime(message.id, message);
  return message;
}

export async function recordEdit(ctx: Actor, input: RecordDiscordEditInput): Promise<Message> {
  const limit = ctx.config.maxUserMessageLength;
  if ([...input.content].length > limit) throw new BadUserInputError(`content must be at most ${limit} characters`, { field: "content", maxLength: limit });
  if (input.content.trim() === "") throw new BadUserInputError("content must not be empty", { field: "content" });
  checkText(input.content, "content");
  if (input.discord != null) checkJson(input.discord, "discord", "object");
  const { edits: _edits, deletedAt: _deletedAt, ...described } = input.discord ?? {};
  const keepText = !ctx.config.encryption;
  return changeRelayed(ctx, input, (text, discord) => {
    const edits = discord.edits ?? [];
    const entry = { editedAt: (input.editedAt ?? new Date()).toISOString(), ...(keepText ? { previousContent: text } : {}) };
    const history = input.content === text ? edits : [...edits, entry].slice(-MAX_EDITS);
    return { content: input.content, discord: { ...discord, ...described, ...(history.length ? { edits: history } : {}) } };
  });
}

export async function recordDeletion(ctx: Actor, ref: DiscordMessageRef): Promise<Message> {
  return changeRelayed(ctx, ref, (_text, discord) => {
    const edits = discord.edits?.map(({ previousContent: _gone, ...entry }) => entry);
    return { content: "", discord: { ...discord, ...(edits ? { edits } : {}), deletedAt: new Date().toISOString() } };
  });
}
