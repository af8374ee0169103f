import { Field, Float, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { AiRequestKind, AiRequestStatus, CostSource } from "./usage.enums";

const NUMERIC = ["costUsd", "confidence", "safety", "relevance"] as const;

/** One model call on the ledger (ai_requests): who is billed, what it used, what it cost. Append-only. */
@ObjectType({ description: "One model call on the usage ledger" })
export class AiRequest extends Model {
  static override tableName = "ai_requests";

  @Field(() => UUIDScalar)
  id: string;

  @Field({ description: "The reporter's idempotency key: the same key again returns this row and counts nothing" })
  requestId: string;

  @Field(() => UUIDScalar, { nullable: true, description: "The user billed (null once the user was deleted)" })
  userId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The service (or admin) that reported the call" })
  reportedBy: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The message the call produced" })
  messageId: string | null;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  modelId: string | null;

  @Field(() => String, { nullable: true })
  provider: string | null;

  @Field()
  model: string;

  @Field(() => AiRequestKind)
  kind: AiRequestKind;

  @Field(() => Int)
  promptTokens: number;

  @Field(() => Int)
  completionTokens: number;

  @Field(() => Int, { description: "The part of promptTokens read from the provider's prompt cache" })
  cachedTokens: number;

  @Field(() => Int, { nullable: true })
  latencyMs: number | null;

  @Field(() => Int, { nullable: true })
  timeToFirstTokenMs: number | null;

  @Field(() => AiRequestStatus)
  status: AiRequestStatus;

  @Field(() => String, { nullable: true })
  errorCode: string | null;

  @Field(() => Float, { nullable: true })
  confidence: number | null;

  @Field(() => Float, { nullable: true })
  safety: number | null;

  @Field(() => Float, { nullable: true })
  relevance: number | null;

  @Field(() => Float, { nullable: true, description: "USD; null when the model has no price (costSource UNKNOWN)" })
  costUsd: number | null;

  @Field(() => CostSource)
  costSource: CostSource;

  @Field(() => JSONResolver)
  metadata: Record<string, unknown>;

  @Field({ description: "When the call was made: the catalogue price in force then prices it" })
  occurredAt: Date;

  @Field()
  createdAt: Date;

  /**
   * Generation speed: completion tokens over the time after the first token (or over the whole latency when
   * the time to first token is unknown); null without a latency to divide by.
   */
  @Field(() => Float, { nullable: true })
  get tokensPerSecond(): number | null {
    const generating = this.latencyMs == null ? null : this.latencyMs - (this.timeToFirstTokenMs ?? 0);
    return generating && generating > 0 ? Math.round((this.completionTokens * 1000 * 100) / generating) / 100 : null;
  }

  // numeric comes back as a string from both drivers.
  override $parseDatabaseJson(json: Record<string, unknown>) {
    const parsed = super.$parseDatabaseJson(json);
    for (const key of NUMERIC) if (typeof parsed[key] === "string") parsed[key] = Number(parsed[key]);
    return parsed;
  }
}
