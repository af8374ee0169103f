import { Field, Float, Int, ObjectType } from "type-graphql";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { User } from "../user/user.model";
import { KnowledgeScopeKind } from "./scope";

@ObjectType({ description: "A document or chunk an answer drew on, as the bot reported it" })
export class QuerySource {
  @Field(() => UUIDScalar, { nullable: true })
  documentId: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  chunkId: string | null;

  @Field(() => Float, { nullable: true, description: "The retrieval score the bot gave it" })
  score: number | null;
}

/** One question asked of a knowledge scope and how it was answered (query_history). Append-only. */
@ObjectType({ description: "A question asked of Parley's knowledge, as the bot that answered it recorded it" })
export class QueryRecord extends Model {
  static override tableName = "query_history";

  @Field(() => UUIDScalar)
  id: string;

  knowledgeBaseId: string | null;

  @Field(() => KnowledgeScopeKind, { nullable: true, description: "The scope whose knowledge answered it; null when none was named (or its knowledge was deleted)" })
  scope: KnowledgeScopeKind | null;

  @Field(() => String, { nullable: true, description: "The Discord guild it was asked in" })
  guildId: string | null;

  @Field(() => String, { nullable: true, description: "The Discord channel it was asked in" })
  channelId: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "Who asked (null once the user was deleted)" })
  userId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "Who recorded it: the user, or the service or admin that answered for them" })
  recordedBy: string | null;

  @Field()
  question: string;

  @Field(() => String, { nullable: true })
  answer: string | null;

  @Field(() => [QuerySource])
  sources: QuerySource[];

  @Field(() => String, { nullable: true })
  model: string | null;

  @Field(() => Int, { nullable: true })
  responseTimeMs: number | null;

  @Field(() => Int, { nullable: true })
  promptTokens: number | null;

  @Field(() => Int, { nullable: true })
  completionTokens: number | null;

  @Field({ description: "Answered from the answer cache" })
  cacheHit: boolean;

  @Field()
  createdAt: Date;
}

@ObjectType({ description: "A user and how many questions they asked in the period" })
export class KnowledgeTopUser {
  @Field(() => UUIDScalar)
  userId: string;

  /** Resolved by QueryHistoryResolver through the per-request user loader. */
  user?: User;

  @Field(() => Int)
  queries: number;
}

@ObjectType({ description: "Questions asked in [from, to) and the answer cache, over what the viewer may see of them" })
export class KnowledgeStats {
  @Field()
  from: Date;

  @Field()
  to: Date;

  @Field(() => Int)
  queries: number;

  @Field(() => Int, { description: "Distinct users who asked" })
  activeUsers: number;

  @Field(() => Float, { nullable: true, description: "Share of the questions answered from the cache, 0 to 1; null without questions" })
  cacheHitRate: number | null;

  @Field(() => Float, { nullable: true, description: "Over the questions that reported a response time" })
  averageResponseTimeMs: number | null;

  @Field(() => Float, { nullable: true, description: "95th percentile (interpolated) over the questions that reported a response time" })
  p95ResponseTimeMs: number | null;

  @Field(() => [KnowledgeTopUser], { description: "The 10 users who asked most, most first (ties by user id)" })
  topUsers: KnowledgeTopUser[];

  @Field(() => Int, { description: "Cached answers not yet expired, now (whatever the period)" })
  cachedAnswers: number;

  @Field(() => Int, { description: "Of cachedAnswers, those served at least once" })
  cacheEntriesHit: number;
}
