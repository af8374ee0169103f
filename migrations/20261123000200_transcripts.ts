import type { Knex } from "knex";

/**
 * Transcripts as export jobs: what was asked for (range and filters, kept so that a retried request with the
 * same requestId can be told apart from a different one), and the lease of the server running the job
 * (attempts, heartbeat_at), so that a job whose server died is taken over by another.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table transcripts
    add column request_id text,
    add column from_seq bigint,
    add column to_seq bigint,
    add column from_time timestamptz(3),
    add column to_time timestamptz(3),
    add column include_tool_calls boolean not null default true,
    add column include_system boolean not null default true,
    add column snapshot_seq bigint,
    add column attempts integer not null default 0,
    add column heartbeat_at timestamptz(3),
    add column completed_at timestamptz(3),
    add constraint transcripts_request_id_check check (request_id is null or length(request_id) between 1 and 200),
    add constraint transcripts_range_check check (
      coalesce(from_seq, 1) >= 1 and coalesce(to_seq, 1) >= 1 and (from_seq is null or to_seq is null or to_seq >= from_seq)
      and (from_time is null or to_time is null or from_time < to_time)
      and attempts >= 0),
    add constraint transcripts_ready_check check (
      status <> 'ready' or (storage_key is not null and sha256 is not null and file_size_bytes is not null and message_count is not null))`);
  // Idempotent creation: one transcript per (creator, requestId).
  await knex.raw("create unique index transcripts_request_id_unique on transcripts (created_by, request_id) where request_id is not null");
  // Conversation.transcripts lists newest first; the sweep looks for PENDING jobs by heartbeat (they are few).
  await knex.raw("create index transcripts_conversation_created_index on transcripts (conversation_id, created_at desc, id desc)");
  await knex.raw("drop index transcripts_conversation_id_index");
  await knex.raw("create index transcripts_pending_index on transcripts (heartbeat_at) where status = 'pending'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop index transcripts_pending_index");
  await knex.raw("create index transcripts_conversation_id_index on transcripts (conversation_id)");
  await knex.raw("drop index transcripts_conversation_created_index");
  await knex.raw("drop index transcripts_request_id_unique");
  await knex.raw(`alter table transcripts
    drop constraint transcripts_ready_check,
    drop constraint transcripts_range_check,
    drop constraint transcripts_request_id_check,
    drop column completed_at,
    drop column heartbeat_at,
    drop column attempts,
    drop column snapshot_seq,
    drop column include_system,
    drop column include_tool_calls,
    drop column to_time,
    drop column from_time,
    drop column to_seq,
    drop column from_seq,
    drop column request_id`);
}
