import type { Knex } from "knex";

/**
 * Indexes for the retention pass (modules/ops/retention.ts), which looks for the oldest rows of a kind a batch at
 * a time. No column is added: an archived conversation's age counts from ended_at, which archiving sets (the
 * archiveConversation mutation and the retention pass, nothing else); a row archived by hand without it counts
 * from updated_at, which nothing moves once a conversation is archived.
 *
 *   conversations_inactive_index   ACTIVE conversations of an origin by last activity: without it, a batch walks
 *                                  conversations_recent_index past every archived conversation kept older
 *   conversations_archived_index   ARCHIVED conversations by the time they were archived
 *   system_alerts_resolved_index   resolved alerts by resolved_at
 * metrics, audit_logs, backup_logs and query_history already have an index on the time the pass compares.
 *
 * Built CONCURRENTLY (hence `transaction: false`), so a deploy on a large conversations table does not block
 * its writers for the build; a build cut short leaves an INVALID index of the name, dropped first on a rerun.
 */
export const config = { transaction: false };

const INDEXES: [name: string, definition: string][] = [
  ["conversations_inactive_index", "on conversations (origin, updated_at) where status = 'active'"],
  ["conversations_archived_index", "on conversations ((coalesce(ended_at, updated_at))) where status = 'archived'"],
  ["system_alerts_resolved_index", "on system_alerts (resolved_at) where resolved_at is not null"],
];

export async function up(knex: Knex): Promise<void> {
  for (const [name, definition] of INDEXES) {
    await knex.raw(`drop index concurrently if exists ${name}`);
    await knex.raw(`create index concurrently ${name} ${definition}`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [name] of INDEXES) await knex.raw(`drop index concurrently if exists ${name}`);
}
