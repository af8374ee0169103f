import type { Knex } from "knex";
import { checkIn } from "./lib/columns";

/**
 * What a backup run needs to be restored and pruned, beside the seed's columns (backup_type, status, times,
 * file_path, file_size_bytes, error_message):
 *   backup_type   the format, which says how to restore it: pg_dump (custom format, PostgreSQL) or pglite
 *                 (PGlite's data-folder dump, a tar.gz)
 *   trigger       manual (the CLI) or scheduled (BACKUP_INTERVAL_HOURS); only scheduled ones are pruned
 *   storage       disk or s3; storage_key is the file's key there (file_path is what an operator pastes)
 *   sha256        of the file, also written beside it as <file>.sha256 for restore to check first
 *   pruned_at     when BACKUP_KEEP removed the file; the row stays as the log of the run
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("backup_logs", (t) => {
    t.text("trigger").notNullable().defaultTo("manual");
    t.text("storage");
    t.text("storage_key");
    t.text("sha256");
    t.timestamp("pruned_at", { useTz: true, precision: 3 });
  });
  await checkIn(knex, "backup_logs", "backup_type", ["pg_dump", "pglite"]);
  await checkIn(knex, "backup_logs", "trigger", ["manual", "scheduled"]);
  await checkIn(knex, "backup_logs", "storage", ["disk", "s3"]);
  // The schedule's question: when did the last scheduled backup start, and which completed ones are past BACKUP_KEEP.
  await knex.raw("create index backup_logs_trigger_time_index on backup_logs (trigger, started_at desc)");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("drop index backup_logs_trigger_time_index");
  await knex.raw("alter table backup_logs drop constraint backup_logs_backup_type_check");
  await knex.schema.alterTable("backup_logs", (t) => {
    t.dropColumn("pruned_at");
    t.dropColumn("sha256");
    t.dropColumn("storage_key");
    t.dropColumn("storage");
    t.dropColumn("trigger");
  });
}
