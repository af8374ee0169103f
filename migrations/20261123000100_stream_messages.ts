import type { Knex } from "knex";

/**
 * Streamed assistant replies: a STREAMING message grows by chunks, each one a row of its own (an append,
 * never a rewrite of the text so far); completing the message folds them into its content and drops them.
 */
export async function up(knex: Knex): Promise<void> {
  // How many chunks the message has; the next chunk must carry this index.
  await knex.raw("alter table messages add column chunk_count integer not null default 0 check (chunk_count >= 0)");
  await knex.raw(`create table message_chunks (
    message_id uuid not null references messages(id) on delete cascade,
    idx integer not null check (idx >= 0),
    content text,
    encrypted_content bytea,
    key_id text,
    created_at timestamptz(3) not null default now(),
    primary key (message_id, idx),
    constraint message_chunks_content_check check (
      (content is not null and encrypted_content is null and key_id is null)
      or (content is null and encrypted_content is not null and key_id is not null)))`);
  // The stale-stream sweep looks for STREAMING messages by age; they are few, so the index is small.
  await knex.raw("create index messages_streaming_index on messages (updated_at) where status = 'streaming'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop index messages_streaming_index");
  await knex.schema.dropTable("message_chunks");
  await knex.raw("alter table messages drop column chunk_count");
}
