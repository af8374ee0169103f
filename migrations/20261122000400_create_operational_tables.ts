import type { Knex } from "knex";
import { checkIn, timestamps, touchOnUpdate, uuidPrimaryKey } from "./lib/columns";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("system_configs", (t) => {
    t.text("key").primary();
    t.jsonb("value").notNullable();
    t.text("description");
    t.uuid("updated_by").references("users.id").onDelete("SET NULL").index();
    timestamps(knex, t);
  });
  await touchOnUpdate(knex, "system_configs");

  await knex.schema.createTable("backup_logs", (t) => {
    uuidPrimaryKey(knex, t);
    t.text("backup_type").notNullable();
    t.text("status").notNullable().defaultTo("started");
    t.timestamp("started_at", { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("completed_at", { useTz: true, precision: 3 });
    t.text("file_path");
    t.bigInteger("file_size_bytes");
    t.text("error_message");
    timestamps(knex, t);
  });
  await checkIn(knex, "backup_logs", "status", ["started", "in_progress", "completed", "failed"]);
  await knex.raw("create index backup_logs_status_time_index on backup_logs (status, started_at desc)");
  await knex.raw("create index backup_logs_time_index on backup_logs (started_at desc)");
  await touchOnUpdate(knex, "backup_logs");

  await knex.schema.createTable("audit_logs", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("actor_id").references("users.id").onDelete("SET NULL");
    t.text("action").notNullable();
    t.text("target_type");
    t.text("target_id");
    t.jsonb("details").notNullable().defaultTo("{}");
    t.text("ip");
    t.text("request_id");
    timestamps(knex, t, false);
  });
  await knex.raw("create index audit_logs_time_index on audit_logs (created_at desc, id desc)");
  await knex.raw("create index audit_logs_actor_time_index on audit_logs (actor_id, created_at desc, id desc)");
  await knex.raw("create index audit_logs_action_time_index on audit_logs (action, created_at desc, id desc)");
  await knex.raw("create index audit_logs_target_index on audit_logs (target_type, target_id)");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("audit_logs");
  await knex.schema.dropTable("backup_logs");
  await knex.schema.dropTable("system_configs");
}
