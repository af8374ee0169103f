/**
 * Per-request DataLoaders: every relation and per-parent field of the schema resolves through one of these,
 * so a list of N parents costs one batched statement per relation, not N. A new set is made for every
 * request (and every subscription event), so nothing cached outlives the permissions it was read with.
 * test/api/n-plus-one.test.ts counts the statements of each relation for few and many parents.
 */
import DataLoader from "dataloader";
import type { Knex } from "knex";
import { User } from "./user/user.model";
import { Conversation } from "./conversation/conversation.model";
import { Message } from "./message/message.model";
import { Transcript } from "./transcript/transcript.model";
import { messagePageBatch, type MessagePageKey } from "./message/message.loaders";
import { loadGrantSets } from "./access/access.service";
import type { GrantSet } from "./access/grant.model";
import { streamedTexts, type StreamedText } from "./message/stream.service";
import type { EncryptionConfig } from "../config";
import type { DiscordPost } from "./discord/discord.model";
import { discordPostsByMessageId } from "./discord/discord.loaders";
import { AiModelPrice } from "./usage/ai-model.model";
import { chunkPageBatch, chunkPageKey, type ChunkPageKey } from "./knowledge/document.loaders";
import type { DocumentChunk } from "./knowledge/document.model";
import type { Feedback, FeedbackSummary } from "./feedback/feedback.types";
import { feedbackByMessageAndUser, feedbackKey, feedbackSummariesByMessageId, type FeedbackKey } from "./feedback/feedback.loaders";
import { activityByUserId, favouriteModelsBatch, favouriteModelsKey, type ActivityRow, type FavouriteModelsKey } from "./user/user-activity.loaders";
import type { FavouriteModel } from "./user/user-activity.types";
import { Artifact } from "./artifact/artifact.types";
import { artifactsByMessageId, conversationArtifactsKey, latestArtifactsByConversation, type ConversationArtifactsKey } from "./artifact/artifact.loaders";
import type { Assistant, AssistantVersion } from "./assistant/assistant.types";
import { assistantsById, assistantVersionsById, versionsByAssistantId } from "./assistant/assistant.loaders";

/** Groups rows by key, aligned to keys (an empty list for a key without rows), keeping the rows' order. */
export function mapToMany<K, V>(keys: readonly K[], rows: readonly V[], keyOf: (row: V) => K): V[][] {
  const byKey = new Map<K, V[]>(keys.map((key) => [key, []]));
  for (const row of rows) byKey.get(keyOf(row))?.push(row);
  return keys.map((key) => byKey.get(key)!);
}

/** Aligns rows to keys (DataLoader requires one result per key, in key order). */
export function mapTo<K, V>(keys: readonly K[], rows: readonly V[], keyOf: (row: V) => K): (V | undefined)[] {
  const byKey = new Map<K, V>();
  for (const row of rows) byKey.set(keyOf(row), row);
  return keys.map((key) => byKey.get(key));
}

function byIdLoader<M extends { id: string }>(load: (ids: readonly string[]) => PromiseLike<M[]>) {
  return new DataLoader<string, M | undefined>(async (ids) => mapTo(ids, await load(ids), (row) => row.id));
}

