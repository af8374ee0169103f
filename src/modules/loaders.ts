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

/** How each loader is made: a request makes only those it uses (Loaders, below). */
const MAKERS = {
  userById: (knex) => byIdLoader<User>((ids) => User.query(knex).findByIds(ids as string[])),
  conversationById: (knex) => byIdLoader<Conversation>((ids) => Conversation.query(knex).findByIds(ids as string[])),
  messageById: (knex) => byIdLoader<Message>((ids) => Message.query(knex).findByIds(ids as string[])),
  transcriptById: (knex) => byIdLoader<Transcript>((ids) => Transcript.query(knex).findByIds(ids as string[])),
  transcriptsByConversationId: (knex) => new DataLoader<string, Transcript[]>(async (ids) => {
    const rows = await Transcript.query(knex)
      .whereIn("conversationId", ids as string[])
      .orderBy([{ column: "createdAt", order: "desc" }, { column: "id", order: "desc" }]);
    return mapToMany(ids, rows, (row) => row.conversationId);
  }),
  lastMessageByConversationId: (knex) => new DataLoader<string, Message | undefined>(async (ids) => {
    const rows = await Message.query(knex)
      .select("messages.*")
      .join("conversations", (join) =>
        join.on("conversations.id", "messages.conversation_id").andOn("conversations.last_seq", "messages.seq"),
      )
      .whereIn("conversations.id", ids as string[]);
    return mapTo(ids, rows, (row) => row.conversationId);
  }),
  streamedText: (knex, encryption) => new DataLoader<Message, StreamedText, string>((messages) => streamedTexts(knex, encryption, messages), {
    cacheKeyFn: (message) => message.id,
  }),
  grantsByServiceId: (knex) => new DataLoader<string, GrantSet>((ids) => loadGrantSets(knex, ids)),
  messagePage: (knex, _encryption, loaders) => new DataLoader<MessagePageKey, Message[], string>((keys) => messagePageBatch(knex, keys, { authors: (author) => loaders.userById.prime(author.id, author) }), {
    cacheKeyFn: (key) => `${key.conversationId}:${key.direction}:${key.limit}:${key.cursorSeq ?? ""}`,
  }),
  chunkPage: (knex) => new DataLoader<ChunkPageKey, DocumentChunk[], string>((keys) => chunkPageBatch(knex, keys), { cacheKeyFn: chunkPageKey }),
  assistantById: (knex) => new DataLoader<string, Assistant | undefined>((ids) => assistantsById(knex, ids)),
  assistantVersionById: (knex, _encryption, loaders) => new DataLoader<string, AssistantVersion | undefined>((ids) =>
    assistantVersionsById(knex, ids, (assistant) => loaders.assistantById.prime(assistant.id, assistant)),
  ),
  assistantVersionsByAssistantId: (knex) => new DataLoader<string, AssistantVersion[]>((ids) => versionsByAssistantId(knex, ids)),
  artifactById: (knex) => byIdLoader<Artifact>((ids) => Artifact.query(knex).findByIds(ids as string[])),
  artifactsByMessageId: (knex) => new DataLoader<string, Artifact[]>((ids) => artifactsByMessageId(knex, ids)),
  artifactsByConversation: (knex) => new DataLoader<ConversationArtifactsKey, Artifact[], string>((keys) => latestArtifactsByConversation(knex, keys), {
    cacheKeyFn: conversationArtifactsKey,
  }),
  feedbackByMessageAndUser: (knex) => new DataLoader<FeedbackKey, Feedback | undefined, string>((keys) => feedbackByMessageAndUser(knex, keys), { cacheKeyFn: feedbackKey }),
  feedbackSummaryByMessageId: (knex) => new DataLoader<string, FeedbackSummary>((ids) => feedbackSummariesByMessageId(knex, ids)),
  discordPostByMessageId: (knex) => new DataLoader<string, DiscordPost | undefined>((ids) => discordPostsByMessageId(knex, ids)),
  aiModelPricesByModelId: (knex) => new DataLoader<string, AiModelPrice[]>(async (ids) => {
    const rows = await AiModelPrice.query(knex)
      .select("*", knex.raw("effective_from <= now() as in_force"))
      .whereIn("modelId", ids as string[])
      .orderBy("effectiveFrom", "desc");
    return mapToMany(ids, rows, (row) => row.modelId);
  }),
  activityByUserId: (knex) => new DataLoader<string, ActivityRow>((ids) => activityByUserId(knex, ids)),
  plannedRoots: () => new Map<string, DataLoader<any, any>>(),
  favouriteModels: (knex) => new DataLoader<FavouriteModelsKey, FavouriteModel[], string>((keys) => favouriteModelsBatch(knex, keys), { cacheKeyFn: favouriteModelsKey }),
} satisfies Record<string, (knex: Knex, encryption: EncryptionConfig | undefined, loaders: Loaders) => unknown>;

