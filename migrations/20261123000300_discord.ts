import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * What the Discord adapter posted of each assistant message: the Discord message ids of its parts (a reply
 * over 2,000 characters takes several) and whether it is finished. After a restart the adapter posts every
 * assistant message without a finished row, continuing a half-posted one instead of posting it twice.
 * The channel binding itself lives on conversations (discord_channel_id); edits and deletions of relayed
 * messages are kept in the message's metadata, so they need no table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table discord_posts (
    message_id uuid primary key references messages(id) on delete cascade,
    channel_id text not null check (channel_id ~ '^[0-9]{1,25}$'),
    discord_message_ids jsonb not null default '[]' check (jsonb_typeof(discord_message_ids) = 'array'),
    status text not null default 'posting' check (status in ('posting', 'posted', 'failed')),
    error text check (length(error) <= 500),
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now())`);
  await touchOnUpdate(knex, "discord_posts");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("discord_posts");
}