export function createLoaders(knex: Knex, encryption: EncryptionConfig | undefined) {
  const userById = byIdLoader<User>((ids) => User.query(knex).findByIds(ids as string[]));
  const assistantById = new DataLoader<string, Assistant | undefined>((ids) => assistantsById(knex, ids));
  return {
    userById,
    conversationById: byIdLoader<Conversation>((ids) => Conversation.query(knex).findByIds(ids as string[])),
    messageById: byIdLoader<Message>((ids) => Message.query(knex).findByIds(ids as string[])),
    transcriptById: byIdLoader<Transcript>((ids) => Transcript.query(knex).findByIds(ids as string[])),
    /** Each conversation's transcripts, newest first. */
    transcriptsByConversationId: new DataLoader<string, Transcript[]>(async (ids) => {
      const rows = await Transcript.query(knex)
        .whereIn("conversationId", ids as string[])
        .orderBy([{ column: "createdAt", order: "desc" }, { column: "id", order: "desc" }]);
      return mapToMany(ids, rows, (row) => row.conversationId);
    }),
    /** The newest message of each conversation, found through conversations.last_seq and the (conversation_id, seq) index. */
    lastMessageByConversationId: new DataLoader<string, Message | undefined>(async (ids) => {
      const rows = await Message.query(knex)
        .select("messages.*")
        .join("conversations", (join) =>
          join.on("conversations.id", "messages.conversation_id").andOn("conversations.last_seq", "messages.seq"),
        )
        .whereIn("conversations.id", ids as string[]);
      return mapTo(ids, rows, (row) => row.conversationId);
    }),
    /** The text streamed so far into STREAMING messages, with its chunk count (one statement per batch). */
    streamedText: new DataLoader<Message, StreamedText, string>((messages) => streamedTexts(knex, encryption, messages), {
      cacheKeyFn: (message) => message.id,
    }),
    /** A service's grants (origins and single conversations). */
    grantsByServiceId: new DataLoader<string, GrantSet>((ids) => loadGrantSets(knex, ids)),
    /** A page of messages for each of many conversations, in one statement per distinct page shape. */
    messagePage: new DataLoader<MessagePageKey, Message[], string>((keys) => messagePageBatch(knex, keys, { authors: (author) => userById.prime(author.id, author) }), {
      cacheKeyFn: (key) => `${key.conversationId}:${key.direction}:${key.limit}:${key.cursorSeq ?? ""}`,
    }),
    /** A page of chunks for each of many documents. */
    chunkPage: new DataLoader<ChunkPageKey, DocumentChunk[], string>((keys) => chunkPageBatch(knex, keys), { cacheKeyFn: chunkPageKey }),
    assistantById,
    /** Assistant versions (Conversation.assistant, Message.assistant), their assistants read in the same statement. */
    assistantVersionById: new DataLoader<string, AssistantVersion | undefined>((ids) =>
      assistantVersionsById(knex, ids, (assistant) => assistantById.prime(assistant.id, assistant)),
    ),
    /** Each assistant's versions, oldest first. */
    assistantVersionsByAssistantId: new DataLoader<string, AssistantVersion[]>((ids) => versionsByAssistantId(knex, ids)),
    artifactById: byIdLoader<Artifact>((ids) => Artifact.query(knex).findByIds(ids as string[])),
    /** Each message's artifact versions, oldest first. */
    artifactsByMessageId: new DataLoader<string, Artifact[]>((ids) => artifactsByMessageId(knex, ids)),
    /** The latest version of each artifact of a conversation (of one kind, or all), most recently changed first. */
    artifactsByConversation: new DataLoader<ConversationArtifactsKey, Artifact[], string>((keys) => latestArtifactsByConversation(knex, keys), {
      cacheKeyFn: conversationArtifactsKey,
    }),
    /** One user's feedback on a message (Message.myFeedback). */
    feedbackByMessageAndUser: new DataLoader<FeedbackKey, Feedback | undefined, string>((keys) => feedbackByMessageAndUser(knex, keys), { cacheKeyFn: feedbackKey }),
    /** Everyone's feedback on a message, counted (Message.feedbackSummary). */
    feedbackSummaryByMessageId: new DataLoader<string, FeedbackSummary>((ids) => feedbackSummariesByMessageId(knex, ids)),
    /** What the Discord adapter posted of each assistant message. */
    discordPostByMessageId: new DataLoader<string, DiscordPost | undefined>((ids) => discordPostsByMessageId(knex, ids)),
    /**
     * Each catalogue model's prices, newest effectiveFrom first, each marked inForce by the database's clock
     * (the clock that stamps the ledger), so currentPrice needs no statement of its own.
     */
    aiModelPricesByModelId: new DataLoader<string, AiModelPrice[]>(async (ids) => {
      const rows = await AiModelPrice.query(knex)
        .select("*", knex.raw("effective_from <= now() as in_force"))
        .whereIn("modelId", ids as string[])
        .orderBy("effectiveFrom", "desc");
      return mapToMany(ids, rows, (row) => row.modelId);
    }),
    /** Each user's user_activity row (zeros for a user without one). */
    activityByUserId: new DataLoader<string, ActivityRow>((ids) => activityByUserId(knex, ids)),
    /** Each user's top models from the monthly usage roll-ups. */
    /** The read planner's batches of root fields of one shape (graphql/planner/plan.ts, plannedBatch). */
    plannedRoots: new Map<string, DataLoader<any, any>>(),
    favouriteModels: new DataLoader<FavouriteModelsKey, FavouriteModel[], string>((keys) => favouriteModelsBatch(knex, keys), { cacheKeyFn: favouriteModelsKey }),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
