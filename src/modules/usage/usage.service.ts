/**
 * Reading usage: buckets of model calls by period (and user, model, guild). Members see their own calls,
 * services the calls of conversations they may access and those they reported, admins everything.
 *
 * Two sources, one answer: the roll-ups (cost_tracking, hour/day/month rows kept with every ledger insert)
 * answer in a few rows whatever the number of calls; the ledger (ai_requests) itself answers what roll-ups
 * cannot: a conversation, a service's view (which depends on its grants), a range that cuts through a
 * roll-up period, and the p95 latency. The property test checks the two agree.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, ForbiddenError } from "../../graphql/errors";
import { viewerScope } from "../access/access.service";
import { UsageGroupBy, UsagePeriod } from "./usage.enums";
import type { UsageArgs, UsageFilter } from "./usage.input";
import { UsageBucket } from "./usage.types";

/** Most buckets one answer may hold: a wider range or finer period is BAD_USER_INPUT. */
export const MAX_BUCKETS = 5000;
/** Most periods one range may span (about 14 months of hours), checked before anything is read. */
export const MAX_PERIODS = 10_000;
const PERIOD_MS: Record<UsagePeriod, number> = {
  [UsagePeriod.HOUR]: 3_600_000,
  [UsagePeriod.DAY]: 86_400_000,
  [UsagePeriod.WEEK]: 7 * 86_400_000,
  [UsagePeriod.MONTH]: 28 * 86_400_000,
};

/** The roll-up period a usage period is summed from. */
const SOURCE: Record<UsagePeriod, "hour" | "day" | "month"> = {
  [UsagePeriod.HOUR]: "hour",
  [UsagePeriod.DAY]: "day",
  [UsagePeriod.WEEK]: "day",
  [UsagePeriod.MONTH]: "month",
};

/** True when `time` is the start of a `period` (in UTC): a roll-up row is then wholly inside or outside the range. */
function onBoundary(time: Date, period: "hour" | "day" | "month"): boolean {
  const ms = time.getTime();
  if (period === "hour") return ms % 3_600_000 === 0;
  if (period === "day") return ms % 86_400_000 === 0;
  return ms % 86_400_000 === 0 && time.getUTCDate() === 1;
}

interface Plan {
  filter: UsageFilter;
  period: UsagePeriod;
  groups: UsageGroupBy[];
  /** The only user whose calls count: the filter's, or a member's own; undefined: everyone's. */
  userId: string | undefined;
}

function plan(ctx: Actor, args: UsageArgs): Plan {
  const viewer = viewerOf(ctx);
  const { filter, period } = args;
  if (!(filter.to > filter.from)) throw new BadUserInputError("to must be later than from", { field: "to" });
  if ((filter.to.getTime() - filter.from.getTime()) / PERIOD_MS[period] > MAX_PERIODS) {
    throw new BadUserInputError(`The range spans more than ${MAX_PERIODS} ${period} periods: narrow it or take a longer period`, { field: "period" });
  }
  let userId = filter.userId ?? undefined;
  if (viewer.role === Role.MEMBER) {
    if (userId && userId !== viewer.id) throw new ForbiddenError("Members see their own usage only");
    userId = viewer.id;
  }
  return { filter, period, groups: [...new Set(args.groupBy ?? [])], userId };
}

/** The usage buckets the viewer may see, oldest first. */
export async function usage(ctx: Actor, args: UsageArgs): Promise<UsageBucket[]> {
  const planned = plan(ctx, args);
  const knex = ctx.db.knex;
  const { filter, period } = planned;
  const fromRollups =
    !filter.conversationId && viewerOf(ctx).role !== Role.SERVICE && onBoundary(filter.from, SOURCE[period]) && onBoundary(filter.to, SOURCE[period]);
  // A service's view depends on its grants, read first (a builder returned from an async function would run).
  const scope = viewerOf(ctx).role === Role.SERVICE ? await viewerScope(ctx) : undefined;
  const query = fromRollups ? rollupQuery(knex, planned) : ledgerQuery(ctx, planned, scope);
  const rows: Record<string, unknown>[] = await query.limit(MAX_BUCKETS + 1);
  if (rows.length > MAX_BUCKETS) throw new BadUserInputError(`More than ${MAX_BUCKETS} buckets: narrow the range or take a longer period`, { field: "period" });
  return rows.map((row) => bucket(row, planned.groups));
}

const num = (value: unknown): number => (value == null ? 0 : Number(value));
const orNull = (value: unknown): number | null => (value == null ? null : Number(value));

