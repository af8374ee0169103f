import type { Knex } from "knex";
import { checkIn, timestamps, touchOnUpdate, uuidPrimaryKey } from "./lib/columns";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("conversations", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("owner_id").notNullable().references("users.id").onDelete("CASCADE");
    t.text("title").notNullable().defaultTo("");
    t.text("origin").notNullable().defaultTo("web");
    t.text("discord_guild_id");
    t.text("discord_channel_id");
    t.jsonb("parameters").notNullable().defaultTo("{}"); // LLM parameters (model, temperature, ...)
    t.text("status").notNullable().defaultTo("active");
    // last_seq is the per-conversation message counter: addMessage bumps it under the row lock.
    t.bigInteger("last_seq").notNullable().defaultTo(0);
    t.integer("message_count").notNullable().defaultTo(0);
    t.timestamp("ended_at", { useTz: true, precision: 3 });
    timestamps(knex, t);
  });
  await checkIn(knex, "conversations", "origin", ["web", "discord", "api"]);
  await checkIn(knex, "conversations", "status", ["active", "archived"]);
  await knex.raw(
    "alter table conversations add constraint conversations_counts_check check (last_seq >= 0 and message_count >= 0 and message_count <= last_seq)",
  );
  await knex.raw("alter table conversations add constraint conversations_title_check check (length(title) <= 500)");
  // The inbox: one owner's conversations, most recently active first (keyset on updated_at, id).
  await knex.raw("create index conversations_owner_recent_index on conversations (owner_id, updated_at desc, id desc)");
  // Admins list everyone's conversations in the same order.
  await knex.raw("create index conversations_recent_index on conversations (updated_at desc, id desc)");
  // One live conversation per Discord channel; archived ones keep their channel id as history.
  await knex.raw(
    "create unique index conversations_discord_channel_unique on conversations (discord_channel_id) where discord_channel_id is not null and status = 'active'",
  );
  await knex.raw("create index conversations_discord_guild_index on conversations (discord_guild_id) where discord_guild_id is not null");
  await touchOnUpdate(knex, "conversations");

  await knex.schema.createTable("messages", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("conversation_id").notNullable().references("conversations.id").onDelete("CASCADE");
    t.bigInteger("seq").notNullable();
    t.uuid("author_id").references("users.id").onDelete("SET NULL").index();
    t.text("role").notNullable();
    t.text("content"); // NULL when the content is stored encrypted
    t.binary("encrypted_content");
    t.text("key_id");
    t.text("request_id"); // client idempotency key (a UUID, a Discord message id, ...)
    t.text("status").notNullable().defaultTo("complete");
    t.jsonb("metadata").notNullable().defaultTo("{}");
    t.jsonb("tool_calls");
    t.text("model");
    t.integer("prompt_tokens");
    t.integer("completion_tokens");
    t.decimal("cost_usd", 14, 6);
    t.integer("latency_ms");
    timestamps(knex, t);
    t.unique(["conversation_id", "seq"], { indexName: "messages_conversation_seq_unique" });
    t.unique(["conversation_id", "request_id"], { indexName: "messages_conversation_request_unique" });
  });
  await checkIn(knex, "messages", "role", ["user", "assistant", "system", "tool"]);
  await checkIn(knex, "messages", "status", ["complete", "streaming", "failed"]);
  await knex.raw(`alter table messages add constraint messages_numbers_check check (
    seq > 0 and coalesce(prompt_tokens, 0) >= 0 and coalesce(completion_tokens, 0) >= 0
    and coalesce(cost_usd, 0) >= 0 and coalesce(latency_ms, 0) >= 0)`);
  await knex.raw(`alter table messages add constraint messages_content_check check (
    (content is not null and encrypted_content is null and key_id is null)
    or (content is null and encrypted_content is not null and key_id is not null))`);
  await knex.raw("alter table messages add constraint messages_request_id_check check (length(request_id) between 1 and 255)");
  await touchOnUpdate(knex, "messages");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("messages");
  await knex.schema.dropTable("conversations");
}
