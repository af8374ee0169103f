/**
 * Demo feedback: a few ratings of the demo's assistant and tool messages, so Message.myFeedback,
 * Message.feedbackSummary and feedbackStats have something to show in the Sandbox. Called by seeds/01_demo.ts
 * inside its transaction, after the messages exist; the rows go with their users when the demo is seeded again.
 * Messages are found by conversation and seq (the demo's fixed ids and order), not by id, which the database makes.
 */
import type { Knex } from "knex";

/** Who rates what: [conversation key, seq, rater key, rating, score, tags, comment]. */
const RATINGS: [string, number, string, "up" | "down" | null, number | null, string[], string | null][] = [
  ["trip", 5, "alice", "up", 5, ["HELPFUL", "ACCURATE"], "Exactly what I needed to decide."],
  ["trip", 5, "ada", "up", 4, ["CLEAR"], null],
  ["trip", 4, "ada", null, 3, ["custom:raw json"], "Fine for a tool result, hard to read."],
  ["discord", 2, "bob", "down", 2, ["INCOMPLETE", "custom:no links"], "Which bug fixes? A link to the notes would help."],
];

export async function seedFeedback(trx: Knex.Transaction, ids: Record<string, string>): Promise<void> {
  for (const [conversation, seq, rater, rating, score, tags, comment] of RATINGS) {
    const message = await trx("messages").where({ conversationId: ids[conversation], seq }).first("id", "conversationId", "role", "createdAt");
    if (!message) throw new Error(`the demo has no message ${seq} in ${conversation}`);
    // Given a minute after the answer: feedbackStats buckets by when feedback was given.
    const at = new Date(new Date(message.createdAt).getTime() + 60_000);
    await trx("feedback").insert({
      messageId: message.id,
      conversationId: message.conversationId,
      userId: ids[rater],
      rating,
      score,
      comment,
      tags: trx.raw("?::text[]", [tags]),
      createdAt: at,
      updatedAt: at,
    });
  }
}
