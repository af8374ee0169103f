/**
 * The operator commands run as operators run them: real child processes with a clean database
 * environment (the test runner's own DATABASE_URL, PGLITE_DIR and key ring are not inherited).
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createDatabase, type Database } from "../../src/db/database";
import { createEmptyDatabase, createTestDatabase, testConfig, testDbKind } from "./db";

export const ROOT = path.resolve(__dirname, "../..");
const exec = promisify(execFile);

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The test runner's environment without its database settings and key ring. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const {
    PARLEY_TEST_PG_ADMIN_URL: _a,
    DATABASE_URL: _b,
    PGLITE_DIR: _c,
    MESSAGE_ENCRYPTION_KEYS: _d,
    MESSAGE_ENCRYPTION_CURRENT_KEY: _e,
    ...inherited
  } = process.env;
  return inherited;
}

export async function run(command: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  try {
    const { stdout, stderr } = await exec(command, args, { cwd: ROOT, env: { ...cleanEnv(), ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** The knex CLI with knexfile.ts. */
export const knexCli = (args: string[], env: Record<string, string>) =>
  run(process.execPath, [path.join(ROOT, "node_modules/knex/bin/cli.js"), ...args], env);

/** `npm run cli -- <args>` (without npm's own output). */
export const parleyCli = (args: string[], env: Record<string, string>) =>
  run(process.execPath, ["-r", "@swc-node/register", path.join(ROOT, "src/cli.ts"), ...args], env);

/**
 * The database CLI commands run against, held by nobody in this process (the CLI gets it to itself): an empty
 * (or, with `migrated`, migrated) PostgreSQL database, or a PGlite folder in a temp dir.
 */
export interface CliTarget {
  env: Record<string, string>;
  /** Opens the target for `work` and closes it again: on PGlite the CLI cannot open a folder held open here. */
  use<T>(work: (db: Database) => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

export async function cliTarget({ migrated = false } = {}): Promise<CliTarget> {
  let env: Record<string, string>;
  let dispose: () => Promise<void>;
  if (testDbKind() === "postgres") {
    const database = migrated ? await createTestDatabase() : await createEmptyDatabase();
    await database.db.close();
    env = { DATABASE_URL: database.url! };
    dispose = () => database.dispose();
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-cli-"));
    env = { PGLITE_DIR: dir };
    dispose = async () => fs.rmSync(dir, { recursive: true, force: true });
  }
  const use = async <T>(work: (db: Database) => Promise<T>): Promise<T> => {
    const db = createDatabase(testConfig(env.DATABASE_URL, env));
    try {
      return await work(db);
    } finally {
      await db.close();
    }
  };
  if (migrated && testDbKind() === "pglite") await use((db) => db.migrate());
  return { env, use, dispose };
}
