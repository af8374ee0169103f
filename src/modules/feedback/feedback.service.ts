/**
 * Feedback on messages. A user rates an ASSISTANT or TOOL message they can read (the rule of reading it:
 * getMessage), once: rating again replaces the row (the same values again change nothing), retracting deletes
 * it, and each change writes the audit log (feedback.rate / feedback.retract, with before and after) in the same transaction, so the log is the
 * history. Services rate for Discord members (the adapter's 👍/👎 buttons) under the rule of writing as them
 * (assertMayActForUser).
 *
 * Who sees what: a user sees their own feedback (Message.myFeedback); summaries of everyone's feedback on a
 * message are for services and admins; statistics across messages are for admins, and for services granted
 * DISCORD over Discord guilds' conversations.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkDiscordId, checkText } from "../../graphql/json-input";
import { assertMayActForUser } from "../access/access.service";
import { audit } from "../audit/audit.service";
import { getMessage } from "../message/message.service";
import type { Message } from "../message/message.model";
import { MessageRole } from "../message/message.enums";
import { mayUseGuilds } from "../knowledge/scope";
import { CUSTOM_TAG_PREFIX, FEEDBACK_TAGS, Feedback, FeedbackBucket, FeedbackGroupBy, FeedbackSummary } from "./feedback.types";
import type { FeedbackStatsArgs, RateMessageInput } from "./feedback.input";

export const MAX_COMMENT_LENGTH = 2000;
export const MAX_TAGS = 20;
export const MAX_TAG_LENGTH = 50;
/** Most buckets one feedbackStats answer may hold: a finer split is BAD_USER_INPUT. */
export const MAX_BUCKETS = 5000;

const RATEABLE = new Set<string>([MessageRole.ASSISTANT, MessageRole.TOOL]);
const FIXED = new Set<string>(FEEDBACK_TAGS);

/**
 * The tags as stored: fixed tags in upper case, free tags as `custom:` plus their text in lower case (so that
 * "Slow" and "slow" count as one), duplicates dropped; anything else is BAD_USER_INPUT naming the tag.
 */
export function normalizeTags(tags: readonly string[]): string[] {
  const result: string[] = [];
  for (const given of tags) {
    const trimmed = given.trim();
    let tag: string;
    if (trimmed.toLowerCase().startsWith(CUSTOM_TAG_PREFIX)) {
      const text = trimmed.slice(CUSTOM_TAG_PREFIX.length).trim().toLowerCase();
      tag = `${CUSTOM_TAG_PREFIX}${text}`;
      // eslint-disable-next-line no-control-regex
      if (text === "" || [...tag].length > MAX_TAG_LENGTH || /[\u0000-\u001f\u007f]/.test(text)) {
        throw new BadUserInputError(`A free tag is ${CUSTOM_TAG_PREFIX}<text>, 1 to ${MAX_TAG_LENGTH} characters in all, without control characters`, {
          field: "tags",
          tag: given,
        });
      }
    } else {
      tag = trimmed.toUpperCase();
      if (!FIXED.has(tag)) {
        throw new BadUserInputError(`Unknown tag "${given.slice(0, 60)}": use one of ${FEEDBACK_TAGS.join(", ")}, or a free tag ${CUSTOM_TAG_PREFIX}<text>`, {
          field: "tags",
          tag: given.slice(0, 60),
        });
      }
    }
    if (!result.includes(tag)) result.push(tag);
  }
  if (result.length > MAX_TAGS) throw new BadUserInputError(`At most ${MAX_TAGS} tags`, { field: "tags", maxTags: MAX_TAGS });
  return result;
}

/** The input's values as stored, or BAD_USER_INPUT; checked before anything is read. */
function checkedValues(input: RateMessageInput) {
  const rating = input.rating ?? null;
  const score = input.score ?? null;
  if (rating === null && score === null) throw new BadUserInputError("Give a rating, a score, or both", { field: "rating" });
  if (score !== null && !(Number.isInteger(score) && score >= 1 && score <= 5)) {
    throw new BadUserInputError("score must be 1 to 5", { field: "score", min: 1, max: 5 });
  }
  const comment = input.comment?.trim() || null; // a blank comment is no comment
  if (comment !== null) {
    checkText(comment, "comment");
    if ([...comment].length > MAX_COMMENT_LENGTH) {
      throw new BadUserInputError(`comment must be at most ${MAX_COMMENT_LENGTH} characters`, { field: "comment", maxLength: MAX_COMMENT_LENGTH });
    }
  }
  return { rating, score, comment, tags: normalizeTags(input.tags ?? []) };
}

/**
 * Whose feedback: the viewer's, or with `userId` another user's, which needs the right to write as that user in
 * the message's conversation (admins; a service granted the conversation's origin, for DISCORD only members
 * known by their Discord id).
 */
