/**
 * A throwaway PostgreSQL cluster for the test run, made with the installed initdb/pg_ctl. PostgreSQL refuses
 * to run as root, so as root the cluster belongs to the `postgres` user. TEST_DATABASE_URL skips all this
 * and uses that server instead (its user must be allowed to create databases).
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";

const STATE_FILE = path.join(os.tmpdir(), `parley-test-pg-${process.ppid}-${process.pid}.json`);

export interface ClusterState {
  /** Admin connection string (database "postgres"). */
  adminUrl: string;
  /** Set when this run started the cluster and must stop it. */
  dataDir?: string;
  runAs?: string;
  /** The postgres options it was started with (pg_ctl start does not remember them). */
  serverArgs?: string;
}

function findBin(name: string): string {
  const candidates = [
    ...(process.env.PG_BIN ? [path.join(process.env.PG_BIN, name)] : []),
    ...fs
      .readdirSync("/usr/lib/postgresql", { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join("/usr/lib/postgresql", d.name, "bin", name))
      .sort()
      .reverse(),
  ];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`${name} not found: install PostgreSQL (Debian: postgresql) or set TEST_DATABASE_URL`);
  return found;
}

/** A loopback port that was free a moment ago (nothing listens on it now). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function run(bin: string, args: string[], runAs?: string): void {
  if (runAs) execFileSync("runuser", ["-u", runAs, "--", bin, ...args], { stdio: "pipe" });
  else execFileSync(bin, args, { stdio: "pipe" });
}

/** `run` without blocking the event loop: an in-process server under test goes on meanwhile. */
async function runAsync(bin: string, args: string[], runAs?: string): Promise<void> {
  if (runAs) await promisify(execFile)("runuser", ["-u", runAs, "--", bin, ...args]);
  else await promisify(execFile)(bin, args);
}

/**
 * `serverOptions`: further `-c name=value` settings (the benchmark's pg_stat_statements). `own`: always a
 * cluster of this caller's, even with TEST_DATABASE_URL (fault tests stop and start it).
 */
export async function startCluster(serverOptions: string[] = [], own = false): Promise<ClusterState> {
  if (process.env.TEST_DATABASE_URL && !own) return { adminUrl: process.env.TEST_DATABASE_URL };
  const runAs = process.getuid?.() === 0 ? "postgres" : undefined;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-pg-"));
  const socketDir = path.join(dataDir, "sock");
  fs.mkdirSync(socketDir);
  if (runAs) execFileSync("chown", ["-R", runAs, dataDir]);
  const port = await freePort();
  run(findBin("initdb"), ["-D", path.join(dataDir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], runAs);
  const state: ClusterState = {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    runAs,
    serverArgs: `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 ${serverOptions.join(" ")}`,
  };
  await resumeCluster(state);
  return state;
}

/**
 * Stops the server of a cluster this run started, keeping its data, as an outage would: "fast" ends every
 * session with an admin-shutdown error, "immediate" drops them as a crash does.
 */
export async function pauseCluster(state: ClusterState, mode: "fast" | "immediate"): Promise<void> {
  if (!state.dataDir) throw new Error("pauseCluster needs a cluster of this run's own");
  await runAsync(findBin("pg_ctl"), ["-D", path.join(state.dataDir, "data"), "-m", mode, "-w", "stop"], state.runAs);
}

/** Starts a paused cluster again, on the same port and settings; resolves once it accepts connections. */
export async function resumeCluster(state: ClusterState): Promise<void> {
  if (!state.dataDir) throw new Error("resumeCluster needs a cluster of this run's own");
  const dir = state.dataDir;
  await runAsync(findBin("pg_ctl"), ["-D", path.join(dir, "data"), "-l", path.join(dir, "log"), "-w", "-t", "60", "-o", state.serverArgs ?? "", "start"], state.runAs);
}

export function stopCluster(state: ClusterState): void {
  if (!state.dataDir) return;
  try {
    run(findBin("pg_ctl"), ["-D", path.join(state.dataDir, "data"), "-m", "immediate", "-w", "stop"], state.runAs);
  } finally {
    fs.rmSync(state.dataDir, { recursive: true, force: true });
  }
}

export function saveState(state: ClusterState): void {
  fs.writeFileSync(STATE_FILE, JSON.stringify(state));
}

export function loadState(): ClusterState {
  return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as ClusterState;
}

export function clearState(): void {
  fs.rmSync(STATE_FILE, { force: true });
}
