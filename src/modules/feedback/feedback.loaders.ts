/**
 * Batch functions of the feedback loaders (modules/loaders.ts): one statement for a whole page of messages.
 * Ids travel as arrays, not IN lists, so the statement's text is the same for any page size (db/prepared.ts).
 */
import type { Knex } from "knex";
import { Feedback, FeedbackSummary, FeedbackTagCount } from "./feedback.types";

/** One user's feedback on one message. */
export interface FeedbackKey {
  messageId: string;
  userId: string;
}

export const feedbackKey = (key: FeedbackKey): string => `${key.messageId}:${key.userId}`;

/** Each key's feedback (undefined: none), aligned to the keys. */
export async function feedbackByMessageAndUser(knex: Knex, keys: readonly FeedbackKey[]): Promise<(Feedback | undefined)[]> {
  const rows = await Feedback.query(knex).whereRaw("(message_id, user_id) in (select * from unnest(?::uuid[], ?::uuid[]))", [
    keys.map((key) => key.messageId),
    keys.map((key) => key.userId),
  ]);
  const byKey = new Map(rows.map((row) => [feedbackKey(row), row]));
  return keys.map((key) => byKey.get(feedbackKey(key)));
}

/** An empty summary: a message nobody rated. */
const none = (): FeedbackSummary => Object.assign(new FeedbackSummary(), { up: 0, down: 0, ratings: 0, averageScore: null, tags: [] });

/** Each message's summary of everyone's feedback, aligned to the ids; the tag counts come in the same statement. */
export async function feedbackSummariesByMessageId(knex: Knex, messageIds: readonly string[]): Promise<FeedbackSummary[]> {
  const rows: { messageId: string; up: unknown; down: unknown; ratings: unknown; averageScore: unknown; tags: unknown }[] = await knex("feedback as f")
    .whereRaw("f.message_id = any(?::uuid[])", [messageIds as string[]])
    .groupBy("f.message_id")
    .select(
      "f.message_id",
      knex.raw("count(*) filter (where f.rating = 'up') as up, count(*) filter (where f.rating = 'down') as down, count(*) as ratings"),
      knex.raw("avg(f.score)::float8 as average_score"),
      // Text, not json: both drivers then hand back the same thing, parsed below.
      knex.raw(`(select coalesce(json_agg(json_build_object('tag', t.tag, 'count', t.n) order by t.n desc, t.tag), '[]')::text
        from (select tag, count(*) as n from feedback g, unnest(g.tags) as tag where g.message_id = f.message_id group by tag) t) as tags`),
    );
  const byId = new Map(
    rows.map((row) => [
      row.messageId,
      Object.assign(new FeedbackSummary(), {
        up: Number(row.up),
        down: Number(row.down),
        ratings: Number(row.ratings),
        averageScore: row.averageScore == null ? null : Number(row.averageScore),
        tags: (JSON.parse(String(row.tags)) as { tag: string; count: number }[]).map((tag) => Object.assign(new FeedbackTagCount(), tag)),
      }),
    ]),
  );
  return messageIds.map((id) => byId.get(id) ?? none());
}