type Made = { [K in keyof typeof MAKERS]: ReturnType<(typeof MAKERS)[K]> | undefined };
/** Every loader's slot, empty: each Loaders starts from this shape, whatever order its loaders are made in. */
const NONE_MADE = Object.fromEntries(Object.keys(MAKERS).map((name) => [name, undefined])) as Made;

/**
 * A request's (or subscription event's) loaders, each made on first use. About thirty of them exist; a request
 * uses a few, and an idle live group holds its set between events, so making all of them up front cost every
 * request their allocation and every group their memory.
 */
export class Loaders {
  private readonly loaders: Made = { ...NONE_MADE };

  constructor(
    private readonly knex: Knex,
    private readonly encryption: EncryptionConfig | undefined,
  ) {}

  private made<K extends keyof Made>(name: K): NonNullable<Made[K]> {
    return (this.loaders[name] ??= MAKERS[name](this.knex, this.encryption, this) as Made[K])!;
  }

  get userById(): DataLoader<string, User | undefined> {
    return this.made("userById");
  }

  get conversationById() {
    return this.made("conversationById");
  }

  get messageById() {
    return this.made("messageById");
  }

  get transcriptById() {
    return this.made("transcriptById");
  }

  /** Each conversation's transcripts, newest first. */
  get transcriptsByConversationId() {
    return this.made("transcriptsByConversationId");
  }

  /** The newest message of each conversation, found through conversations.last_seq and the (conversation_id, seq) index. */
  get lastMessageByConversationId() {
    return this.made("lastMessageByConversationId");
  }

  /** The text streamed so far into STREAMING messages, with its chunk count (one statement per batch). */
  get streamedText() {
    return this.made("streamedText");
  }

  /** A service's grants (origins and single conversations). */
  get grantsByServiceId() {
    return this.made("grantsByServiceId");
  }

  /** A page of messages for each of many conversations, in one statement per distinct page shape. */
  get messagePage() {
    return this.made("messagePage");
  }

  /** A page of chunks for each of many documents. */
  get chunkPage() {
    return this.made("chunkPage");
  }

  get assistantById(): DataLoader<string, Assistant | undefined> {
    return this.made("assistantById");
  }

  /** Assistant versions (Conversation.assistant, Message.assistant), their assistants read in the same statement. */
  get assistantVersionById() {
    return this.made("assistantVersionById");
  }

  /** Each assistant's versions, oldest first. */
  get assistantVersionsByAssistantId() {
    return this.made("assistantVersionsByAssistantId");
  }

  get artifactById() {
    return this.made("artifactById");
  }

  /** Each message's artifact versions, oldest first. */
  get artifactsByMessageId() {
    return this.made("artifactsByMessageId");
  }

  /** The latest version of each artifact of a conversation (of one kind, or all), most recently changed first. */
  get artifactsByConversation() {
    return this.made("artifactsByConversation");
  }

  /** One user's feedback on a message (Message.myFeedback). */
  get feedbackByMessageAndUser() {
    return this.made("feedbackByMessageAndUser");
  }

  /** Everyone's feedback on a message, counted (Message.feedbackSummary). */
  get feedbackSummaryByMessageId() {
    return this.made("feedbackSummaryByMessageId");
  }

  /** What the Discord adapter posted of each assistant message. */
  get discordPostByMessageId() {
    return this.made("discordPostByMessageId");
  }

  /**
   * Each catalogue model's prices, newest effectiveFrom first, each marked inForce by the database's clock
   * (the clock that stamps the ledger), so currentPrice needs no statement of its own.
   */
  get aiModelPricesByModelId() {
    return this.made("aiModelPricesByModelId");
  }

  /** Each user's user_activity row (zeros for a user without one). */
  get activityByUserId() {
    return this.made("activityByUserId");
  }

  /** Each user's top models from the monthly usage roll-ups. */
  /** The read planner's batches of root fields of one shape (graphql/planner/plan.ts, plannedBatch). */
  get plannedRoots() {
    return this.made("plannedRoots");
  }

  get favouriteModels() {
    return this.made("favouriteModels");
  }
}

export function createLoaders(knex: Knex, encryption: EncryptionConfig | undefined): Loaders {
  return new Loaders(knex, encryption);
}
