/**
 * The database handle the app, CLI and tests share: one knex instance, plus the embedded PGlite instance
 * when there is no DATABASE_URL (its LISTEN is used for live events). Objection models are deliberately
 * not bound to a global knex: every query names its knex (or trx), so a forgotten one fails loudly
 * instead of running outside its transaction, and tests can hold several databases in one process.
 */
import knexFactory, { type Knex } from "knex";
import type { PGlite } from "@electric-sql/pglite";
import type { Config } from "../config";
import { knexSetup, postgresConfig } from "./knex-config";

export interface Database {
  /** API work: statements bounded by DATABASE_STATEMENT_TIMEOUT_MS. */
  knex: Knex;
  /**
   * Work that may legitimately run long (exports, migrations, re-encryption): no statement timeout, a small
   * pool of its own, opened on first use. On PGlite it is `knex` (one connection, no statement timeout).
   */
  readonly maintenance: Knex;
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
  let maintenance: Knex | undefined;
  let closed = false;
  return {
    knex,
    get maintenance() {
      if (!config.databaseUrl) return knex;
      return (maintenance ??= knexFactory(postgresConfig(config, "maintenance")));
    },
    kind: config.databaseUrl ? "postgres" : "pglite",
    pglite: setup.pglite?.pglite,
    async migrate() {
      const [, applied] = (await this.maintenance.migrate.latest()) as [number, string[]];
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
      await Promise.all([knex.destroy(), maintenance?.destroy()]);
      setup.pglite?.release();
    },
  };
}