async function raterOf(ctx: Actor, message: Message, userId: string | null | undefined): Promise<string> {
  const viewer = viewerOf(ctx);
  if (!userId || userId === viewer.id) return viewer.id;
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Only services and admins can rate for another user");
  const conversation = (await ctx.loaders.conversationById.load(message.conversationId))!;
  const user = await ctx.loaders.userById.load(userId);
  if (!user || !user.isActive) throw new NotFoundError("User");
  await assertMayActForUser(ctx, conversation.origin, user);
  return user.id;
}

function sameValues(row: Feedback, values: ReturnType<typeof checkedValues>): boolean {
  return (
    row.rating === values.rating &&
    row.score === values.score &&
    row.comment === values.comment &&
    row.tags.length === values.tags.length &&
    row.tags.every((tag, index) => tag === values.tags[index])
  );
}

/** A row as the audit log keeps it. */
const snapshot = (row: Feedback | undefined) =>
  row ? { rating: row.rating, score: row.score, comment: row.comment, tags: row.tags, updatedAt: row.updatedAt } : null;

/**
 * Serialises the changes of one user's feedback on one message for the rest of the transaction, so the `before`
 * the audit log records is what the change replaced even when two ratings race (the first one has no row to lock).
 */
async function lockFeedback(trx: Knex.Transaction, messageId: string, userId: string): Promise<Feedback | undefined> {
  await trx.raw("select pg_advisory_xact_lock(hashtextextended(?, 0))", [`feedback:${messageId}:${userId}`]);
  return Feedback.query(trx).where({ messageId, userId }).first();
}

function forgetCached(ctx: Actor, messageId: string, userId: string): void {
  ctx.loaders.feedbackByMessageAndUser.clear({ messageId, userId });
  ctx.loaders.feedbackSummaryByMessageId.clear(messageId);
}

/** Rates a message (or replaces the rater's earlier feedback on it). */
export async function rateMessage(ctx: Actor, input: RateMessageInput): Promise<Feedback> {
  const values = checkedValues(input);
  const message = await getMessage(ctx, input.messageId); // NOT_FOUND unless the viewer can read it
  if (!RATEABLE.has(message.role)) {
    throw new BadUserInputError("Only ASSISTANT and TOOL messages can be rated", { field: "messageId", role: message.role.toUpperCase() });
  }
  const userId = await raterOf(ctx, message, input.userId);
  // Everything the checks needed was loaded above: on PGlite's one connection, a read outside the transaction would wait for it.
  const feedback = await ctx.db.knex.transaction(async (trx) => {
    const before = await lockFeedback(trx, message.id, userId);
    // The same feedback again changes nothing and logs nothing: a repeated click (or a retried request) is harmless.
    if (before && sameValues(before, values)) return before;
    const row = { messageId: message.id, conversationId: message.conversationId, userId, ...values, tags: trx.raw("?::text[]", [values.tags]) };
    const [saved] = await trx("feedback")
      .insert(row)
      .onConflict(["messageId", "userId"])
      .merge(["rating", "score", "comment", "tags"])
      .returning("*");
    const after = Feedback.fromDatabaseJson(saved);
    await audit(ctx, { action: "feedback.rate", targetType: "message", targetId: message.id, details: { userId, before: snapshot(before), after: snapshot(after) } }, trx);
    return after;
  });
  forgetCached(ctx, message.id, userId);
  return feedback;
}

/** Deletes the rater's feedback on a message: true when there was some. */
export async function retractFeedback(ctx: Actor, messageId: string, userId?: string | null): Promise<boolean> {
  const message = await getMessage(ctx, messageId);
  const rater = await raterOf(ctx, message, userId);
  const removed = await ctx.db.knex.transaction(async (trx) => {
    const before = await lockFeedback(trx, message.id, rater);
    if (!before) return false;
    // returning: inside a transaction knex-pglite answers a bare delete with the driver's result, not a count.
    await trx("feedback").where({ id: before.id }).delete().returning("id");
    await audit(ctx, { action: "feedback.retract", targetType: "message", targetId: message.id, details: { userId: rater, before: snapshot(before), after: null } }, trx);
    return true;
  });
  forgetCached(ctx, message.id, rater);
  return removed;
}

/** The viewer's own feedback on a message the viewer was handed (so may read). */
export async function myFeedback(ctx: Actor, message: Message): Promise<Feedback | null> {
  const viewer = viewerOf(ctx);
  return (await ctx.loaders.feedbackByMessageAndUser.load({ messageId: message.id, userId: viewer.id })) ?? null;
}

/**
 * Everyone's feedback on a message, for services and admins. A member gets null, not FORBIDDEN: the field sits
 * on every message of a history page, and one error per message would bury the page; what others thought of an
 * answer is the operators' to read, and a member's own opinion is myFeedback.
 */
