/**
 * One knex configuration for the server, the CLI and the knex CLI (knexfile.ts), so they always agree on
 * which database they open: PostgreSQL through pg when DATABASE_URL is set, else the embedded PGlite.
 */
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import ClientPgLite from "knex-pglite";
import { PGlite } from "@electric-sql/pglite";
import { type Config, MEMORY_DIR } from "../config";
import { ExtensionlessMigrationSource, SEEDS_DIR } from "./migration-source";
import { lockPgliteDir } from "./pglite-lock";
import { PreparingPostgresClient } from "./prepared";

// bigint (seq, counts, sizes) as numbers, as PGlite already does; every value we store fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface PgliteHandle {
  pglite: PGlite;
  release: () => void;
}

/** Opens (and locks) the embedded database. The returned handle must be closed with closePglite. */
export function openPglite(dir: string): PgliteHandle {
  if (dir === MEMORY_DIR) return { pglite: new PGlite(), release: () => undefined };
  const release = lockPgliteDir(dir);
  try {
    return { pglite: new PGlite(dir), release };
  } catch (error) {
    release();
    throw error;
  }
}

const common = {
  migrations: { migrationSource: new ExtensionlessMigrationSource() },
  seeds: { directory: SEEDS_DIR, loadExtensions: [".ts", ".js"] },
  ...knexSnakeCaseMappers(),
};

export interface KnexSetup {
  config: Knex.Config;
  /** The opened embedded database; undefined with DATABASE_URL. */
  pglite?: PgliteHandle;
}

/**
 * The knex config for `config`. The embedded database is opened (and locked) here, before knex exists, so
 * "in use by another process" surfaces as itself rather than as knex's "npm install" driver hint.
 */
export function knexSetup(config: Config): KnexSetup {
  if (config.databaseUrl) {
    return {
      config: {
        client: PreparingPostgresClient as unknown as typeof Knex.Client,
        connection: config.databaseUrl,
        pool: { min: 0, max: config.databasePoolMax },
        ...common,
        ...{ prepareStatements: config.databasePreparedStatements }, // read by PreparingPostgresClient
      },
    };
  }
  const handle = openPglite(config.pgliteDir);
  return {
    pglite: handle,
    config: {
      client: ClientPgLite,
      dialect: "postgres",
      connection: (() => ({ pglite: handle.pglite })) as unknown as Knex.StaticConnectionConfig,
      ...common,
    },
  };
}
