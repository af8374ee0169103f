import { ArgsType, Field, InputType, Int } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { FeedbackGroupBy, FeedbackRating } from "./feedback.types";

// Ranges and the tag vocabulary are checked in feedback.service.ts, not with class-validator: the errors then
// name the field and the allowed values, and the Discord adapter (and the CLI) get the same checks.
@InputType({ description: "Feedback on one message; at least one of rating and score. Rating again replaces your earlier feedback." })
export class RateMessageInput {
  @Field(() => UUIDScalar)
  messageId: string;

  @Field(() => FeedbackRating, { nullable: true })
  rating?: FeedbackRating | null;

  @Field(() => Int, { nullable: true, description: "1 (worst) to 5 (best)" })
  score?: number | null;

  @Field(() => String, { nullable: true, description: "Up to 2,000 characters" })
  comment?: string | null;

  @Field(() => [String], { nullable: true, description: "Up to 20: fixed tags (see FEEDBACK_TAGS in the README) or free tags `custom:<text>`" })
  tags?: string[] | null;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "Services and admins: rate for this user (a service granted DISCORD: for Discord members); the viewer when left out",
  })
  userId?: string | null;
}

@InputType({ description: "Which feedback to count: given from (inclusive) to (exclusive), optionally narrowed" })
export class FeedbackStatsFilter {
  @Field()
  from: Date;

  @Field()
  to: Date;

  @Field(() => String, { nullable: true, description: "The rated message's model" })
  model?: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The assistant whose version wrote the rated message" })
  assistantId?: string | null;

  @Field(() => String, { nullable: true, description: "The Discord guild of the rated message's conversation" })
  guildId?: string | null;
}

@ArgsType()
export class FeedbackStatsArgs {
  @Field(() => FeedbackStatsFilter)
  filter: FeedbackStatsFilter;

  @Field(() => [FeedbackGroupBy], { nullable: true, description: "Split the buckets by these (default: one bucket for everything)" })
  groupBy?: FeedbackGroupBy[] | null;
}
