import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Data exports (exportMyData): one archive (JSON) of everything Parley holds of a user, written in the
 * background into the transcripts' storage backend under `exports/<user_id>/<id>-<attempt>.json`. Like a
 * transcript, the row is its own job: attempts and heartbeat_at are the lease of the server writing it
 * (modules/transcript/transcript.jobs.ts runs both kinds). It hangs off a user, not a conversation, so it
 * has a table of its own rather than a transcripts row (whose conversation_id is required).
 *
 * The export goes with its user (cascade); the file is removed by the API after that commit
 * (modules/privacy/user-deletion.service.ts). One PENDING export per user at a time: an archive reads all of
 * a user's data, so a second one only doubles the work (the partial unique index refuses it). request_id is
 * the client's idempotency key, unique per user. counts says what the READY archive holds.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table data_exports (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users(id) on delete cascade,
    request_id text check (length(request_id) between 1 and 200),
    status text not null default 'pending' check (status in ('pending', 'ready', 'failed')),
    storage_key text check (length(storage_key) between 1 and 500),
    file_size_bytes bigint check (file_size_bytes >= 0),
    sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
    counts jsonb check (jsonb_typeof(counts) = 'object'),
    error text check (length(error) between 1 and 500),
    attempts integer not null default 0 check (attempts >= 0),
    heartbeat_at timestamptz(3),
    completed_at timestamptz(3),
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint data_exports_ready_check check (
      status <> 'ready' or (storage_key is not null and sha256 is not null and file_size_bytes is not null and counts is not null)))`);
  await knex.raw("create unique index data_exports_request_id_unique on data_exports (user_id, request_id) where request_id is not null");
  await knex.raw("create unique index data_exports_one_pending_unique on data_exports (user_id) where status = 'pending'");
  // myDataExports lists newest first; the sweep looks for PENDING jobs by heartbeat (they are few).
  await knex.raw("create index data_exports_user_created_index on data_exports (user_id, created_at desc, id desc)");
  await knex.raw("create index data_exports_pending_index on data_exports (heartbeat_at) where status = 'pending'");
  await touchOnUpdate(knex, "data_exports");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop table data_exports");
}
