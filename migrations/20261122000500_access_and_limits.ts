import type { Knex } from "knex";
import { timestamps, uuidPrimaryKey } from "./lib/columns";

export async function up(knex: Knex): Promise<void> {
  // A key may carry a lower role than its user (a read-mostly member key for an admin, say); NULL: the user's role.
  await knex.raw("alter table api_keys add column role text check (role in ('admin', 'service', 'member'))");

  // What a service identity may reach beyond its own conversations: one conversation, or every
  // conversation of an origin (e.g. all DISCORD conversations for the Discord adapter).
  await knex.schema.createTable("service_grants", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("service_id").notNullable().references("users.id").onDelete("CASCADE");
    t.uuid("conversation_id").references("conversations.id").onDelete("CASCADE").index();
    t.text("origin");
    t.uuid("created_by").references("users.id").onDelete("SET NULL").index();
    timestamps(knex, t, false);
  });
  await knex.raw(`alter table service_grants add constraint service_grants_target_check check (
    (conversation_id is not null and origin is null) or (conversation_id is null and origin in ('web', 'discord', 'api')))`);
  await knex.raw("create unique index service_grants_conversation_unique on service_grants (service_id, conversation_id) where conversation_id is not null");
  await knex.raw("create unique index service_grants_origin_unique on service_grants (service_id, origin) where origin is not null");

  // A service writing on behalf of a user: author_id is the user, sent_by the service that wrote it.
  await knex.schema.alterTable("messages", (t) => {
    t.uuid("sent_by").references("users.id").onDelete("SET NULL").index();
  });

  // rate-limiter-flexible's Postgres store (its own schema: key, points, expire in epoch ms).
  await knex.raw(`create table rate_limits (
    key varchar(255) primary key,
    points integer not null default 0,
    expire bigint)`);
  await knex.raw("create index rate_limits_expire_index on rate_limits (expire)");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("rate_limits");
  await knex.schema.alterTable("messages", (t) => t.dropColumn("sent_by"));
  await knex.schema.dropTable("service_grants");
  await knex.raw("alter table api_keys drop column role");
}
