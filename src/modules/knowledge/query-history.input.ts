// Checked in query-history.service.ts rather than with class-validator, so that every refusal names its `field`.
import { ArgsType, Field, Float, InputType, Int } from "type-graphql";
import { ValidateNested } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeInput } from "./scope";

@InputType({ description: "A document or chunk an answer drew on: documentId, chunkId or both" })
export class QuerySourceInput {
  @Field(() => UUIDScalar, { nullable: true })
  documentId?: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  chunkId?: string | null;

  @Field(() => Float, { nullable: true })
  score?: number | null;
}

@InputType({ description: "A question that was asked and how it was answered" })
export class RecordQueryInput {
  @Field(() => KnowledgeScopeInput, { nullable: true, description: "The scope whose knowledge answered it (one the viewer may read)" })
  @ValidateNested()
  scope?: KnowledgeScopeInput | null;

  @Field({ description: "1 to 10000 characters (trimmed)" })
  question: string;

  @Field(() => String, { nullable: true, description: "At most 200000 characters" })
  answer?: string | null;

  @Field(() => [QuerySourceInput], { nullable: true, description: "At most 100" })
  sources?: QuerySourceInput[] | null;

  @Field(() => String, { nullable: true, description: "1 to 200 characters" })
  model?: string | null;

  @Field(() => Int, { nullable: true })
  responseTimeMs?: number | null;

  @Field(() => Int, { nullable: true })
  promptTokens?: number | null;

  @Field(() => Int, { nullable: true })
  completionTokens?: number | null;

  @Field(() => Boolean, { nullable: true, description: "Answered from the answer cache (default false)" })
  cacheHit?: boolean | null;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "Who asked: the viewer by default; another user only for admins and, for Discord members, services granted DISCORD",
  })
  userId?: string | null;

  @Field(() => String, { nullable: true, description: "The Discord guild (admins, services granted DISCORD); a GUILD scope's by default" })
  guildId?: string | null;

  @Field(() => String, { nullable: true, description: "The Discord channel (admins, services granted DISCORD)" })
  channelId?: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "A conversation the viewer may access" })
  conversationId?: string | null;
}

@InputType({ description: "Which recorded questions: every condition given must hold" })
export class QueryHistoryFilter {
  @Field(() => KnowledgeScopeInput, { nullable: true, description: "Asked of this scope (one the viewer may read)" })
  @ValidateNested()
  scope?: KnowledgeScopeInput | null;

  @Field(() => String, { nullable: true })
  guildId?: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "Asked by this user (members: only themselves)" })
  userId?: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId?: string | null;

  @Field(() => Date, { nullable: true, description: "createdAt >= from" })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "createdAt < to" })
  to?: Date | null;

  @Field(() => Boolean, { nullable: true })
  cacheHit?: boolean | null;
}

@ArgsType()
export class QueryHistoryArgs extends ConnectionArgs {
  @Field(() => QueryHistoryFilter, { nullable: true })
  @ValidateNested()
  filter?: QueryHistoryFilter | null;
}

@ArgsType()
export class KnowledgeStatsArgs {
  @Field(() => KnowledgeScopeInput, { nullable: true, description: "Questions asked of this scope, and its cache; all you may see when left out" })
  @ValidateNested()
  scope?: KnowledgeScopeInput | null;

  @Field(() => Date, { nullable: true, description: "Inclusive; default: 24 hours before `to`" })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Exclusive; default: now" })
  to?: Date | null;
}
