/**
 * PostgreSQL's own tools, driven: pg_dump writes a backup, pg_restore reads it back. Parley only finds them,
 * checks that they can handle the server, and turns their verbose output into progress and their failures
 * into errors an operator can act on. The password never goes on the command line (where `ps` shows it):
 * it is passed as PGPASSWORD.
 */
import { execFile, spawn } from "node:child_process";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { promisify } from "node:util";
import type { Knex } from "knex";
import type { BackupConfig } from "../../config";

const exec = promisify(execFile);

/** A backup or restore that cannot go on; its message is for the operator and names what to do. */
export class BackupError extends Error {
  override name = "BackupError";
}

export type PgTool = "pg_dump" | "pg_restore";

function toolPath(config: Pick<BackupConfig, "pgBinDir">, tool: PgTool): string {
  return config.pgBinDir ? path.join(config.pgBinDir, tool) : tool;
}

/** The tool's major version, from `--version` ("pg_dump (PostgreSQL) 15.20 (Debian …)"). */
async function toolMajor(config: Pick<BackupConfig, "pgBinDir">, tool: PgTool): Promise<number> {
  const file = toolPath(config, tool);
  let output: string;
  try {
    output = (await exec(file, ["--version"], { timeout: 30_000 })).stdout;
  } catch (error) {
    const where = config.pgBinDir ? `in PG_BIN_DIR (${config.pgBinDir})` : "on PATH";
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "EACCES") {
      throw new BackupError(`${tool} was not found ${where}: install the PostgreSQL client tools (Debian: postgresql-client) or set PG_BIN_DIR to their folder`);
    }
    throw new BackupError(`${file} --version failed: ${(error as Error).message}`);
  }
  const major = /\(PostgreSQL\)\s+(\d+)/.exec(output)?.[1];
  if (!major) throw new BackupError(`${file} does not look like PostgreSQL's ${tool} (its --version said "${output.trim().slice(0, 100)}")`);
  return Number(major);
}

/**
 * The tool's path once it is known to handle the server: pg_dump refuses a server newer than itself, and a
 * pg_restore older than the pg_dump that wrote a file may not read it, so both must be at least the server's major.
 */
export async function checkedTool(knex: Knex, config: Pick<BackupConfig, "pgBinDir">, tool: PgTool): Promise<string> {
  const [major, server] = await Promise.all([
    toolMajor(config, tool),
    knex.raw("select current_setting('server_version_num')::int / 10000 as major").then((result) => Number(result.rows[0].major)),
  ]);
  if (major < server) {
    throw new BackupError(
      `${tool} ${major} is older than the database server (PostgreSQL ${server}) and cannot handle it: install the client tools of ${server} or later, or set PG_BIN_DIR to them`,
    );
  }
  return toolPath(config, tool);
}

/** The URL without its password, and the password for PGPASSWORD. */
function connection(databaseUrl: string): { url: string; env: NodeJS.ProcessEnv } {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = "";
  return { url: url.toString(), env: password ? { ...process.env, PGPASSWORD: password } : process.env };
}

/** The tool's stderr: verbose lines counted by `isStep`, the rest kept (the last ones) for an error message. */
function watchStderr(stream: Readable, isStep: (line: string) => boolean, onStep: () => void): () => string {
  const kept: string[] = [];
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (isStep(line)) onStep();
      else if (/error|fatal|could not|warning/i.test(line)) kept.push(line.trim());
      if (kept.length > 10) kept.shift();
    }
  });
  return () => [...kept, partial.trim()].filter(Boolean).join("; ") || "no message";
}

export interface DumpProcess {
  /** The dump's bytes; it errors, instead of ending, when pg_dump fails (even after its last byte). */
  stream: Readable;
  /** Tables pg_dump has started dumping the rows of. */
  tablesDone(): number;
}

/**
 * pg_dump of the whole database in the custom format (what pg_restore reads; compressed), without owners or
 * grants so it restores into any database as whoever restores it. pg_dump takes one snapshot, so the backup is
 * consistent however long it runs while the servers keep writing.
 */
export function spawnPgDump(tool: string, databaseUrl: string): DumpProcess {
  const { url, env } = connection(databaseUrl);
  const child = spawn(tool, ["--format=custom", "--no-owner", "--no-acl", "--verbose", `--dbname=${url}`], { env, stdio: ["ignore", "pipe", "pipe"] });
  let tables = 0;
  const message = watchStderr(child.stderr, (line) => line.includes("dumping contents of table"), () => tables++);
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new BackupError(`pg_dump could not start: ${error.message}`)));
    child.once("close", (code, signal) => (code === 0 ? resolve() : reject(new BackupError(`pg_dump failed (${signal ?? `exit ${code}`}): ${message()}`))));
  });
  exited.catch(() => undefined); // observed through the stream
  // The stream ends only once pg_dump has exited well: a dump that fails after its last byte must not be stored.
  const gate = new Transform({
    transform: (chunk, _encoding, done) => done(null, chunk),
    flush: (done) => void exited.then(() => done(), done),
  });
  child.stdout.on("error", (error) => gate.destroy(error));
  exited.catch((error: Error) => gate.destroy(error));
  child.stdout.pipe(gate);
  gate.once("close", () => child.exitCode === null && child.kill());
  return { stream: gate, tablesDone: () => tables };
}

/** The number of tables whose rows the archive holds (pg_restore --list), which also proves it is one. */
export async function archiveTableCount(tool: string, file: string): Promise<number> {
  try {
    const { stdout } = await exec(tool, ["--list", file], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout.split("\n").filter((line) => / TABLE DATA /.test(line)).length;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
    throw new BackupError(`the file is not a backup pg_restore can read: ${stderr.split("\n")[0]}`);
  }
}

/**
 * pg_restore into the database, in one transaction that stops at the first error: a restore that fails leaves
 * the database as it was before pg_restore started.
 */
export async function runPgRestore(tool: string, databaseUrl: string, file: string, onTable: () => void): Promise<void> {
  const { url, env } = connection(databaseUrl);
  const child = spawn(tool, ["--no-owner", "--no-acl", "--exit-on-error", "--single-transaction", "--verbose", `--dbname=${url}`, file], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const message = watchStderr(child.stderr, (line) => line.includes("processing data for table"), onTable);
  await new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new BackupError(`pg_restore could not start: ${error.message}`)));
    child.once("close", (code, signal) => (code === 0 ? resolve() : reject(new BackupError(`pg_restore failed (${signal ?? `exit ${code}`}): ${message()}`))));
  });
}
