/**
 * Column helpers shared by the migrations. Frozen: changing them would change what old migrations do, so
 * a new need gets a new helper.
 */
import type { Knex } from "knex";

/**
 * `id uuid` primary key. gen_random_uuid() is core PostgreSQL (13+), so no extension is needed.
 */
export function uuidPrimaryKey(knex: Knex, t: Knex.CreateTableBuilder): void {
  t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
}

/**
 * created_at/updated_at with millisecond precision: JavaScript dates hold milliseconds, so keyset cursors
 * built from them compare exactly with the stored values.
 */
export function timestamps(knex: Knex, t: Knex.CreateTableBuilder, withUpdated = true): void {
  t.timestamp("created_at", { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
  if (withUpdated) t.timestamp("updated_at", { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
}

/** Keeps updated_at current on every UPDATE, whoever issues it. */
export async function touchOnUpdate(knex: Knex, table: string): Promise<void> {
  await knex.raw(
    `create trigger ${table}_touch before update on ${table} for each row execute function parley_touch_updated_at()`,
  );
}

/** A CHECK that `column` holds one of `values`. Enums live in the database, not only in code. */
export function checkIn(knex: Knex, table: string, column: string, values: readonly string[]): Knex.Raw {
  const list = values.map((v) => `'${v}'`).join(", ");
  return knex.raw(`alter table ${table} add constraint ${table}_${column}_check check (${column} in (${list}))`);
}
