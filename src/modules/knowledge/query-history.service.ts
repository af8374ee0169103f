/**
 * The query history: every question a RAG bot answered, recorded by the bot (recordQuery) with how it was
 * answered (sources, model, response time, tokens, whether the answer cache served it), and read back as a
 * list (queryHistory) or as the monitoring figures of seed 003 (knowledgeStats).
 *
 * Who sees which records (visibleHistory): admins all; a service its own (recorded by it, or asked by it) and,
 * when granted the DISCORD origin, every record asked in a Discord guild; a member the questions they asked.
 * Recording follows the same lines: members record their own questions, and only admins and services granted
 * DISCORD record questions asked in a guild or for other users.
 */
import type { Knex } from "knex";
import type { QueryBuilder } from "objection";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkDiscordId, checkText, trimmedText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { assertMayActForUser, canAccessConversation } from "../access/access.service";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { assertScopeAccess, ensureKnowledgeBase, findKnowledgeBase, KnowledgeScopeKind, mayUseGuilds, readableBases, scopeOf, type Scope } from "./scope";
import { MAX_ANSWER_LENGTH, MAX_QUESTION_LENGTH } from "./answer-cache.service";
import { KnowledgeStats, KnowledgeTopUser, QueryRecord, type QuerySource } from "./query-history.types";
import type { KnowledgeStatsArgs, QueryHistoryArgs, QueryHistoryFilter, QuerySourceInput, RecordQueryInput } from "./query-history.input";

export const MAX_QUERY_SOURCES = 100;
/** How many users topUsers lists. */
export const TOP_USERS = 10;

type HistoryQuery = QueryBuilder<QueryRecord, QueryRecord[]>;
type HistoryModifier = (query: HistoryQuery) => void;

/** The scope a record was asked of, read with it (no loader: one small subquery per row of a page). */
const SCOPE_COLUMN = "(select kb.scope from knowledge_bases kb where kb.id = query_history.knowledge_base_id) as scope";

function checkedSources(sources: readonly QuerySourceInput[]): QuerySource[] {
  if (sources.length > MAX_QUERY_SOURCES) throw new BadUserInputError(`At most ${MAX_QUERY_SOURCES} sources`, { field: "sources" });
  return sources.map((source) => {
    if (!source.documentId && !source.chunkId) throw new BadUserInputError("A source names its documentId, its chunkId or both", { field: "sources" });
    if (source.score != null && !Number.isFinite(source.score)) throw new BadUserInputError("A source's score is a finite number", { field: "sources" });
    return { documentId: source.documentId ?? null, chunkId: source.chunkId ?? null, score: source.score ?? null };
  });
}

function count(value: number | null | undefined, field: string): number | null {
  if (value == null) return null;
  if (!Number.isInteger(value) || value < 0) throw new BadUserInputError(`${field} must be 0 or more`, { field });
  return value;
}

/** May the viewer record a question asked by `userId`, someone else? Admins for anyone; services for Discord members. */
async function assertMayRecordFor(ctx: Actor, userId: string): Promise<void> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Members record their own questions only");
  const user = await ctx.loaders.userById.load(userId);
  if (!user) throw new NotFoundError("User");
  if (viewer.role === Role.SERVICE) await assertMayActForUser(ctx, ConversationOrigin.DISCORD, user);
}

