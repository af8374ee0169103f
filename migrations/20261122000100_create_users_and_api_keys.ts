import type { Knex } from "knex";
import { checkIn, timestamps, touchOnUpdate, uuidPrimaryKey } from "./lib/columns";

export async function up(knex: Knex): Promise<void> {
  // Sets updated_at unless the statement set it itself (seeds and imports may carry their own times).
  await knex.raw(`
    create function parley_touch_updated_at() returns trigger language plpgsql as $$
    begin
      if new.updated_at is not distinct from old.updated_at then
        new.updated_at := now();
      end if;
      return new;
    end $$`);

  await knex.schema.createTable("users", (t) => {
    uuidPrimaryKey(knex, t);
    t.text("external_id").unique(); // JWT subject
    t.text("discord_id").unique();
    t.text("email");
    t.text("display_name").notNullable();
    t.text("role").notNullable().defaultTo("member");
    t.boolean("is_active").notNullable().defaultTo(true);
    t.jsonb("preferences").notNullable().defaultTo("{}");
    timestamps(knex, t);
  });
  await checkIn(knex, "users", "role", ["admin", "service", "member"]);
  await knex.raw("alter table users add constraint users_display_name_check check (length(display_name) between 1 and 200)");
  // Emails compare case-insensitively.
  await knex.raw("create unique index users_email_unique on users (lower(email))");
  await knex.raw("create index users_active_role_index on users (is_active, role)");
  await touchOnUpdate(knex, "users");

  await knex.schema.createTable("api_keys", (t) => {
    uuidPrimaryKey(knex, t);
    t.uuid("user_id").notNullable().references("users.id").onDelete("CASCADE").index();
    t.text("name").notNullable();
    t.text("key_hash").notNullable().unique(); // sha256 of the secret; the secret itself is never stored
    t.text("prefix").notNullable(); // first characters of the key, to tell keys apart in lists
    t.timestamp("last_used_at", { useTz: true, precision: 3 });
    t.timestamp("revoked_at", { useTz: true, precision: 3 });
    timestamps(knex, t);
  });
  await touchOnUpdate(knex, "api_keys");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("api_keys");
  await knex.schema.dropTable("users");
  await knex.raw("drop function parley_touch_updated_at()");
}
