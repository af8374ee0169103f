/**
 * User.activity: the user_activity roll-up (kept by triggers, migrations/20261202000800_user_activity.ts) and
 * the favourite models from the monthly usage roll-ups. Both are private, like the user's email.
 */
import type { Actor } from "../actor";
import { BadUserInputError } from "../../graphql/errors";
import { isAdmin, viewerOf } from "./viewer";
import type { User } from "./user.model";
import { FavouriteModel, UserActivity } from "./user-activity.types";

export const MAX_FAVOURITE_MODELS = 50;

/** The user's activity, or null for anyone but the user and admins. */
export async function userActivity(ctx: Actor, user: User): Promise<UserActivity | null> {
  const viewer = viewerOf(ctx);
  if (viewer.id !== user.id && !isAdmin(viewer)) return null;
  return Object.assign(new UserActivity(), await ctx.loaders.activityByUserId.load(user.id));
}

/** Reached only through userActivity, which has decided who may see it. */
export async function favouriteModels(ctx: Actor, userId: string, first: number): Promise<FavouriteModel[]> {
  if (!Number.isInteger(first) || first < 1 || first > MAX_FAVOURITE_MODELS) {
    throw new BadUserInputError(`first must be 1 to ${MAX_FAVOURITE_MODELS}`, { field: "first" });
  }
  return ctx.loaders.favouriteModels.load({ userId, first });
}
