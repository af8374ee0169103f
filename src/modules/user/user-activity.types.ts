import { Arg, Ctx, Field, Float, Int, ObjectType } from "type-graphql";
import type { Actor } from "../actor";
import { favouriteModels } from "./user-activity.service";

@ObjectType({ description: "A model the user's calls went to, summed over the monthly usage roll-ups" })
export class FavouriteModel {
  @Field()
  model: string;

  @Field(() => Int)
  requests: number;

  @Field(() => Float, { description: "USD; calls without a price count as 0" })
  costUsd: number;
}

@ObjectType({ description: "What a user has done in Parley, from the user_activity roll-up (never counted per request)" })
export class UserActivity {
  /** Whose activity: favouriteModels loads by it. */
  userId: string;

  @Field(() => Int, { description: "USER messages written by the user (or by a service as them); deleting a conversation does not lower it" })
  messagesSent: number;

  @Field(() => Int, { description: "Conversations the user owns now" })
  conversations: number;

  @Field(() => Int, { description: "Ratings the user has given and not retracted" })
  feedbackGiven: number;

  @Field(() => Date, { nullable: true, description: "The first message sent, conversation created or rating given; null before any" })
  firstActiveAt: Date | null;

  @Field(() => Date, { nullable: true, description: "The latest message sent, conversation created or rating given" })
  lastActiveAt: Date | null;

  // A method of the type rather than a resolver of its own: the field needs an argument, and this keeps the whole
  // of User.activity in the user module without another resolver class to register.
  @Field(() => [FavouriteModel], { description: "The models most used for this user, most requests first (then cost, then name)" })
  favouriteModels(
    @Arg("first", () => Int, { defaultValue: 3, description: "1 to 50" }) first: number,
    @Ctx() ctx: Actor,
  ): Promise<FavouriteModel[]> {
    return favouriteModels(ctx, this.userId, first);
  }
}
