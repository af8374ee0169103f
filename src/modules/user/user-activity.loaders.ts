/**
 * Batch functions of User.activity: one statement per batch of users, aligned to the keys (loaders.ts).
 */
import type { Knex } from "knex";
import type { FavouriteModel } from "./user-activity.types";

/** A user_activity row; a user without one has done nothing yet. */
export interface ActivityRow {
  userId: string;
  messagesSent: number;
  conversations: number;
  feedbackGiven: number;
  firstActiveAt: Date | null;
  lastActiveAt: Date | null;
}

export interface FavouriteModelsKey {
  userId: string;
  first: number;
}

export const favouriteModelsKey = (key: FavouriteModelsKey) => `${key.userId}:${key.first}`;

export async function activityByUserId(knex: Knex, userIds: readonly string[]): Promise<ActivityRow[]> {
  const rows: ActivityRow[] = await knex("user_activity").whereRaw("user_id = any(?::uuid[])", [[...userIds]]).select("*");
  const byId = new Map(rows.map((row) => [row.userId, row]));
  return userIds.map(
    (userId) => byId.get(userId) ?? { userId, messagesSent: 0, conversations: 0, feedbackGiven: 0, firstActiveAt: null, lastActiveAt: null },
  );
}

/**
 * Each user's top models from the monthly roll-ups (a few rows per user and month), never from the ledger; one
 * statement per distinct `first` in the batch.
 */
export async function favouriteModelsBatch(knex: Knex, keys: readonly FavouriteModelsKey[]): Promise<FavouriteModel[][]> {
  const found = new Map<string, FavouriteModel[]>();
  for (const first of new Set(keys.map((key) => key.first))) {
    const userIds = [...new Set(keys.filter((key) => key.first === first).map((key) => key.userId))];
    const ranked = knex("cost_tracking")
      .select("userId", "model", knex.raw("sum(requests) as requests, sum(cost_usd) as cost_usd"))
      .select(knex.raw("row_number() over (partition by user_id order by sum(requests) desc, sum(cost_usd) desc, model) as rank"))
      .where("period", "month")
      .whereRaw("user_id = any(?::uuid[])", [userIds])
      .groupBy("userId", "model");
    const rows: { userId: string; model: string; requests: string | number; costUsd: string | number }[] = await knex
      .from(ranked.as("ranked"))
      .where("rank", "<=", first)
      .orderBy(["userId", "rank"])
      .select("userId", "model", "requests", "costUsd");
    for (const userId of userIds) found.set(favouriteModelsKey({ userId, first }), []);
    for (const row of rows) {
      found.get(favouriteModelsKey({ userId: row.userId, first }))!.push({ model: row.model, requests: Number(row.requests), costUsd: Number(row.costUsd) });
    }
  }
  return keys.map((key) => found.get(favouriteModelsKey(key))!);
}
