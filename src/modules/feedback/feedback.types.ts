import { Field, Float, Int, ObjectType, registerEnumType } from "type-graphql";
import { BaseModel } from "../../db/base.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";

export enum FeedbackRating {
  UP = "up",
  DOWN = "down",
}
registerEnumType(FeedbackRating, { name: "FeedbackRating", description: "Thumbs up or thumbs down" });

/** What feedback statistics are split by. A time axis (DAY, WEEK or MONTH, in UTC) is at most one of them. */
export enum FeedbackGroupBy {
  MODEL = "model",
  ASSISTANT = "assistant",
  GUILD = "guild",
  DAY = "day",
  WEEK = "week",
  MONTH = "month",
}
registerEnumType(FeedbackGroupBy, {
  name: "FeedbackGroupBy",
  description: "What feedback buckets are split by: the rated message's model or assistant, the Discord guild, or one period (DAY, WEEK or MONTH, UTC)",
});

/**
 * The fixed tag vocabulary. Anything else must be a free tag, written `custom:<text>` (see feedback.service.ts),
 * so a typo in a fixed tag is refused instead of silently becoming a tag of its own.
 */
export const FEEDBACK_TAGS = [
  "ACCURATE",
  "HELPFUL",
  "CLEAR",
  "CREATIVE",
  "INACCURATE",
  "NOT_HELPFUL",
  "UNCLEAR",
  "UNSAFE",
  "TOO_LONG",
  "TOO_SHORT",
  "OFF_TOPIC",
  "OUTDATED",
  "INCOMPLETE",
] as const;
export type FeedbackTag = (typeof FEEDBACK_TAGS)[number];
export const CUSTOM_TAG_PREFIX = "custom:";

/** One user's feedback on one message: a newer rating by the same user replaces it. */
@ObjectType({ description: "A user's feedback on an assistant or tool message: UP/DOWN and/or a score 1–5, a comment and tags" })
export class Feedback extends BaseModel {
  static override tableName = "feedback";

  @Field(() => UUIDScalar)
  messageId: string;

  @Field(() => UUIDScalar)
  conversationId: string;

  @Field(() => UUIDScalar, { description: "Who gave it" })
  userId: string;

  @Field(() => FeedbackRating, { nullable: true })
  rating: FeedbackRating | null;

  @Field(() => Int, { nullable: true, description: "1 (worst) to 5 (best)" })
  score: number | null;

  @Field(() => String, { nullable: true })
  comment: string | null;

  @Field(() => [String], { description: `Fixed tags (${FEEDBACK_TAGS.join(", ")}) and free tags written ${CUSTOM_TAG_PREFIX}<text>` })
  tags: string[];
}

@ObjectType({ description: "How often a tag was given" })
export class FeedbackTagCount {
  @Field()
  tag: string;

  @Field(() => Int)
  count: number;
}

@ObjectType({ description: "All users' feedback on one message" })
export class FeedbackSummary {
  @Field(() => Int)
  up: number;

  @Field(() => Int)
  down: number;

  @Field(() => Int, { description: "How many users gave feedback (with a rating, a score or both)" })
  ratings: number;

  @Field(() => Float, { nullable: true, description: "Over the feedback that has a score; null when none has" })
  averageScore: number | null;

  @Field(() => [FeedbackTagCount], { description: "Most given first" })
  tags: FeedbackTagCount[];
}

@ObjectType({ description: "Feedback of one group (period, model, assistant, guild as grouped by)" })
export class FeedbackBucket {
  @Field(() => Date, { nullable: true, description: "Set when grouped by DAY, WEEK or MONTH: the period's start, in UTC" })
  periodStart: Date | null;

  @Field(() => String, { nullable: true, description: "Set when grouped by MODEL (null: messages that name no model)" })
  model: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "Set when grouped by ASSISTANT (null: messages written by no assistant)" })
  assistantId: string | null;

  @Field(() => String, { nullable: true, description: "Set when grouped by GUILD (null: conversations outside Discord)" })
  guildId: string | null;

  @Field(() => Int)
  up: number;

  @Field(() => Int)
  down: number;

  @Field(() => Int, { description: "Feedback rows (with a rating, a score or both)" })
  ratings: number;

  @Field(() => Float, { nullable: true, description: "up / (up + down); null without any UP or DOWN" })
  upShare: number | null;

  @Field(() => Float, { nullable: true, description: "Over the feedback that has a score; null when none has" })
  averageScore: number | null;
}
