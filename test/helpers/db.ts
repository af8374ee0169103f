/**
 * A fresh, migrated database for one test file, on the database the jest project targets:
 * postgres → a new database cloned from the migrated template (fast, isolated from other workers);
 * pglite → an in-memory PGlite (nothing is left on disk).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import knexFactory from "knex";
import { loadConfig, type Config, type Env } from "../../src/config";
import { createDatabase, type Database } from "../../src/db/database";
import { TEMPLATE_DB, withDatabase } from "../setup/pg-urls";

export type TestDbKind = "postgres" | "pglite";

export function testDbKind(): TestDbKind {
  const kind = process.env.PARLEY_TEST_DB;
  if (kind !== "postgres" && kind !== "pglite") throw new Error("PARLEY_TEST_DB must be postgres or pglite (set by jest.config.js)");
  return kind;
}

function adminUrl(): string {
  const url = process.env.PARLEY_TEST_PG_ADMIN_URL;
  if (!url) throw new Error("PARLEY_TEST_PG_ADMIN_URL is not set: the postgres global setup did not run");
  return url;
}

/** Transcript files of this test process, unless a test names its own folder; removed when the process ends. */
const TRANSCRIPT_DIR = path.join(os.tmpdir(), `parley-test-transcripts-${process.pid}`);
process.once("exit", () => fs.rmSync(TRANSCRIPT_DIR, { recursive: true, force: true }));

/** Settings for tests: quiet logs, an ephemeral port; `env` overrides anything. */
export function testConfig(databaseUrl: string | undefined, env: Env = {}): Config {
  return loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: process.env.PARLEY_TEST_LOG_LEVEL ?? "silent", // e.g. PARLEY_TEST_LOG_LEVEL=error to see hidden errors
    PORT: "0",
    HOST: "127.0.0.1",
    // Suites send hundreds of requests from one address; the rate-limit tests turn it back on.
    RATE_LIMIT_ENABLED: "false",
    TRANSCRIPT_DIR,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { PGLITE_DIR: "memory://" }),
    ...env,
  });
}

export interface TestDatabase {
  db: Database;
  config: Config;
  /** PostgreSQL only: the database's own URL (for a second connection or process). */
  url?: string;
  dispose(): Promise<void>;
}

/** Creates an empty database (no migrations), for migration tests. */
export async function createEmptyDatabase(env: Env = {}): Promise<TestDatabase> {
  return create(false, env);
}

/** Creates a migrated database. */
export async function createTestDatabase(env: Env = {}): Promise<TestDatabase> {
  return create(true, env);
}

async function create(migrated: boolean, env: Env): Promise<TestDatabase> {
  if (testDbKind() === "pglite") {
    const config = testConfig(undefined, env);
    const db = createDatabase(config);
    if (migrated) await db.migrate();
    return { db, config, dispose: () => db.close() };
  }
  const name = `parley_t_${randomBytes(6).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: adminUrl() });
  try {
    await admin.raw(migrated ? `create database ${name} template ${TEMPLATE_DB}` : `create database ${name}`);
  } finally {
    await admin.destroy();
  }
  const url = withDatabase(adminUrl(), name);
  const config = testConfig(url, env);
  const db = createDatabase(config);
  return {
    db,
    config,
    url,
    async dispose() {
      await db.close();
      const drop = knexFactory({ client: "pg", connection: adminUrl() });
      try {
        await drop.raw(`drop database if exists ${name} with (force)`);
      } finally {
        await drop.destroy();
      }
    },
  };
}
