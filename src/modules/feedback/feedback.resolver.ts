import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { User } from "../user/user.model";
import { Message } from "../message/message.model";
import { Feedback, FeedbackBucket, FeedbackSummary } from "./feedback.types";
import { FeedbackStatsArgs, RateMessageInput } from "./feedback.input";
import * as feedback from "./feedback.service";

@Resolver(() => Feedback)
export class FeedbackResolver {
  @Mutation(() => Feedback, {
    description:
      "Rates an ASSISTANT or TOOL message you can read (NOT_FOUND otherwise; other roles are BAD_USER_INPUT). " +
      "One per user per message: rating again replaces it. Services and admins may rate for a user (userId).",
  })
  rateMessage(@Arg("input") input: RateMessageInput, @Ctx() ctx: Context): Promise<Feedback> {
    return feedback.rateMessage(ctx, input);
  }

  @Mutation(() => Boolean, { description: "Deletes your feedback on a message (services and admins: userId's); false when there was none" })
  retractFeedback(
    @Arg("messageId", () => UUIDScalar) messageId: string,
    @Arg("userId", () => UUIDScalar, { nullable: true }) userId: string | null,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return feedback.retractFeedback(ctx, messageId, userId);
  }

  @Query(() => [FeedbackBucket], {
    description:
      "Feedback counted by model, assistant, guild and period (UTC), by when it was first given. Admins see all; services granted " +
      "DISCORD the feedback in Discord guilds' conversations; members FORBIDDEN.",
  })
  feedbackStats(@Args() args: FeedbackStatsArgs, @Ctx() ctx: Context): Promise<FeedbackBucket[]> {
    return feedback.feedbackStats(ctx, args);
  }

  @FieldResolver(() => User, { nullable: true, description: "Who gave it" })
  user(@Root() row: Feedback, @Ctx() ctx: Context): Promise<User | undefined> {
    return ctx.loaders.userById.load(row.userId);
  }
}

@Resolver(() => Message)
export class MessageFeedbackResolver {
  @FieldResolver(() => Feedback, { nullable: true, description: "Your own feedback on this message" })
  myFeedback(@Root() message: Message, @Ctx() ctx: Context): Promise<Feedback | null> {
    return feedback.myFeedback(ctx, message);
  }

  @FieldResolver(() => FeedbackSummary, {
    nullable: true,
    description: "Everyone's feedback on this message: for services and admins; null for members (their own is myFeedback)",
  })
  feedbackSummary(@Root() message: Message, @Ctx() ctx: Context): Promise<FeedbackSummary | null> {
    return feedback.feedbackSummary(ctx, message);
  }
}