export async function feedbackSummary(ctx: Actor, message: Message): Promise<FeedbackSummary | null> {
  if (viewerOf(ctx).role === Role.MEMBER) return null;
  return ctx.loaders.feedbackSummaryByMessageId.load(message.id);
}

const PERIODS = [FeedbackGroupBy.DAY, FeedbackGroupBy.WEEK, FeedbackGroupBy.MONTH];

/** Grouping columns: [name in the answer, SQL expression]; the period's is written into the text (it is one of the enum's values). */
const GROUP_EXPRESSIONS: Record<FeedbackGroupBy, (group: FeedbackGroupBy) => [string, string]> = {
  [FeedbackGroupBy.MODEL]: () => ["model", "m.model"],
  [FeedbackGroupBy.ASSISTANT]: () => ["assistant_id", "av.assistant_id"],
  [FeedbackGroupBy.GUILD]: () => ["guild_id", "c.discord_guild_id"],
  [FeedbackGroupBy.DAY]: (period) => ["period_start", `date_trunc('${period}', f.created_at, 'UTC')`],
  [FeedbackGroupBy.WEEK]: (period) => ["period_start", `date_trunc('${period}', f.created_at, 'UTC')`],
  [FeedbackGroupBy.MONTH]: (period) => ["period_start", `date_trunc('${period}', f.created_at, 'UTC')`],
};

/**
 * Feedback counted by the groups asked for, in the order of the groups. A row counts by when it was first given
 * (created_at; re-rating changes the values, not the time). Model is the rated message's; assistant is the
 * assistant whose version wrote it; guild is its conversation's Discord guild.
 */
export async function feedbackStats(ctx: Actor, args: FeedbackStatsArgs): Promise<FeedbackBucket[]> {
  const viewer = viewerOf(ctx);
  const { filter } = args;
  const groups = [...new Set(args.groupBy ?? [])];
  if (!(filter.to > filter.from)) throw new BadUserInputError("to must be later than from", { field: "filter.to" });
  if (groups.filter((group) => PERIODS.includes(group)).length > 1) {
    throw new BadUserInputError("Group by at most one of DAY, WEEK and MONTH", { field: "groupBy" });
  }
  if (filter.guildId != null) checkDiscordId(filter.guildId, "filter.guildId");
  if (filter.model != null) checkText(filter.model, "filter.model");
  let guildsOnly = false;
  if (viewer.role !== Role.ADMIN) {
    if (!(await mayUseGuilds(ctx))) throw new ForbiddenError("Feedback statistics are for admins, and for services granted the DISCORD origin");
    guildsOnly = true; // a DISCORD service: the feedback given in Discord guilds' conversations
  }

  const knex = ctx.db.knex;
  const query = knex("feedback as f")
    .join("messages as m", "m.id", "f.message_id")
    .join("conversations as c", "c.id", "f.conversation_id")
    .leftJoin("assistant_versions as av", "av.id", "m.assistant_version_id")
    .where("f.created_at", ">=", filter.from)
    .where("f.created_at", "<", filter.to)
    .select(
      knex.raw("count(*) filter (where f.rating = 'up') as up, count(*) filter (where f.rating = 'down') as down, count(*) as ratings"),
      knex.raw("avg(f.score)::float8 as average_score"),
    );
  if (guildsOnly) query.whereNotNull("c.discord_guild_id");
  if (filter.model) query.where("m.model", filter.model);
  if (filter.assistantId) query.where("av.assistant_id", filter.assistantId);
  if (filter.guildId) query.where("c.discord_guild_id", filter.guildId);
  for (const group of groups) {
    const [name, expression] = GROUP_EXPRESSIONS[group](group);
    query.select(knex.raw(`${expression} as ${name}`)).groupByRaw(expression).orderByRaw(`${expression} nulls first`);
  }
  const rows: Record<string, unknown>[] = await query.limit(MAX_BUCKETS + 1);
  if (rows.length > MAX_BUCKETS) throw new BadUserInputError(`More than ${MAX_BUCKETS} buckets: narrow the range or group by less`, { field: "groupBy" });
  return rows
    .filter((row) => groups.length > 0 || Number(row.ratings) > 0) // without groups, an empty range is no bucket
    .map((row) => {
      const up = Number(row.up);
      const down = Number(row.down);
      return Object.assign(new FeedbackBucket(), {
        periodStart: (row.periodStart as Date | undefined) ?? null,
        model: (row.model as string | undefined) ?? null,
        assistantId: (row.assistantId as string | undefined) ?? null,
        guildId: (row.guildId as string | undefined) ?? null,
        up,
        down,
        ratings: Number(row.ratings),
        upShare: up + down > 0 ? up / (up + down) : null,
        averageScore: row.averageScore == null ? null : Number(row.averageScore),
      });
    });
}
