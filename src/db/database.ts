/**
 * The database handle the app, CLI and tests share: one knex instance, plus the embedded PGlite instance
 * when there is no DATABASE_URL (its LISTEN is used for live events). Objection models are deliberately
 * not bound to a global knex: every query names its knex (or trx), so a forgotten one fails loudly
 * instead of running outside its transaction, and tests can hold several databases in one process.
 */
import knexFactory, { type Knex } from "knex";
import type { PGlite } from "@electric-sql/pglite";
import type { Config } from "../config";
import { knexSetup } from "./knex-config";

export interface Database {
  knex: Knex;
  kind: "postgres" | "pglite";
  /** The embedded instance; undefined on PostgreSQL. */
  pglite: PGlite | undefined;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** True when the database answers and no migration is pending. */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

export function createDatabase(config: Config): Database {
  const setup = knexSetup(config);
  const knex = knexFactory(setup.config);
  let closed = false;
  return {
    knex,
    kind: config.databaseUrl ? "postgres" : "pglite",
    pglite: setup.pglite?.pglite,
    async migrate() {
      const [, applied] = (await knex.migrate.latest()) as [number, string[]];
      return applied;
    },
    async isReady() {
      try {
        const [completed, pending] = (await knex.migrate.list()) as [unknown[], unknown[]];
        return completed.length > 0 && pending.length === 0;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await knex.destroy();
      setup.pglite?.release();
    },
  };
}
