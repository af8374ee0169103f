/**
 * Budgets in SQL, for the statements that write: the ledger keeps each matching budget's spend of its current
 * period (and raises an alert per threshold crossed), and a write that a HARD budget refuses finds the budget
 * by a join in its own statement. A budget's period starts at midnight (or Monday, or the 1st) in its time
 * zone: date_trunc with the zone, so daylight-saving days are 23 or 25 hours long, as a person there counts.
 */

/** The date_trunc unit of a budget's period (`budget` is the alias of a user_budgets row). */
export const periodUnit = (budget: string) => `case ${budget}.period when 'daily' then 'day' when 'weekly' then 'week' else 'month' end`;

/** The start of the period that contains `time` (a timestamptz expression), in the budget's zone. */
export const periodStartAt = (budget: string, time: string) => `date_trunc(${periodUnit(budget)}, ${time}, ${budget}.time_zone)`;

/** When the budget's current period ends: its start plus one period, counted in local time. */
export const periodEnd = (budget: string) =>
  `((${periodStartAt(budget, "now()")} at time zone ${budget}.time_zone) + ` +
  `case ${budget}.period when 'daily' then interval '1 day' when 'weekly' then interval '1 week' else interval '1 month' end) at time zone ${budget}.time_zone`;

/** True for a HARD budget whose limit is spent in the current period. */
export const exhausted = (budget: string) =>
  `${budget}.enforcement = 'hard' and ${budget}.spent_usd >= ${budget}.limit_usd and ${budget}.period_start = ${periodStartAt(budget, "now()")}`;

/**
 * A NOT EXISTS condition for an UPDATE of `conversations`: no exhausted HARD budget of the conversation's owner,
 * nor of its Discord guild. Two probes, one per partial unique index.
 */
export const noExhaustedBudget = `not exists (select 1 from user_budgets b where b.user_id = conversations.owner_id and ${exhausted("b")})
  and (conversations.discord_guild_id is null or not exists (select 1 from user_budgets g where g.guild_id = conversations.discord_guild_id and ${exhausted("g")}))`;

/**
 * The ledger's budget CTEs, after ledger_row: every budget of the row's user or guild adds the cost to its
 * current period (a row of a newer period starts it afresh; one of an older period is not this period's), under
 * the budget's row lock, so concurrent writers add up one after the other; and each threshold the spend crossed
 * raises one alert (its dedupe key names budget, period and threshold). `notify` is the NOTIFY expression for an
 * inserted alert row named `a`: in RETURNING, which a data-modifying CTE computes whether or not anyone reads it
 * (a SELECT CTE that nobody reads would not run).
 */
export function budgetCtes(notify: (row: string) => string): [string, string][] {
  return [
    [
      "ledger_budget",
      `update user_budgets b set
          spent_usd = case when b.period_start = ${periodStartAt("b", "r.occurred_at")} then b.spent_usd + r.cost_usd else r.cost_usd end,
          period_start = ${periodStartAt("b", "r.occurred_at")}
        from ledger_row r
        where r.cost_usd > 0
          and (b.user_id = r.user_id or b.guild_id = r.guild_id)
          and (b.period_start is null or ${periodStartAt("b", "r.occurred_at")} >= b.period_start)
        returning b.id, b.user_id, b.guild_id, b.period, b.limit_usd, b.thresholds, b.period_start, b.spent_usd, b.spent_usd - r.cost_usd as before_usd`,
    ],
    [
      "ledger_alerts",
      `insert into system_alerts as a (source, severity, message, details, user_id, budget_id, dedupe_key)
        select 'budget',
          case when t.threshold >= 100 then 'critical' when t.threshold >= 80 then 'warning' else 'info' end,
          format('%s%% of the %s budget of %s USD spent (%s USD)', t.threshold, x.period, x.limit_usd::float8, round(x.spent_usd, 6)::float8),
          jsonb_build_object('threshold', t.threshold, 'limitUsd', x.limit_usd, 'spentUsd', x.spent_usd, 'period', x.period,
            'periodStart', x.period_start, 'guildId', x.guild_id),
          x.user_id, x.id,
          'budget:' || x.id || ':' || to_char(x.period_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || ':' || t.threshold
        from ledger_budget x cross join unnest(x.thresholds) as t(threshold)
        where x.before_usd * 100 < t.threshold * x.limit_usd and x.spent_usd * 100 >= t.threshold * x.limit_usd
        on conflict (dedupe_key) do nothing
        returning a.id, a.user_id, ${notify("a")} as notified`,
    ],
  ];
}
