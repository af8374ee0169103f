import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Assistants (seed 001's agents): named presets of model, system prompt, LLM parameters, tool definitions and a
 * knowledge scope, owned by a user or shared (owner null, made by an admin). Every change of an assistant is a
 * new row of assistant_versions, never an update of an old one: a conversation pins a version, and an assistant
 * message names the version that wrote it, so what a conversation says it used stays true after the assistant
 * changes. The API retires an assistant that anything points at rather than deleting it; only deleting its
 * owner removes it, and then conversations and messages lose the pointer (set null), not their rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table assistants (
    id uuid primary key default gen_random_uuid(),
    owner_id uuid references users(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    description text check (length(description) <= 2000),
    is_active boolean not null default true,
    current_version integer not null default 1 check (current_version >= 1),
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now())`);
  // One name per owner, and one among the shared ones.
  await knex.raw("create unique index assistants_owner_name_unique on assistants (owner_id, lower(name)) where owner_id is not null");
  await knex.raw("create unique index assistants_shared_name_unique on assistants (lower(name)) where owner_id is null");
  await knex.raw("create index assistants_created_by_index on assistants (created_by)");
  await touchOnUpdate(knex, "assistants");

  await knex.raw(`create table assistant_versions (
    id uuid primary key default gen_random_uuid(),
    assistant_id uuid not null references assistants(id) on delete cascade,
    version integer not null check (version >= 1),
    model text not null check (length(model) between 1 and 200),
    system_prompt text check (length(system_prompt) <= 100000),
    parameters jsonb not null default '{}' check (jsonb_typeof(parameters) = 'object'),
    tools jsonb not null default '[]' check (jsonb_typeof(tools) = 'array'),
    knowledge_scope jsonb check (jsonb_typeof(knowledge_scope) = 'object'),
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    constraint assistant_versions_version_unique unique (assistant_id, version))`);
  await knex.raw("create index assistant_versions_created_by_index on assistant_versions (created_by)");

  await knex.raw("alter table conversations add column assistant_version_id uuid references assistant_versions(id) on delete set null");
  await knex.raw("create index conversations_assistant_version_id_index on conversations (assistant_version_id) where assistant_version_id is not null");
  await knex.raw("alter table messages add column assistant_version_id uuid references assistant_versions(id) on delete set null");
  await knex.raw("create index messages_assistant_version_id_index on messages (assistant_version_id) where assistant_version_id is not null");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("alter table messages drop column if exists assistant_version_id");
  await knex.raw("alter table conversations drop column if exists assistant_version_id");
  await knex.raw("drop table if exists assistant_versions");
  await knex.raw("drop table if exists assistants");
}
