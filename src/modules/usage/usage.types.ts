import { Field, Float, Int, ObjectType } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@ObjectType({ description: "The model calls of one period (and user, model, guild when grouped by them)" })
export class UsageBucket {
  @Field({ description: "The period's start, in UTC" })
  periodStart: Date;

  @Field(() => UUIDScalar, { nullable: true, description: "Set when grouped by USER" })
  userId: string | null;

  @Field(() => String, { nullable: true, description: "Set when grouped by MODEL" })
  model: string | null;

  @Field(() => String, { nullable: true, description: "When grouped by GUILD: the guild, or null for calls outside any guild" })
  guildId: string | null;

  @Field(() => Int)
  requests: number;

  @Field(() => Int, { description: "Calls that did not end in SUCCESS" })
  errors: number;

  @Field(() => Int, { description: "Calls without a price (costSource UNKNOWN): costUsd leaves them out" })
  unpricedRequests: number;

  @Field(() => Float)
  promptTokens: number;

  @Field(() => Float)
  completionTokens: number;

  @Field(() => Float)
  cachedTokens: number;

  @Field(() => Float, { description: "USD" })
  costUsd: number;

  @Field(() => Float, { nullable: true, description: "Over the calls that reported a latency" })
  averageLatencyMs: number | null;

  @Field(() => Float, {
    nullable: true,
    description: "Only when read from the ledger itself (a conversationId filter, a service's view, or a range not on period boundaries); null from the roll-ups, which cannot give it",
  })
  p95LatencyMs: number | null;
}
