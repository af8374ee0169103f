import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";
import { enableVectors } from "./lib/vectors";

const SNOWFLAKE = "'^[0-9]{1,25}$'";

/**
 * Knowledge: documents and their chunks (full text and vectors), the answer cache with the documents each
 * answer came from, the history of questions asked, and per-guild settings.
 *
 * A knowledge base is one scope's documents (global, one Discord guild, or one user) with the embedding model
 * and dimensions its vectors have; every chunk, cache entry and question belongs to one. Chunks repeat their
 * knowledge base id so a search filters on it without a join. The vector columns come from enableVectors,
 * which leaves them out (and says why) when the database server has no pgvector.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table knowledge_bases (
    id uuid primary key default gen_random_uuid(),
    scope text not null check (scope in ('global', 'guild', 'user')),
    guild_id text check (guild_id ~ ${SNOWFLAKE}),
    user_id uuid references users(id) on delete cascade,
    embedding_model text check (length(embedding_model) between 1 and 200),
    dimensions integer check (dimensions between 1 and 2000),
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint knowledge_bases_scope_subject_check check (
      (scope = 'global' and guild_id is null and user_id is null) or
      (scope = 'guild' and guild_id is not null and user_id is null) or
      (scope = 'user' and user_id is not null and guild_id is null)))`);
  await knex.raw("create unique index knowledge_bases_global_unique on knowledge_bases ((true)) where scope = 'global'");
  await knex.raw("create unique index knowledge_bases_guild_unique on knowledge_bases (guild_id) where scope = 'guild'");
  await knex.raw("create unique index knowledge_bases_user_unique on knowledge_bases (user_id) where scope = 'user'");
  await touchOnUpdate(knex, "knowledge_bases");

  // The knowledge_base_id keys are checked at commit: deleting a user deletes their knowledge base (and its
  // documents, by cascade) and sets created_by to null on the documents they wrote; when both reach one row,
  // the set-null update would otherwise be checked against the knowledge base its own statement just deleted.
  await knex.raw(`create table documents (
    id uuid primary key default gen_random_uuid(),
    knowledge_base_id uuid not null references knowledge_bases(id) on delete cascade deferrable initially deferred,
    external_id text check (length(external_id) between 1 and 500),
    title text not null check (length(title) between 1 and 500),
    source_url text check (length(source_url) between 1 and 2000),
    tags text[] not null default '{}' check (cardinality(tags) <= 50),
    metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    language text not null check (language ~ '^[a-z_][a-z0-9_]{0,62}$'),
    size_bytes integer not null check (size_bytes >= 0),
    content_sha256 text not null check (content_sha256 ~ '^[0-9a-f]{64}$'),
    chunk_count integer not null check (chunk_count >= 0),
    embedding_model text check (length(embedding_model) between 1 and 200),
    created_by uuid references users(id) on delete set null,
    updated_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint documents_external_id_unique unique (knowledge_base_id, external_id))`);
  await knex.raw("create index documents_knowledge_base_id_index on documents (knowledge_base_id, updated_at desc, id)");
  await knex.raw("create index documents_tags_index on documents using gin (tags)");
  await knex.raw("create index documents_metadata_index on documents using gin (metadata jsonb_path_ops)");
  await knex.raw("create index documents_created_by_index on documents (created_by)");
  await knex.raw("create index documents_updated_by_index on documents (updated_by)");
  await touchOnUpdate(knex, "documents");

  await knex.raw(`create table document_chunks (
    id uuid primary key default gen_random_uuid(),
    document_id uuid not null references documents(id) on delete cascade,
    knowledge_base_id uuid not null references knowledge_bases(id) on delete cascade,
    position integer not null check (position >= 0),
    content text not null check (length(content) >= 1),
    search_vector tsvector not null,
    char_start integer check (char_start >= 0),
    char_end integer check (char_end >= char_start),
    dimensions integer check (dimensions between 1 and 2000),
    created_at timestamptz(3) not null default now(),
    constraint document_chunks_position_unique unique (document_id, position))`);
  await knex.raw("create index document_chunks_knowledge_base_id_index on document_chunks (knowledge_base_id)");
  await knex.raw("create index document_chunks_search_vector_index on document_chunks using gin (search_vector)");

  await knex.raw(`create table query_cache (
    id uuid primary key default gen_random_uuid(),
    knowledge_base_id uuid not null references knowledge_bases(id) on delete cascade deferrable initially deferred,
    question text not null check (length(question) between 1 and 10000),
    question_hash text not null check (question_hash ~ '^[0-9a-f]{64}$'),
    answer text not null check (length(answer) between 1 and 200000),
    model text check (length(model) between 1 and 200),
    metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    dimensions integer check (dimensions between 1 and 2000),
    hit_count integer not null default 0 check (hit_count >= 0),
    last_hit_at timestamptz(3),
    expires_at timestamptz(3) not null,
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint query_cache_question_unique unique (knowledge_base_id, question_hash))`);
  await knex.raw("create index query_cache_expires_at_index on query_cache (expires_at)");
  await knex.raw("create index query_cache_created_by_index on query_cache (created_by)");
  await touchOnUpdate(knex, "query_cache");

  // Which documents an answer was built from: changing or deleting one of them drops the answer.
  await knex.raw(`create table query_cache_sources (
    query_cache_id uuid not null references query_cache(id) on delete cascade,
    document_id uuid not null references documents(id) on delete cascade,
    primary key (query_cache_id, document_id))`);
  await knex.raw("create index query_cache_sources_document_id_index on query_cache_sources (document_id)");

  await knex.raw(`create table query_history (
    id uuid primary key default gen_random_uuid(),
    knowledge_base_id uuid references knowledge_bases(id) on delete set null,
    guild_id text check (guild_id ~ ${SNOWFLAKE}),
    channel_id text check (channel_id ~ ${SNOWFLAKE}),
    conversation_id uuid references conversations(id) on delete set null,
    user_id uuid references users(id) on delete set null,
    recorded_by uuid references users(id) on delete set null,
    question text not null check (length(question) between 1 and 10000),
    answer text check (length(answer) <= 200000),
    sources jsonb not null default '[]' check (jsonb_typeof(sources) = 'array'),
    model text check (length(model) between 1 and 200),
    response_time_ms integer check (response_time_ms >= 0),
    prompt_tokens integer check (prompt_tokens >= 0),
    completion_tokens integer check (completion_tokens >= 0),
    cache_hit boolean not null default false,
    created_at timestamptz(3) not null default now())`);
  await knex.raw("create index query_history_created_at_index on query_history (created_at desc, id)");
  await knex.raw("create index query_history_guild_id_index on query_history (guild_id, created_at desc) where guild_id is not null");
  for (const column of ["knowledge_base_id", "conversation_id", "user_id", "recorded_by"]) {
    await knex.raw(`create index query_history_${column}_index on query_history (${column})`);
  }

  await knex.raw(`create table server_configs (
    guild_id text primary key check (guild_id ~ ${SNOWFLAKE}),
    settings jsonb not null default '{}' check (jsonb_typeof(settings) = 'object'),
    updated_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now())`);
  await knex.raw("create index server_configs_updated_by_index on server_configs (updated_by)");
  await touchOnUpdate(knex, "server_configs");

  const vectors = await enableVectors(knex);
  if (!vectors.enabled) {
    // knex's logger: the server and CLI route it to their log (db/knex-config.ts), the knex CLI to the console.
    (knex.client as { logger: { warn(message: string): void } }).logger.warn(
      `pgvector is missing (${vectors.reason}): documents and full-text search work, vectors are refused until it is installed and "npm run cli -- enable-vectors" has run`,
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ["server_configs", "query_history", "query_cache_sources", "query_cache", "document_chunks", "documents", "knowledge_bases"]) {
    await knex.raw(`drop table if exists ${table}`);
  }
  // The extension stays: other things in the database may use it, and dropping it needs more rights than creating.
}