/** Records a question that was asked, and how it was answered. */
export async function recordQuery(ctx: Actor, input: RecordQueryInput): Promise<QueryRecord> {
  const viewer = viewerOf(ctx);
  const scope = input.scope ? scopeOf(viewer, input.scope) : undefined;
  const question = trimmedText(input.question, "question", MAX_QUESTION_LENGTH);
  const answer = input.answer ?? null;
  if (answer != null) {
    if ([...answer].length > MAX_ANSWER_LENGTH) throw new BadUserInputError(`answer must be at most ${MAX_ANSWER_LENGTH} characters`, { field: "answer" });
    checkText(answer, "answer");
  }
  const model = input.model == null ? null : trimmedText(input.model, "model", 200);
  const sources = checkedSources(input.sources ?? []);
  if (input.guildId != null) checkDiscordId(input.guildId, "guildId");
  if (input.channelId != null) checkDiscordId(input.channelId, "channelId");
  if (scope?.kind === KnowledgeScopeKind.GUILD && input.guildId != null && input.guildId !== scope.guildId) {
    throw new BadUserInputError("guildId differs from the GUILD scope's", { field: "guildId" });
  }
  const guildId = input.guildId ?? scope?.guildId ?? null;
  const values = {
    responseTimeMs: count(input.responseTimeMs, "responseTimeMs"),
    promptTokens: count(input.promptTokens, "promptTokens"),
    completionTokens: count(input.completionTokens, "completionTokens"),
  };
  // Read, not write: a bot answering from global knowledge records the question without being able to change that knowledge.
  if (scope) await assertScopeAccess(ctx, scope, "read");
  // A record in a guild is seen by the guild's services and counts in its figures: members cannot put one there.
  if ((guildId || input.channelId) && !(await mayUseGuilds(ctx))) {
    throw new ForbiddenError("Questions asked in Discord are recorded by admins and services granted the DISCORD origin");
  }
  const userId = input.userId ?? viewer.id;
  if (userId !== viewer.id) await assertMayRecordFor(ctx, userId);
  if (input.conversationId) {
    const conversation = await ctx.loaders.conversationById.load(input.conversationId);
    if (!conversation || !(await canAccessConversation(ctx, conversation))) throw new NotFoundError("Conversation");
  }
  const knex = ctx.db.knex;
  // A history of a scope with no documents yet still needs its base, so that stats of that scope find it.
  const base = scope ? await ensureKnowledgeBase(knex, scope) : undefined;
  const [row] = await knex("query_history")
    .insert({
      knowledgeBaseId: base?.id ?? null,
      guildId,
      channelId: input.channelId ?? null,
      conversationId: input.conversationId ?? null,
      userId,
      recordedBy: viewer.id,
      question,
      answer,
      sources: JSON.stringify(sources),
      model,
      ...values,
      cacheHit: input.cacheHit ?? false,
    })
    .returning("*");
  return QueryRecord.fromDatabaseJson({ ...row, scope: scope?.kind ?? null });
}

/** The records the viewer may see, as a WHERE (built before any statement that uses it: it may load grants). */
async function visibleHistory(ctx: Actor): Promise<HistoryModifier> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.ADMIN) return () => undefined;
  const service = viewer.role === Role.SERVICE;
  const guilds = service && (await mayUseGuilds(ctx));
  return (query) =>
    void query.where((q) => {
      q.where("query_history.userId", viewer.id);
      if (service) q.orWhere("query_history.recordedBy", viewer.id);
      if (guilds) q.orWhereNotNull("query_history.guildId");
    });
}

/** Records asked of the scope's knowledge base; none when the scope never had one. */
function ofBase(base: { id: string } | undefined): HistoryModifier {
  return (query) => {
    if (base) query.where("query_history.knowledgeBaseId", base.id);
    else query.whereRaw("false");
  };
}

/** The filter's conditions, checked (a scope the viewer may read; members: their own userId only). */
async function narrowed(ctx: Actor, filter: QueryHistoryFilter): Promise<HistoryModifier> {
  const viewer = viewerOf(ctx);
  const { guildId, userId, conversationId, from, to, cacheHit } = filter;
  if (guildId != null) checkDiscordId(guildId, "filter.guildId");
  if (userId && userId !== viewer.id && viewer.role === Role.MEMBER) throw new ForbiddenError("Members see their own questions only");
  if (from && to && !(to > from)) throw new BadUserInputError("to must be later than from", { field: "filter.to" });
  let scoped: HistoryModifier = () => undefined;
  if (filter.scope) {
    const scope: Scope = scopeOf(viewer, filter.scope);
    await assertScopeAccess(ctx, scope, "read");
    scoped = ofBase(await findKnowledgeBase(ctx.db.knex, scope));
  }
  return (query) => {
    scoped(query);
    if (guildId != null) query.where("query_history.guildId", guildId);
    if (userId) query.where("query_history.userId", userId);
    if (conversationId) query.where("query_history.conversationId", conversationId);
    if (from) query.where("query_history.createdAt", ">=", from);
    if (to) query.where("query_history.createdAt", "<", to);
    if (cacheHit != null) query.where("query_history.cacheHit", cacheHit);
  };
}

