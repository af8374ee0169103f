/**
 * A real PgBouncer (the Debian package's /usr/sbin/pgbouncer; .ci/run installs it) in transaction mode in front
 * of a test PostgreSQL, on a free port, with its own config, log and pid file in a temporary folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../setup/pg-cluster";

export const PGBOUNCER = "/usr/sbin/pgbouncer";

export interface PgBouncer {
  /** `databaseUrl` with PgBouncer's address instead of PostgreSQL's. */
  url: string;
  /** PgBouncer's admin console (SHOW STATS, SHOW POOLS). */
  admin(command: string): Promise<Record<string, unknown>[]>;
  log(): string;
  stop(): Promise<void>;
}

/** Starts PgBouncer for `databaseUrl` with `poolSize` server connections per database and user. */
export async function startPgBouncer(databaseUrl: string, poolSize: number): Promise<PgBouncer> {
  if (!fs.existsSync(PGBOUNCER)) throw new Error(`${PGBOUNCER} is missing: install the Debian package pgbouncer (.ci/run does)`);
  const target = new URL(databaseUrl);
  const user = decodeURIComponent(target.username);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-pgbouncer-"));
  fs.chmodSync(dir, 0o777); // run as postgres when we are root (PgBouncer refuses root)
  const port = await freePort();
  fs.writeFileSync(path.join(dir, "users.txt"), `"${user}" ""\n`);
  fs.writeFileSync(
    path.join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${target.hostname} port=${target.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${path.join(dir, "users.txt")}`,
      `admin_users = ${user}`,
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      "max_client_conn = 1000",
      // pg sends these as startup parameters; PgBouncer would refuse the connection over them. statement_timeout
      // is then not applied per connection: behind PgBouncer it belongs on the role or the database.
      "ignore_startup_parameters = extra_float_digits,statement_timeout,options",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
    ].join("\n") + "\n",
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(PGBOUNCER, [path.join(dir, "pgbouncer.ini"), ...(asRoot ? ["-u", "postgres"] : [])], { stdio: "ignore" });
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  const adminUrl = new URL(url);
  adminUrl.pathname = "/pgbouncer";
  const log = () => (fs.existsSync(path.join(dir, "pgbouncer.log")) ? fs.readFileSync(path.join(dir, "pgbouncer.log"), "utf8") : "");
  const admin = async (command: string) => {
    const client = new pg.Client({ connectionString: adminUrl.toString() });
    await client.connect();
    try {
      return (await client.query({ text: command, queryMode: "simple" } as pg.QueryConfig)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await admin("SHOW VERSION");
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`PgBouncer did not start: ${(error as Error).message}\n${log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url: url.toString(),
    admin,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGINT");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
