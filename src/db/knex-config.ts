/**
 * One knex configuration for the server, the CLI and the knex CLI (knexfile.ts), so they always agree on
 * which database they open: PostgreSQL through pg when DATABASE_URL is set, else the embedded PGlite.
 */
import type { Knex } from "knex";
import { knexSnakeCaseMappers } from "objection";
import pg from "pg";
import ClientPgLite from "knex-pglite";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { type Config, MEMORY_DIR } from "../config";
import { ExtensionlessMigrationSource, SEEDS_DIR } from "./migration-source";
import { lockPgliteDir } from "./pglite-lock";
import { PreparingPostgresClient } from "./prepared";
import { createLogger } from "../logger";

// bigint (seq, counts, sizes) as numbers, as PGlite already does; every value we store fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface PgliteHandle {
  pglite: PGlite;
  release: () => void;
}

/** pgvector, bundled: the knowledge migration creates the extension. */
const PGLITE_OPTIONS = { extensions: { vector } };

/** Opens (and locks) the embedded database. The returned handle must be closed with closePglite. */
export function openPglite(dir: string): PgliteHandle {
  if (dir === MEMORY_DIR) return { pglite: new PGlite(PGLITE_OPTIONS), release: () => undefined };
  const release = lockPgliteDir(dir);
  try {
    return { pglite: new PGlite(dir, PGLITE_OPTIONS), release };
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

/**
 * knex reports pool trouble (a connection lost, an acquire aborted) with console.log; through pino instead,
 * so it is JSON on the log stream at LOG_LEVEL like everything else. The queries concerned fail and are
 * answered (SERVICE_UNAVAILABLE), so a warning is enough.
 */
function knexLog(config: Config): Knex.Config["log"] {
  const log = createLogger(config).child({ component: "knex" });
  const text = (message: unknown) => (typeof message === "string" ? message : String((message as Error)?.message ?? message));
  return {
    warn: (message: unknown) => log.warn(text(message)),
    error: (message: unknown) => log.warn(text(message)),
    deprecate: (method: string, alternative: string) => log.warn(`${method} is deprecated, use ${alternative}`),
    debug: (message: unknown) => log.debug(text(message)),
  };
}

export interface KnexSetup {
  config: Knex.Config;
  /** The opened embedded database; undefined with DATABASE_URL. */
  pglite?: PgliteHandle;
}

/**
 * What a knex instance is for: "api" statements are cancelled after DATABASE_STATEMENT_TIMEOUT_MS, so one
 * runaway query cannot hold a pool connection for long; "maintenance" (exports, migrations, re-encryption)
 * may legitimately run long and has no statement timeout, on a small pool of its own.
 */
export type KnexPurpose = "api" | "maintenance";

/** Connections of the maintenance pool: exports and the CLI's long jobs, a few at a time. */
export const MAINTENANCE_POOL_MAX = 4;

/** PostgreSQL connection settings for `purpose`: every wait (connect, pool) bounded, statements too for the API. */
export function postgresConfig(config: Config, purpose: KnexPurpose): Knex.Config {
  const statementTimeout = purpose === "api" ? config.databaseStatementTimeoutMs : 0;
  return {
    client: PreparingPostgresClient as unknown as typeof Knex.Client,
    connection: {
      connectionString: config.databaseUrl,
      // pg sends it with the startup message: every statement of the connection is bounded, none costs a SET.
      ...(statementTimeout ? { statement_timeout: statementTimeout } : {}),
      connectionTimeoutMillis: config.databaseAcquireTimeoutMs,
    } as Knex.PgConnectionConfig,
    pool: { min: 0, max: purpose === "api" ? config.databasePoolMax : MAINTENANCE_POOL_MAX },
    acquireConnectionTimeout: config.databaseAcquireTimeoutMs,
    log: knexLog(config),
    ...common,
    ...{ prepareStatements: config.databasePreparedStatements }, // read by PreparingPostgresClient
  };
}

/**
 * The knex config for `config`. The embedded database is opened (and locked) here, before knex exists, so
 * "in use by another process" surfaces as itself rather than as knex's "npm install" driver hint.
 */
export function knexSetup(config: Config, purpose: KnexPurpose = "api"): KnexSetup {
  if (config.databaseUrl) return { config: postgresConfig(config, purpose) };
  const handle = openPglite(config.pgliteDir);
  return {
    pglite: handle,
    config: {
      client: ClientPgLite,
      dialect: "postgres",
      connection: (() => ({ pglite: handle.pglite })) as unknown as Knex.StaticConnectionConfig,
      log: knexLog(config),
      ...common,
    },
  };
}