function bucket(row: Record<string, unknown>, groups: UsageGroupBy[]): UsageBucket {
  return Object.assign(new UsageBucket(), {
    periodStart: row.periodStart as Date,
    userId: groups.includes(UsageGroupBy.USER) ? (row.userId as string) : null,
    model: groups.includes(UsageGroupBy.MODEL) ? (row.model as string) : null,
    // The roll-ups keep "no guild" as '' (a key without nulls).
    guildId: groups.includes(UsageGroupBy.GUILD) ? ((row.guildId as string | null) || null) : null,
    requests: num(row.requests),
    errors: num(row.errors),
    unpricedRequests: num(row.unpriced),
    promptTokens: num(row.promptTokens),
    completionTokens: num(row.completionTokens),
    cachedTokens: num(row.cachedTokens),
    costUsd: num(row.costUsd),
    averageLatencyMs: orNull(row.averageLatencyMs),
    p95LatencyMs: orNull(row.p95LatencyMs),
  });
}

/** The bucket's start, then the grouping columns (`groups`: [name in the answer, SQL expression] pairs), as select and group-by/order-by lists. */
function grouped(query: Knex.QueryBuilder, knex: Knex, period: UsagePeriod, time: string, groups: [string, string][]): Knex.QueryBuilder {
  // The period is one of the enum's values, written into the text: a bound parameter in both the select and
  // the group by would be two parameters, which PostgreSQL does not take for the same expression.
  const start = `date_trunc('${period}', ${time}, 'UTC')`;
  query.select({ periodStart: knex.raw(start) }).groupByRaw(start).orderByRaw(start);
  for (const [name, expression] of groups) query.select(knex.raw(`${expression} as ${name}`)).groupByRaw(expression).orderByRaw(expression);
  return query;
}

/** The user, model and guild filters, on the columns of both sources (`prefix`: the ledger's alias). */
function narrowed(query: Knex.QueryBuilder, prefix: string, userId: string | undefined, filter: UsageFilter): void {
  if (userId) query.where(`${prefix}userId`, userId);
  if (filter.model) query.where(`${prefix}model`, filter.model);
  if (filter.guildId) query.where(`${prefix}guildId`, filter.guildId);
}

function rollupQuery(knex: Knex, { filter, period, groups, userId }: Plan): Knex.QueryBuilder {
  const query = knex("cost_tracking")
    .where("period", SOURCE[period])
    .where("periodStart", ">=", filter.from)
    .where("periodStart", "<", filter.to)
    .select(
      knex.raw("sum(requests) as requests, sum(errors) as errors, sum(unpriced) as unpriced"),
      knex.raw("sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens, sum(cached_tokens) as cached_tokens"),
      knex.raw("sum(cost_usd) as cost_usd, sum(latency_ms_sum)::numeric / nullif(sum(latency_count), 0) as average_latency_ms"),
      knex.raw("null::numeric as p95_latency_ms"),
    );
  narrowed(query, "", userId, filter);
  return grouped(query, knex, period, "period_start", groups.map((column) => [column, column]));
}

function ledgerQuery(ctx: Actor, { filter, period, groups, userId }: Plan, scope: ((query: Knex.QueryBuilder) => void) | undefined): Knex.QueryBuilder {
  const knex = ctx.db.knex;
  const viewer = viewerOf(ctx);
  const query = knex("ai_requests as r")
    .where("r.occurredAt", ">=", filter.from)
    .where("r.occurredAt", "<", filter.to)
    .whereNotNull("r.userId")
    .select(
      knex.raw("count(*) as requests, count(*) filter (where r.status <> 'success') as errors, count(*) filter (where r.cost_usd is null) as unpriced"),
      knex.raw("sum(r.prompt_tokens) as prompt_tokens, sum(r.completion_tokens) as completion_tokens, sum(r.cached_tokens) as cached_tokens"),
      knex.raw("coalesce(sum(r.cost_usd), 0) as cost_usd, avg(r.latency_ms) as average_latency_ms"),
      knex.raw("percentile_cont(0.95) within group (order by r.latency_ms) as p95_latency_ms"),
    );
  narrowed(query, "r.", userId, filter);
  if (filter.conversationId) query.where("r.conversationId", filter.conversationId);
  if (scope) {
    // A service: the calls of conversations it may access, and those it reported itself.
    query
      .leftJoin("conversations", "conversations.id", "r.conversationId")
      .where((q) => q.where("r.reportedBy", viewer.id).orWhere((inScope) => inScope.whereNotNull("conversations.id").modify(scope)));
  }
  // Guild as the roll-ups keep it ('' for none), so that both sources sort alike.
  const expression = (column: UsageGroupBy) => (column === UsageGroupBy.GUILD ? "coalesce(r.guild_id, '')" : `r.${column}`);
  return grouped(query, knex, period, "r.occurred_at", groups.map((column) => [column, expression(column)]));
}