/** Recorded questions the viewer may see, newest first. */
export async function queryHistory(ctx: Actor, args: QueryHistoryArgs): Promise<ConnectionShape<QueryRecord>> {
  const page = pageRequest(args, ctx.config);
  const filter = await narrowed(ctx, args.filter ?? {});
  const visible = await visibleHistory(ctx);
  const knex = ctx.db.knex;
  const filtered = () => QueryRecord.query(knex).select("query_history.*", knex.raw(SCOPE_COLUMN)).modify(visible).modify(filter);
  return newestFirstPage(filtered, page, "createdAt", "created_at");
}

/**
 * Seed 003's monitoring figures over the records queryHistory would list for the scope in [from, to) (default:
 * the 24 hours before now, by the database's clock), and the scope's live cache entries (without a scope:
 * those of every knowledge base the viewer may read). The figures come from one statement.
 */
export async function knowledgeStats(ctx: Actor, args: KnowledgeStatsArgs): Promise<KnowledgeStats> {
  const viewer = viewerOf(ctx);
  const from = args.from ?? null;
  const to = args.to ?? null;
  if (from && to && !(to > from)) throw new BadUserInputError("to must be later than from", { field: "to" });
  const scope = args.scope ? scopeOf(viewer, args.scope) : undefined;
  if (scope) await assertScopeAccess(ctx, scope, "read");
  const knex = ctx.db.knex;
  const base = scope ? await findKnowledgeBase(knex, scope) : undefined;
  const visible = await visibleHistory(ctx);
  const readable = scope ? undefined : await readableBases(ctx, "kb");

  const history = QueryRecord.query(knex)
    .select("query_history.userId", "query_history.responseTimeMs", "query_history.cacheHit")
    .whereRaw("query_history.created_at >= (select from_at from win) and query_history.created_at < (select to_at from win)")
    .modify(visible);
  if (scope) history.modify(ofBase(base));
  const cache: Knex.QueryBuilder = knex("query_cache as c")
    .where("c.expiresAt", ">", knex.fn.now())
    .select(knex.raw(`count(*)::int as "cachedAnswers", (count(*) filter (where c.hit_count > 0))::int as "cacheEntriesHit"`));
  if (!scope) cache.join("knowledge_bases as kb", "kb.id", "c.knowledge_base_id").modify(readable!);
  else if (base) cache.where("c.knowledgeBaseId", base.id);
  else cache.whereRaw("false"); // nothing was ever stored in the scope

  const [row] = await knex
    .with("win_to", knex.raw("select coalesce(?::timestamptz, now()) as to_at", [to]))
    .with("win", knex.raw("select coalesce(?::timestamptz, to_at - interval '24 hours') as from_at, to_at from win_to", [from]))
    .with("h", history.toKnexQuery())
    .with("top", knex.raw(`select user_id, count(*)::int as queries from h where user_id is not null group by user_id order by count(*) desc, user_id limit ${TOP_USERS}`))
    .with("cache", cache)
    .select(
      knex.raw(`win.from_at as "from", win.to_at as "to", totals.*, cache.*,
        (select coalesce(json_agg(json_build_object('userId', top.user_id, 'queries', top.queries) order by top.queries desc, top.user_id), '[]'::json) from top) as "topUsers"`),
    )
    .from(
      knex.raw(`win, cache, (select count(*)::int as queries, count(distinct user_id)::int as "activeUsers",
        avg(case when cache_hit then 1.0 else 0.0 end)::float8 as "cacheHitRate", avg(response_time_ms)::float8 as "averageResponseTimeMs",
        (percentile_cont(0.95) within group (order by response_time_ms))::float8 as "p95ResponseTimeMs" from h) totals`),
    );
  const { topUsers, ...figures } = row as Record<string, unknown> & { topUsers: { userId: string; queries: number }[] };
  return Object.assign(new KnowledgeStats(), figures, { topUsers: topUsers.map((top) => Object.assign(new KnowledgeTopUser(), top)) });
}
