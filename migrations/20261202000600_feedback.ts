import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Feedback on messages: one row per user per message (a new rating replaces it; the audit log keeps what it
 * replaced). A rating is UP/DOWN, a score 1–5, or both. conversation_id is the message's, copied: rows that
 * hang off a message carry their conversation so that the table can be distributed by conversation
 * (DESIGN.md, the Citus rule) and so statistics by conversation, guild or owner need no join through messages.
 * The tag vocabulary is checked by the API (feedback.service.ts), not here: it grows without a migration.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table feedback (
    id uuid primary key default gen_random_uuid(),
    message_id uuid not null references messages(id) on delete cascade,
    conversation_id uuid not null references conversations(id) on delete cascade,
    user_id uuid not null references users(id) on delete cascade,
    rating text check (rating in ('up', 'down')),
    score integer check (score between 1 and 5),
    comment text check (length(comment) <= 2000),
    tags text[] not null default '{}'
      check (cardinality(tags) <= 20 and array_position(tags, null) is null),
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint feedback_rating_or_score_check check (rating is not null or score is not null),
    constraint feedback_message_user_unique unique (message_id, user_id))`);
  // length() of each element: a CHECK may not hold a subquery, so the array's longest element is bounded by a function.
  await knex.raw(`create function parley_tags_fit(tags text[], max_length integer) returns boolean
    language sql immutable as $$ select coalesce(bool_and(length(tag) between 1 and max_length), true) from unnest(tags) tag $$`);
  await knex.raw("alter table feedback add constraint feedback_tags_length_check check (parley_tags_fit(tags, 50))");
  for (const column of ["conversation_id", "user_id", "created_at"]) {
    await knex.raw(`create index feedback_${column}_index on feedback (${column})`);
  }
  await touchOnUpdate(knex, "feedback");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop table if exists feedback");
  await knex.raw("drop function if exists parley_tags_fit(text[], integer)");
}
