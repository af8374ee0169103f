import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Usage and spend. The model catalogue (ai_models) with its price history (ai_model_prices: a price applies
 * from its effective_from, so past costs never change); the request ledger (ai_requests), one row per model
 * call, idempotent on (reported_by, request_id); and the roll-ups (cost_tracking) per hour, day and month ×
 * user × model × guild, maintained in the ledger insert's own statement or transaction.
 *
 * Money is numeric, never float. The ledger outlives what it refers to (a deleted user, conversation or
 * message leaves the row with a null reference: spend that happened stays on record); a deleted user's
 * roll-ups go with the user.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table ai_models (
    id uuid primary key default gen_random_uuid(),
    provider text not null check (length(provider) between 1 and 100),
    name text not null check (length(name) between 1 and 200),
    context_window integer check (context_window > 0),
    is_active boolean not null default true,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint ai_models_provider_name_unique unique (provider, name))`);
  // A message names its model without a provider: looked up by name.
  await knex.raw("create index ai_models_name_index on ai_models (name)");
  await touchOnUpdate(knex, "ai_models");

  await knex.raw(`create table ai_model_prices (
    id uuid primary key default gen_random_uuid(),
    model_id uuid not null references ai_models(id) on delete cascade,
    effective_from timestamptz(3) not null,
    input_per_million numeric(20, 6) not null check (input_per_million >= 0),
    output_per_million numeric(20, 6) not null check (output_per_million >= 0),
    cached_input_per_million numeric(20, 6) check (cached_input_per_million >= 0),
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    constraint ai_model_prices_model_from_unique unique (model_id, effective_from))`);
  await knex.raw("create index ai_model_prices_created_by_index on ai_model_prices (created_by)");

  await knex.raw(`create table ai_requests (
    id uuid primary key default gen_random_uuid(),
    request_id text not null check (length(request_id) between 1 and 200),
    user_id uuid references users(id) on delete set null,
    reported_by uuid references users(id) on delete set null,
    conversation_id uuid references conversations(id) on delete set null,
    message_id uuid references messages(id) on delete set null,
    guild_id text check (guild_id ~ '^[0-9]{1,25}$'),
    model_id uuid references ai_models(id) on delete set null,
    provider text check (length(provider) between 1 and 100),
    model text not null check (length(model) between 1 and 200),
    kind text not null default 'chat' check (kind in ('chat', 'embedding', 'rag_query', 'tool', 'other')),
    prompt_tokens integer not null default 0 check (prompt_tokens >= 0),
    completion_tokens integer not null default 0 check (completion_tokens >= 0),
    cached_tokens integer not null default 0 check (cached_tokens >= 0),
    latency_ms integer check (latency_ms >= 0),
    time_to_first_token_ms integer check (time_to_first_token_ms >= 0),
    status text not null default 'success' check (status in ('success', 'error', 'timeout', 'cancelled')),
    error_code text check (length(error_code) between 1 and 100),
    confidence numeric(5, 4) check (confidence between 0 and 1),
    safety numeric(5, 4) check (safety between 0 and 1),
    relevance numeric(5, 4) check (relevance between 0 and 1),
    cost_usd numeric(20, 10) check (cost_usd >= 0),
    cost_source text not null check (cost_source in ('given', 'catalog', 'unknown')),
    metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    occurred_at timestamptz(3) not null default now(),
    created_at timestamptz(3) not null default now(),
    constraint ai_requests_reporter_request_unique unique (reported_by, request_id),
    constraint ai_requests_cost_source_check_given check ((cost_source = 'unknown') = (cost_usd is null)))`);
  await knex.raw("create index ai_requests_user_occurred_index on ai_requests (user_id, occurred_at)");
  await knex.raw("create index ai_requests_conversation_index on ai_requests (conversation_id)");
  await knex.raw("create index ai_requests_message_index on ai_requests (message_id)");
  await knex.raw("create index ai_requests_model_index on ai_requests (model_id)");
  await knex.raw("create index ai_requests_guild_occurred_index on ai_requests (guild_id, occurred_at)");
  await knex.raw("create index ai_requests_occurred_index on ai_requests (occurred_at)");

  // One row per period × user × model × guild ('' for none, so that the key has no nulls to tell apart).
  await knex.raw(`create table cost_tracking (
    period text not null check (period in ('hour', 'day', 'month')),
    period_start timestamptz(3) not null,
    user_id uuid not null references users(id) on delete cascade,
    model text not null,
    guild_id text not null default '',
    requests integer not null default 0 check (requests >= 0),
    errors integer not null default 0 check (errors >= 0),
    unpriced integer not null default 0 check (unpriced >= 0),
    prompt_tokens bigint not null default 0,
    completion_tokens bigint not null default 0,
    cached_tokens bigint not null default 0,
    cost_usd numeric(24, 10) not null default 0,
    latency_ms_sum bigint not null default 0,
    latency_count integer not null default 0,
    updated_at timestamptz(3) not null default now(),
    constraint cost_tracking_pkey primary key (period, period_start, user_id, model, guild_id))`);
  await knex.raw("create index cost_tracking_user_index on cost_tracking (user_id, period, period_start)");
  await touchOnUpdate(knex, "cost_tracking");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop table cost_tracking");
  await knex.raw("drop table ai_requests");
  await knex.raw("drop table ai_model_prices");
  await knex.raw("drop table ai_models");
}
