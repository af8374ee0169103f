import type { Knex } from "knex";
import { checkIn, timestamps, touchOnUpdate, uuidPrimaryKey } from "./lib/columns";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("transcripts", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("conversation_id").notNullable().references("conversations.id").onDelete("CASCADE").index();
    t.text("format").notNullable();
    t.text("status").notNullable().defaultTo("pending");
    t.text("storage_key");
    t.bigInteger("file_size_bytes");
    t.integer("message_count");
    t.text("sha256");
    t.text("error");
    t.uuid("created_by").references("users.id").onDelete("SET NULL").index();
    timestamps(knex, t);
  });
  await checkIn(knex, "transcripts", "format", ["json", "csv"]);
  await checkIn(knex, "transcripts", "status", ["pending", "ready", "failed"]);
  await knex.raw(
    "alter table transcripts add constraint transcripts_numbers_check check (coalesce(file_size_bytes, 0) >= 0 and coalesce(message_count, 0) >= 0)",
  );
  await touchOnUpdate(knex, "transcripts");

  await knex.schema.createTable("metrics", (t) => {
    uuidPrimaryKey(knex, t);
    t.text("client_bot_id").notNullable();
    t.text("metric_type").notNullable();
    t.jsonb("metric_data").notNullable().defaultTo("{}");
    t.timestamp("recorded_at", { useTz: true, precision: 3 }).notNullable();
    // Who reported it: services read back only their own metrics.
    t.uuid("recorded_by").references("users.id").onDelete("SET NULL");
    timestamps(knex, t, false);
  });
  await knex.raw(
    "alter table metrics add constraint metrics_names_check check (length(client_bot_id) between 1 and 200 and length(metric_type) between 1 and 200)",
  );
  await knex.raw("create index metrics_bot_type_time_index on metrics (client_bot_id, metric_type, recorded_at desc, id desc)");
  await knex.raw("create index metrics_type_time_index on metrics (metric_type, recorded_at desc, id desc)");
  await knex.raw("create index metrics_time_index on metrics (recorded_at desc, id desc)");
  await knex.raw("create index metrics_recorded_by_time_index on metrics (recorded_by, recorded_at desc, id desc)");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("metrics");
  await knex.schema.dropTable("transcripts");
}
