import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Budgets and alerts. A budget (user_budgets) caps the spend of one user or one Discord guild per day, week or
 * month in its own time zone; its spend in the current period (spent_usd from period_start) is kept by every
 * ledger insert, so checking it on a write is a join, and crossing a threshold raises one alert (system_alerts,
 * one per dedupe_key: budget, period, threshold) however many writers cross it at once. alert_deliveries are
 * the webhook's outbox: each alert to deliver, its attempts and outcome, kept across restarts.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table user_budgets (
    id uuid primary key default gen_random_uuid(),
    user_id uuid references users(id) on delete cascade,
    guild_id text check (guild_id ~ '^[0-9]{1,25}$'),
    period text not null check (period in ('daily', 'weekly', 'monthly')),
    time_zone text not null default 'UTC' check (length(time_zone) between 1 and 64),
    limit_usd numeric(20, 6) not null check (limit_usd > 0),
    thresholds integer[] not null default '{50,80,100}'
      check (cardinality(thresholds) between 1 and 10 and 1 <= all (thresholds) and 100 >= all (thresholds)),
    enforcement text not null default 'soft' check (enforcement in ('hard', 'soft')),
    period_start timestamptz(3),
    spent_usd numeric(24, 10) not null default 0 check (spent_usd >= 0),
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint user_budgets_subject_check check ((user_id is null) <> (guild_id is null)))`);
  await knex.raw("create unique index user_budgets_user_unique on user_budgets (user_id) where user_id is not null");
  await knex.raw("create unique index user_budgets_guild_unique on user_budgets (guild_id) where guild_id is not null");
  await knex.raw("create index user_budgets_created_by_index on user_budgets (created_by)");
  await touchOnUpdate(knex, "user_budgets");

  await knex.raw(`create table system_alerts (
    id uuid primary key default gen_random_uuid(),
    source text not null check (length(source) between 1 and 100),
    severity text not null check (severity in ('info', 'warning', 'critical')),
    message text not null check (length(message) between 1 and 2000),
    details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
    user_id uuid references users(id) on delete cascade,
    budget_id uuid references user_budgets(id) on delete set null,
    raised_by uuid references users(id) on delete set null,
    dedupe_key text check (length(dedupe_key) between 1 and 300),
    acknowledged_at timestamptz(3),
    acknowledged_by uuid references users(id) on delete set null,
    resolved_at timestamptz(3),
    resolved_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint system_alerts_dedupe_key_unique unique (dedupe_key))`);
  for (const column of ["user_id", "budget_id", "raised_by", "acknowledged_by", "resolved_by", "created_at"]) {
    await knex.raw(`create index system_alerts_${column}_index on system_alerts (${column})`);
  }
  await touchOnUpdate(knex, "system_alerts");

  await knex.raw(`create table alert_deliveries (
    id uuid primary key default gen_random_uuid(),
    alert_id uuid not null references system_alerts(id) on delete cascade,
    status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz(3) not null default now(),
    last_status_code integer,
    last_error text check (length(last_error) <= 500),
    delivered_at timestamptz(3),
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now())`);
  await knex.raw("create index alert_deliveries_alert_index on alert_deliveries (alert_id)");
  await knex.raw("create index alert_deliveries_due_index on alert_deliveries (status, next_attempt_at)");
  await touchOnUpdate(knex, "alert_deliveries");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop table alert_deliveries");
  await knex.raw("drop table system_alerts");
  await knex.raw("drop table user_budgets");
}
