import { Field, Float, InputType, Int } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { AiRequestKind, AiRequestStatus } from "./usage.enums";

@InputType({ description: "A model call for the usage ledger" })
export class RecordAiRequestInput {
  @Field({ description: "Your idempotency key (1-200 characters): the same key again returns the row first recorded" })
  requestId: string;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "The user billed. Default: the conversation's owner, else you. A service may bill only the conversation's owner or its authors",
  })
  userId?: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId?: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The message the call produced (in conversationId)" })
  messageId?: string | null;

  @Field(() => String, { nullable: true, description: "Discord guild id; default: the conversation's" })
  guildId?: string | null;

  @Field(() => String, { nullable: true, description: "Needed to price a model whose name several providers use" })
  provider?: string | null;

  @Field()
  model: string;

  @Field(() => AiRequestKind, { nullable: true, defaultValue: AiRequestKind.CHAT })
  kind?: AiRequestKind | null;

  @Field(() => Int, { nullable: true, defaultValue: 0 })
  promptTokens?: number | null;

  @Field(() => Int, { nullable: true, defaultValue: 0 })
  completionTokens?: number | null;

  @Field(() => Int, { nullable: true, defaultValue: 0, description: "The part of promptTokens read from the provider's prompt cache" })
  cachedTokens?: number | null;

  @Field(() => Int, { nullable: true })
  latencyMs?: number | null;

  @Field(() => Int, { nullable: true })
  timeToFirstTokenMs?: number | null;

  @Field(() => AiRequestStatus, { nullable: true, defaultValue: AiRequestStatus.SUCCESS })
  status?: AiRequestStatus | null;

  @Field(() => String, { nullable: true })
  errorCode?: string | null;

  @Field(() => Float, { nullable: true, description: "In [0, 1]" })
  confidence?: number | null;

  @Field(() => Float, { nullable: true, description: "In [0, 1]" })
  safety?: number | null;

  @Field(() => Float, { nullable: true, description: "In [0, 1]" })
  relevance?: number | null;

  @Field(() => Float, { nullable: true, description: "USD as billed; without it the catalogue price in force at occurredAt is used" })
  costUsd?: number | null;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object" })
  metadata?: Record<string, unknown> | null;

  @Field(() => Date, { nullable: true, description: "When the call was made (default now); at most a minute in the future" })
  occurredAt?: Date | null;
}
