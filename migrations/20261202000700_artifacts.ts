import type { Knex } from "knex";
import { touchOnUpdate } from "./lib/columns";

/**
 * Artifacts: what an assistant (or tool) message produced — code, a document, an image, a file, data. Each row
 * is one version; editing adds version n+1 that names the version it edits (parent_id) and the first version
 * (root_id), so a history is one index range and old versions stay readable. A version holds either inline
 * text (content) or a stored file (storage_key, size_bytes, sha256), never both; a file version is 'pending'
 * until its bytes are uploaded, and its key is set only with them, so a row never points at a missing file.
 *
 * Deleting a conversation or message removes its artifact rows (cascade); the files are removed by the API
 * after that commit (conversation.service.ts). parent_id is set null rather than cascading: removing one
 * version must not take later versions with it, and root_id still groups them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table artifacts (
    id uuid primary key default gen_random_uuid(),
    conversation_id uuid not null references conversations(id) on delete cascade,
    message_id uuid not null references messages(id) on delete cascade,
    parent_id uuid references artifacts(id) on delete set null,
    root_id uuid not null references artifacts(id) on delete cascade,
    version integer not null check (version >= 1),
    kind text not null check (kind in ('code', 'document', 'image', 'file', 'data')),
    title text not null check (length(title) between 1 and 500),
    language text check (length(language) between 1 and 100),
    mime_type text check (mime_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$'),
    content text,
    storage_key text check (length(storage_key) between 1 and 500),
    size_bytes bigint check (size_bytes >= 0),
    sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
    status text not null check (status in ('pending', 'ready')),
    created_by uuid references users(id) on delete set null,
    created_at timestamptz(3) not null default now(),
    updated_at timestamptz(3) not null default now(),
    constraint artifacts_root_version_unique unique (root_id, version),
    constraint artifacts_content_or_file_check check (content is null or storage_key is null),
    constraint artifacts_file_fields_check check ((storage_key is null) = (size_bytes is null) and (storage_key is null) = (sha256 is null)),
    constraint artifacts_ready_check check ((status = 'ready') = (content is not null or storage_key is not null)),
    constraint artifacts_first_version_check check ((version = 1) = (root_id = id)))`);
  // root_id needs no index of its own: artifacts_root_version_unique leads with it (a history is one range of it).
  for (const column of ["conversation_id", "message_id", "parent_id", "created_by"]) {
    await knex.raw(`create index artifacts_${column}_index on artifacts (${column})`);
  }
  await touchOnUpdate(knex, "artifacts");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop table artifacts");
}
