/**
 * The database handle the app, CLI and tests share: one knex instance, plus the embedded PGlite instance
 * when there is no DATABASE_URL (its LISTEN is used for live events). Objection models are deliberately
 * not bound to a global knex: every query names its knex (or trx), so a forgotten one fails loudly
 * instead of running outside its transaction, and tests can hold several databases in one process.
 */
import knexFactory, { type Knex } from "knex";
import type { PGlite } from "@electric-sql/pglite";
import type { Config } from "../config";
import { knexConfig, type PgliteHandle } from "./knex-config";

export interface Database {
  knex: Knex;
  kind: "postgres" | "pglite";
  /** The embedded instance (opened on first use); undefined on PostgreSQL. */
  pglite(): Promise<PGlite | undefined>;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** True when the database answers and no migration is pending. */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

export function createDatabase(config: Config): Database {
  let handle: PgliteHandle | undefined;
  const knex = knexFactory(knexConfig(config, (h) => (handle = h)));
  let closed = false;
  return {
    knex,
    kind: config.databaseUrl ? "postgres" : "pglite",
    async pglite() {
      if (config.databaseUrl) return undefined;
      if (!handle) await knex.raw("select 1"); // makes knex-pglite open its connection
      return handle?.pglite;
    },
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
      handle?.release();
    },
  };
}
