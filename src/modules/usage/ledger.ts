/**
 * The ledger write, as SQL that a caller runs on its own or inside a larger statement: addMessage keeps its one
 * statement (bump, insert, NOTIFY) and adds these CTEs when an assistant message carries usage, so the message
 * and its ledger row commit together or not at all, and a retried write counts nothing twice.
 *
 *   ledger_input   one ai_requests-shaped row from the caller (`source`)
 *   ledger_price   the catalogue price in force at the call's time (priceInForceSql: the model matched by
 *                  provider and name, or by name alone when exactly one provider has it)
 *   ledger_row     the insert: the cost as given, else from that price, else unknown; a (reported_by,
 *                  request_id) already on the ledger inserts nothing
 *   ledger_budget  each budget of the row's user or guild adds the cost to its current period (budget.sql.ts)
 *   ledger_alerts  one alert per budget threshold the spend crossed
 *   ledger_rollup  the row added to its hour, day and month in cost_tracking (in UTC), in the same statement
 *
 * Cached tokens are the part of the prompt read from the provider's cache: they are charged at the cached-input
 * price (the input price when the model has none) and the rest of the prompt at the input price.
 */
import type { Knex } from "knex";
import { snakeCaseMappers } from "objection";
import { priceInForceSql } from "./ai-model.service";
import { budgetCtes } from "./budget.sql";
import { alertRaisedSql } from "../live/live.hub";

/** The columns of ai_requests that a writer gives (the rest come from the database). */
export interface LedgerEntry {
  requestId: string;
  userId: string;
  reportedBy: string;
  conversationId: string | null;
  messageId: string | null;
  guildId: string | null;
  provider: string | null;
  model: string;
  kind: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  latencyMs: number | null;
  timeToFirstTokenMs: number | null;
  status: string;
  errorCode: string | null;
  confidence: number | null;
  safety: number | null;
  relevance: number | null;
  costUsd: number | null;
  metadata: Record<string, unknown>;
  occurredAt: Date | null;
}

const toColumns = snakeCaseMappers().format;

/** The entry as the JSON document `jsonb_populate_record(null::ai_requests, …)` reads (column names as keys). */
export function ledgerDocument(entry: Partial<LedgerEntry>): string {
  return JSON.stringify(toColumns(entry as Record<string, unknown>));
}


const COLUMNS = [
  "request_id", "user_id", "reported_by", "conversation_id", "message_id", "guild_id", "provider", "model", "kind",
  "prompt_tokens", "completion_tokens", "cached_tokens", "latency_ms", "time_to_first_token_ms", "status", "error_code",
  "confidence", "safety", "relevance", "metadata", "occurred_at",
];
const SUMMED = ["requests", "errors", "unpriced", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "latency_ms_sum", "latency_count"];

/** The CTEs (name, statement) of one ledger write whose row `source` selects; the new row is `ledger_row`. */
export function ledgerCtes(knex: Knex, source: Knex.Raw): [string, Knex.Raw][] {
  return [
    ["ledger_input", source],
    [
      "ledger_price",
      knex.raw(
        `select price.model_id, price.input_per_million, price.output_per_million,
            coalesce(price.cached_input_per_million, price.input_per_million) as cached_per_million
          from ledger_input i cross join lateral ? as price`,
        [priceInForceSql(knex, knex.raw("i.model"), knex.raw("i.provider"), knex.raw("coalesce(i.occurred_at, now())"))],
      ),
    ],
    [
      "ledger_row",
      knex.raw(`insert into ai_requests (${COLUMNS.join(", ")}, model_id, cost_usd, cost_source)
        select ${COLUMNS.map((column) => (column === "occurred_at" ? "coalesce(i.occurred_at, now())" : `i.${column}`)).join(", ")},
          p.model_id,
          coalesce(i.cost_usd, round((i.prompt_tokens - i.cached_tokens) * p.input_per_million / 1000000
            + i.cached_tokens * p.cached_per_million / 1000000 + i.completion_tokens * p.output_per_million / 1000000, 10)),
          case when i.cost_usd is not null then 'given' when p.model_id is not null then 'catalog' else 'unknown' end
        from ledger_input i left join ledger_price p on true
        on conflict (reported_by, request_id) do nothing
        returning *`),
    ],
    ...budgetCtes(alertRaisedSql).map(([name, sql]): [string, Knex.Raw] => [name, knex.raw(sql)]),
    [
      "ledger_rollup",
      knex.raw(`insert into cost_tracking as c (period, period_start, user_id, model, guild_id, ${SUMMED.join(", ")})
        select g.period, date_trunc(g.period, r.occurred_at, 'UTC'), r.user_id, r.model, coalesce(r.guild_id, ''),
          1, (r.status <> 'success')::int, (r.cost_usd is null)::int, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
          coalesce(r.cost_usd, 0), coalesce(r.latency_ms, 0), (r.latency_ms is not null)::int
        from ledger_row r cross join (values ('hour'), ('day'), ('month')) as g(period)
        where r.user_id is not null
        on conflict (period, period_start, user_id, model, guild_id) do update set
          ${SUMMED.map((column) => `${column} = c.${column} + excluded.${column}`).join(", ")}, updated_at = now()`),
    ],
  ];
}

/** Adds the ledger CTEs to `query` (a knex builder that may already have CTEs of its own). */
export function withLedger(knex: Knex, query: Knex.QueryBuilder, source: Knex.Raw): Knex.QueryBuilder {
  for (const [name, statement] of ledgerCtes(knex, source)) query.with(name, statement);
  return query;
}

/**
 * Puts one entry on the ledger as a statement of its own (with its budgets, alerts and roll-ups); resolves to
 * the new row, or undefined when (reportedBy, requestId) was on the ledger already.
 */
export async function insertLedgerEntry(knex: Knex, entry: LedgerEntry): Promise<Record<string, unknown> | undefined> {
  const source = knex.raw("select * from jsonb_populate_record(null::ai_requests, ?::jsonb)", [ledgerDocument(entry)]);
  const [row] = await withLedger(knex, knex.queryBuilder(), source).select("*").from("ledger_row");
  return row;
}
