/**
 * `npm run bench`: Parley against PostGraphile 5 and the floor (bench/floor.ts) on the DESIGN.md workload,
 * on Node 20 and Node 24 in the same run, then Parley on the embedded PGlite.
 *
 * 1. The Node versions (BENCH_NODES): the Node running this script, and Node 24 installed by
 *    scripts/node24.sh into .cache/node24 when missing (bench/nodes.ts). One that cannot be had is left out,
 *    and the results file says so.
 * 2. A throwaway PostgreSQL cluster (with pg_stat_statements), Parley's migrations, the workload seeded with
 *    set-based SQL (bench/workload.ts), an API key per member for Parley.
 * 3. Each system runs as its own child process with the same pool size (POOL_MAX, default 10), once per Node
 *    version (all of them started with that node executable, all running for the whole run): Parley in
 *    production mode, PostGraphile (amber preset), the floor. The load generator (autocannon) runs in this
 *    process.
 * 4. Before timing: H and I answers of all systems on all Node versions are compared (normal form,
 *    bench/operations.ts) on random targets, and each one's W is checked to have written its message.
 * 5. SQL statements and PostgreSQL execution time per request: pg_stat_statements over sequential requests
 *    per Node version, system and operation (the most expensive statements are printed to the console).
 * 6. Throughput: autocannon with CONNECTIONS (32) connections, a random member and conversation per request.
 *    Per round and operation, the Node versions take turns (20 24, then 24 20, ...) and within one Node
 *    version the systems rotate (A B C, B C A, C A B, ...); each gets a warm-up then a measured run, then
 *    at LOW_CONNECTIONS (4) a short warm-up and a measured run for latency below saturation (at 32
 *    connections p50 is about 32 / req/s by Little's law). Every measured run also reads the CPU time of
 *    the server process and of the whole PostgreSQL cluster from /proc (bench/cpu.ts) and divides it by the
 *    requests completed.
 * 7. Parley on PGlite (its one embedded connection), on the Node running this script: a copy of the
 *    workload, the same H, I and W.
 * Results: bench/results/<YYYY-MM-DD>[-BENCH_LABEL].md (also printed).
 *
 * Env: BENCH_NODES (20,24), BENCH_ROUNDS (3), BENCH_WARMUP_S (3), BENCH_DURATION_S (10), BENCH_CONNECTIONS (32),
 *      BENCH_LOW_CONNECTIONS (4; 0 skips those runs), BENCH_LOW_WARMUP_S (1), BENCH_LOW_DURATION_S (5), POOL_MAX (10),
 *      BENCH_SYSTEMS (Parley,PostGraphile,floor), BENCH_OPS (H,I,W), BENCH_PGLITE (1; 0 skips it), BENCH_LABEL (suffix of the file),
 *      BENCH_PROFILE (a folder: Parley runs with --cpu-prof into it).
 * The default run takes about 20 minutes on 2 cores (of which about 17 measuring: 3 rounds × 3 operations ×
 * 3 systems × 2 Node versions × (3 + 10 + 1 + 5) s).
 */
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { performance } from "node:perf_hooks";
import pg from "pg";
import autocannon from "autocannon";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { createApiKey } from "../src/modules/api-key/api-key.service";
import { percentile, processMemoryMiB, writeResults } from "./measure";
import { clockTicks, postmasterPid, ticksToMs, treeTicks } from "./cpu";
import { resolveNodes, type NodeVersion } from "./nodes";
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess } from "../test/helpers/process";
import { seedWorkload, type SeedStep } from "./workload";
import { floor, OPERATIONS as ALL_OPERATIONS, parley, postgraphile, type OperationName, type System, type Target } from "./operations";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const LOW_CONNECTIONS = Number(process.env.BENCH_LOW_CONNECTIONS ?? 4);
const LOW_WARMUP_S = Number(process.env.BENCH_LOW_WARMUP_S ?? 1);
const LOW_DURATION_S = Number(process.env.BENCH_LOW_DURATION_S ?? 5);
const NODES = (process.env.BENCH_NODES ?? "20,24").split(",");
const POOL_MAX = process.env.POOL_MAX ?? "10";
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? "Parley,PostGraphile,floor").split(",");
const OPERATIONS = ALL_OPERATIONS.filter((op) => (process.env.BENCH_OPS ?? "H,I,W").split(",").includes(op));
const STATEMENT_SAMPLES = 200;
const CHECK_SAMPLES = 25;
const DB = "parley_bench";

interface Member {
  userId: string;
  token: string;
  conversations: string[];
}

interface Running {
  system: System;
  node: NodeVersion;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

interface LoadResult {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  /** Requests completed in the measured run. */
  requests: number;
}

interface Measurement extends LoadResult {
  /** The Node version's label ("20", "24"). */
  node: string;
  system: string;
  op: OperationName;
  round: number;
  connections: number;
  /** CPU ms of the server process (threads and children included) per request completed. */
  serverCpuMs: number;
  /** CPU ms of the whole PostgreSQL cluster per request completed; undefined without a cluster of our own (PGlite, TEST_DATABASE_URL). */
  pgCpuMs?: number;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const BODIES = Array.from({ length: 64 }, (_, i) => `bench write ${i} `.repeat(20).slice(0, 200));

function randomTarget(members: Member[]): Target {
  const member = pick(members);
  return { userId: member.userId, token: member.token, conversationId: pick(member.conversations), content: pick(BODIES) };
}


/** A bench/*.ts server in a child process; resolves once it prints `listening <port>`. */
function startScript(system: System, node: NodeVersion, file: string, env: Record<string, string>): Promise<Running> {
  const child: ChildProcess = spawn(node.execPath, ["-r", "@swc-node/register", path.join(__dirname, file)], {
    cwd: __dirname,
    env: { PATH: process.env.PATH, NODE_ENV: "production", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (\d+)/.exec(output);
      if (match) resolve({ system, node, url: `http://127.0.0.1:${match[1]}`, pid: child.pid!, stop });
    });
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}:\n${output}`)));
  });
}

async function startSystem(name: string, node: NodeVersion, databaseUrl: string, env: Record<string, string> = {}): Promise<Running> {
  if (name === "Parley") {
    const server = await startServerProcess(
      {
        NODE_ENV: "production",
        LOG_LEVEL: "info",
        DATABASE_POOL_MAX: POOL_MAX,
        // Limits stay on (their cost is part of Parley), high enough for one client address.
        RATE_LIMIT_PER_IP: "1000000000",
        RATE_LIMIT_MEMBER: "1000000000",
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
        ...env,
      },
      120_000,
      process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
      { execPath: node.execPath },
    );
    return { system: parley, node, url: server.url, pid: server.child.pid!, stop: server.stop };
  }
  const script = name === "PostGraphile" ? { system: postgraphile, file: "postgraphile.ts" } : { system: floor, file: "floor.ts" };
  return startScript(script.system, node, script.file, { DATABASE_URL: databaseUrl, POOL_MAX, PORT: "0" });
}

/** "Parley (Node 24)": a running system with its Node version. */
const nameOf = (running: Running) => `${running.system.name} (Node ${running.node.label})`;

async function call(running: Running, op: OperationName, target: Target) {
  const request = running.system.request(op, target);
  const response = await fetch(running.url + request.path, { method: "POST", headers: request.headers, body: request.body });
  return running.system.normalise(op, await response.json());
}

/** Same H and I answers from every system; every system's W writes its message. */
async function checkAnswers(systems: Running[], members: Member[], knex: pg.Pool): Promise<string[]> {
  const notes: string[] = [];
  for (const op of ["H", "I"] as const) {
    for (let i = 0; i < CHECK_SAMPLES; i += 1) {
      const target = randomTarget(members);
      const answers = await Promise.all(systems.map((running) => call(running, op, target)));
      for (const [index, answer] of answers.entries()) {
        if (!isDeepStrictEqual(answer, answers[0])) {
          throw new Error(`${nameOf(systems[index])} answers ${op} differently from ${nameOf(systems[0])}:\n${JSON.stringify(answer).slice(0, 800)}\n${JSON.stringify(answers[0]).slice(0, 800)}`);
        }
      }
    }
    notes.push(`${op}: ${CHECK_SAMPLES} random targets, identical answers from ${systems.map(nameOf).join(", ")}`);
  }
  for (const running of systems) {
    const target = { ...randomTarget(members), content: `check write by ${nameOf(running)}` };
    const id = await call(running, "W", target);
    const { rows } = await knex.query("select conversation_id, author_id, content from messages where id = $1", [id]);
    if (rows[0]?.conversation_id !== target.conversationId || rows[0]?.author_id !== target.userId || rows[0]?.content !== target.content) {
      throw new Error(`${nameOf(running)}'s W did not write its message (id ${String(id)})`);
    }
  }
  notes.push(`W: each system's message (on each Node version) found in the table with its conversation, author and text`);
  return notes;
}

interface StatementCost {
  /** Statements per request (utility statements such as BEGIN/COMMIT included). */
  statements: number;
  /** Milliseconds PostgreSQL spent planning and executing them, per request. */
  databaseMs: number;
  /** Of which planning. */
  planMs: number;
  /** The statements by execution time, most expensive first (for the console, to see where the time goes). */
  top: string[];
}

/** What one request costs in PostgreSQL: pg_stat_statements over STATEMENT_SAMPLES sequential requests. */
async function statementCost(running: Running, op: OperationName, members: Member[], admin: pg.Pool): Promise<StatementCost> {
  await admin.query("select pg_stat_statements_reset()");
  for (let i = 0; i < STATEMENT_SAMPLES; i += 1) await call(running, op, randomTarget(members));
  const { rows } = await admin.query(
    `select calls::int, (total_plan_time + total_exec_time)::float8 as ms, total_plan_time::float8 as plan, left(regexp_replace(query, '\\s+', ' ', 'g'), 160) as query
       from pg_stat_statements s join pg_database d on d.oid = s.dbid
      where d.datname = $1 and s.query not ilike '%pg_stat_statements%' order by total_plan_time + total_exec_time desc`,
    [DB],
  );
  const sum = (key: "calls" | "ms" | "plan") => rows.reduce((total: number, row: Record<string, number>) => total + row[key], 0);
  return {
    statements: sum("calls") / STATEMENT_SAMPLES,
    databaseMs: sum("ms") / STATEMENT_SAMPLES,
    planMs: sum("plan") / STATEMENT_SAMPLES,
    top: rows.slice(0, 5).map((row: { calls: number; ms: number; plan: number; query: string }) => `${(row.ms / STATEMENT_SAMPLES).toFixed(3)} ms/request (planning ${(row.plan / STATEMENT_SAMPLES).toFixed(3)}), ${row.calls} calls: ${row.query}`),
  };
}


/** autocannon for `seconds` with `connections`, a random target per request; latencies (ms) from its response events. */
function load(running: Running, op: OperationName, members: Member[], connections: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const first = running.system.request(op, randomTarget(members));
    const instance = autocannon(
      {
        url: running.url + first.path,
        connections,
        duration: seconds,
        requests: [
          {
            method: "POST",
            setupRequest: (request: any) => {
              const next = running.system.request(op, randomTarget(members));
              return { ...request, headers: next.headers, body: next.body };
            },
          },
        ],
      },
      (error: Error | null, result: any) => {
        if (error) return reject(error);
        if (result.non2xx || result.errors || result.timeouts) {
          return reject(new Error(`${nameOf(running)} ${op}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`));
        }
        const sorted = Float64Array.from(latencies).sort();
        resolve({
          rps: result.requests.total / result.duration,
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          p99: percentile(sorted, 99),
          requests: result.requests.total,
        });
      },
    );
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  });
}

interface MeasureOptions {
  round: number;
  connections: number;
  warmupS: number;
  durationS: number;
  /** The PostgreSQL cluster's postmaster, whose process tree's CPU is read around the measured run. */
  postmaster?: number;
}

/**
 * A warm-up, then a measured run with the CPU time of the server's process tree and of PostgreSQL's read
 * from /proc just before and just after it (bench/cpu.ts), divided by the requests completed.
 */
async function measure(running: Running, op: OperationName, members: Member[], options: MeasureOptions): Promise<Measurement> {
  await load(running, op, members, options.connections, options.warmupS);
  const server0 = treeTicks(running.pid);
  const pg0 = options.postmaster === undefined ? 0 : treeTicks(options.postmaster);
  const result = await load(running, op, members, options.connections, options.durationS);
  const server1 = treeTicks(running.pid);
  const pg1 = options.postmaster === undefined ? 0 : treeTicks(options.postmaster);
  const requests = Math.max(1, result.requests);
  return {
    node: running.node.label,
    system: running.system.name,
    op,
    round: options.round,
    connections: options.connections,
    ...result,
    serverCpuMs: ticksToMs(server1 - server0) / requests,
    pgCpuMs: options.postmaster === undefined ? undefined : ticksToMs(pg1 - pg0) / requests,
  };
}

async function loadMembers(knex: pg.Pool): Promise<Member[]> {
  const { rows } = await knex.query<{ id: string; conversations: string[] }>(
    `select u.id, array_agg(c.id order by c.id) as conversations from users u join conversations c on c.owner_id = u.id
      where u.role = 'member' group by u.id order by u.id`,
  );
  return rows.map((row) => ({ userId: row.id, token: "", conversations: row.conversations }));
}

async function createTokens(databaseUrl: string | undefined, pgliteDir: string | undefined, members: Member[]): Promise<void> {
  const db = createDatabase(loadConfig(databaseUrl ? { DATABASE_URL: databaseUrl } : { PGLITE_DIR: pgliteDir }));
  try {
    for (const member of members) member.token = (await createApiKey(db.knex, member.userId, "bench")).secret;
  } finally {
    await db.close();
  }
}

/** W as PostGraphile sees it: a volatile function, exposed as a mutation. Same statement as the floor's. */
const BENCH_ADD_MESSAGE = `create function bench_add_message(conversation_id uuid, author_id uuid, content text) returns messages
  language sql volatile as $$
    with c as (
      update conversations set last_seq = last_seq + 1, message_count = message_count + 1, updated_at = now()
      where id = bench_add_message.conversation_id returning id, last_seq)
    insert into messages (conversation_id, seq, author_id, role, content)
    select c.id, c.last_seq, bench_add_message.author_id, 'user', bench_add_message.content from c
    returning *
  $$`;

const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? "–" : value.toFixed(2));
const median = (values: number[]) => (values.length ? [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] : NaN);
/** `list` starting at its `k`-th element: round r runs the systems in the order rotate(systems, r - 1). */
const rotate = <T>(list: readonly T[], k: number): T[] => [...list.slice(k % list.length), ...list.slice(0, k % list.length)];

async function main(): Promise<void> {
  const started = performance.now();
  const { nodes, problems } = resolveNodes(NODES);
  if (!nodes.length) throw new Error(`none of the Node versions of BENCH_NODES (${NODES.join(",")}) could be had`);
  const cluster = await startCluster(["-c shared_preload_libraries=pg_stat_statements", "-c pg_stat_statements.track=all", "-c pg_stat_statements.track_planning=on"]);
  // PostgreSQL's CPU is read from its process tree; a server of TEST_DATABASE_URL is not ours to read.
  const postmaster = cluster.dataDir ? postmasterPid(path.join(cluster.dataDir, "data")) : undefined;
  const lines: string[] = [];
  const measurements: Measurement[] = [];
  const statements = new Map<string, StatementCost>();
  const memory = new Map<string, { rss: number; peak: number }>();
  let checks: string[] = [];
  let seedSteps: SeedStep[] = [];
  let pgliteResults: Measurement[] = [];
  let pgliteSeed = 0;
  try {
    const admin = new pg.Pool({ connectionString: cluster.adminUrl, max: 2 });
    admin.on("error", () => undefined); // an idle client cut off when the cluster stops after a failure
    await admin.query(`create database ${DB}`);
    const databaseUrl = withDatabase(cluster.adminUrl, DB);
    const owner = new pg.Client({ connectionString: databaseUrl });
    await owner.connect();
    const db = createDatabase(loadConfig({ DATABASE_URL: databaseUrl }));
    await db.migrate();
    await db.close();
    console.error("seeding the workload...");
    seedSteps = await seedWorkload(owner);
    await owner.query(BENCH_ADD_MESSAGE);
    await owner.query("create extension pg_stat_statements");
    await owner.end();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on("error", () => undefined);
    const members = await loadMembers(pool);
    await createTokens(databaseUrl, undefined, members);

    // Every system on every Node version, all running for the whole run (idle while another is measured).
    const systems = new Map<string, Running[]>(nodes.map((node) => [node.label, []]));
    const all = () => [...systems.values()].flat();
    try {
      for (const node of nodes) {
        for (const name of SYSTEMS) systems.get(node.label)!.push(await startSystem(name, node, databaseUrl));
      }
      checks = await checkAnswers(all(), members, pool);
      for (const running of all()) {
        for (const op of OPERATIONS) {
          const cost = await statementCost(running, op, members, pool);
          statements.set(`${running.node.label}:${running.system.name}:${op}`, cost);
          console.error(`${nameOf(running)} ${op}: ${cost.statements.toFixed(2)} statements, ${cost.databaseMs.toFixed(3)} ms in PostgreSQL per request (planning ${cost.planMs.toFixed(3)})\n  ${cost.top.join("\n  ")}`);
        }
      }
      for (let round = 1; round <= ROUNDS; round += 1) {
        for (const op of OPERATIONS) {
          for (const node of round % 2 === 1 ? nodes : [...nodes].reverse()) {
            for (const running of rotate(systems.get(node.label)!, round - 1)) {
              console.error(`round ${round}: ${nameOf(running)} ${op}...`);
              const high = await measure(running, op, members, { round, connections: CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S, postmaster });
              measurements.push(high);
              const key = `${node.label}:${running.system.name}`;
              const now = processMemoryMiB(running.pid);
              memory.set(key, { rss: Math.max(memory.get(key)?.rss ?? 0, now.rss), peak: now.peak });
              if (LOW_CONNECTIONS > 0) {
                measurements.push(await measure(running, op, members, { round, connections: LOW_CONNECTIONS, warmupS: LOW_WARMUP_S, durationS: LOW_DURATION_S, postmaster }));
              }
            }
          }
        }
      }
    } finally {
      await Promise.all(all().map((running) => running.stop()));
    }
    await pool.end();

    if (process.env.BENCH_PGLITE !== "0") ({ results: pgliteResults, seedSeconds: pgliteSeed } = await benchPglite(members.length));
    await admin.end();
  } finally {
    stopCluster(cluster);
  }

  const cpu = os.cpus();
  const current = nodes.find((node) => node.execPath === process.execPath);
  const summary = (node: string, system: string, op: OperationName, connections = CONNECTIONS, list = measurements) => {
    const runs = list.filter((m) => m.node === node && m.system === system && m.op === op && m.connections === connections);
    const of = (key: "rps" | "p50" | "p95" | "p99" | "serverCpuMs") => median(runs.map((m) => m[key]));
    const pgRuns = runs.filter((m) => m.pgCpuMs !== undefined).map((m) => m.pgCpuMs!);
    return { rps: of("rps"), p50: of("p50"), p95: of("p95"), p99: of("p99"), serverCpuMs: of("serverCpuMs"), pgCpuMs: pgRuns.length ? median(pgRuns) : undefined };
  };
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(b > 0) ? "–" : (a / b).toFixed(2));
  const has = (system: string) => SYSTEMS.includes(system);
  const nodeNames = nodes.map((node) => `Node ${node.version}`).join(" and ");
  lines.push(
    `# Parley benchmark, ${new Date().toISOString().slice(0, 10)}${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
    "",
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; ` +
      "PostgreSQL 15 (throwaway cluster, fsync off), the systems and the load generator (autocannon) all on the same cores.",
    `Node: every system ran as a child process on ${nodeNames}${nodes.length > 1 ? ", all in this run with their rounds interleaved" : ""}; ` +
      `the load generator (autocannon), the seeding and the checks ran on Node ${process.version}.`,
    ...problems.map((problem) => `**${problem} This run measured ${nodeNames} only.**`),
    `Workload: DESIGN.md (1,000 members, 10,000 conversations, 1,000,000 messages); seeded in ${seedSteps.reduce((s, x) => s + x.seconds, 0).toFixed(1)} s ` +
      `(${seedSteps.map((s) => `${s.step} ${s.seconds.toFixed(1)} s`).join("; ")}).`,
    `Load: ${CONNECTIONS} connections, a random member and conversation per request, ${WARMUP_S} s warm-up then ${DURATION_S} s measured` +
      (LOW_CONNECTIONS > 0 ? `; right after it, the same at ${LOW_CONNECTIONS} connections (unsaturated latency): ${LOW_WARMUP_S} s warm-up then ${LOW_DURATION_S} s measured` : "") +
      `. ${ROUNDS} ${ROUNDS === 1 ? "round" : "rounds"}: per round and operation the Node versions take turns (the first one first in odd rounds, last in even ones) and within one Node version ` +
      `the systems rotate (A B C, B C A, C A B); figures are the median of the rounds. Pool size ${POOL_MAX} for every system.`,
    `CPU (at ${CONNECTIONS} connections): CPU time (user + system) during the measured run ÷ requests completed in it, read from /proc/<pid>/stat ` +
      `(utime + stime + cutime + cstime, ${clockTicks()} ticks per second): "server" is the system's process with all its threads and any child processes; ` +
      `"PostgreSQL" is the whole cluster, the postmaster and all its children (backends, background and autovacuum workers), for every system alike (see bench/cpu.ts).` +
      (postmaster === undefined ? " PostgreSQL CPU was not measured: TEST_DATABASE_URL points at a server not started by this run." : ""),
    "SQL statements and PostgreSQL ms / request: pg_stat_statements (planning + execution) over sequential requests, not under load.",
    "Parley authenticates every request with the member's API key and enforces its limits; PostGraphile and the floor run without auth.",
    "",
    "Checked before timing:",
    ...checks.map((note) => `- ${note}`),
  );
  for (const node of nodes) {
    lines.push(
      "",
      `## Node ${node.version}`,
      "",
      `At ${CONNECTIONS} connections:`,
      "",
      "| op | system | req/s | p50 ms | p95 ms | p99 ms | server CPU ms / request | PostgreSQL CPU ms / request | SQL statements / request | PostgreSQL ms / request |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const op of OPERATIONS) {
      for (const system of SYSTEMS) {
        const s = summary(node.label, system, op);
        const cost = statements.get(`${node.label}:${system}:${op}`);
        lines.push(
          `| ${op} | ${system} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.serverCpuMs)} | ${ms(s.pgCpuMs)} | ${cost?.statements.toFixed(2)} | ${cost?.databaseMs.toFixed(2)} |`,
        );
      }
    }
    const rpsRatio = (a: string, b: string, op: OperationName) => (has(a) && has(b) ? ratio(summary(node.label, a, op).rps, summary(node.label, b, op).rps) : "–");
    lines.push(
      "",
      "| op | Parley / PostGraphile (req/s) | Parley / floor (req/s) |",
      "|---|---:|---:|",
      ...OPERATIONS.map((op) => `| ${op} | ${rpsRatio("Parley", "PostGraphile", op)} | ${rpsRatio("Parley", "floor", op)} |`),
    );
    if (LOW_CONNECTIONS > 0) {
      const low = (system: string, op: OperationName) => summary(node.label, system, op, LOW_CONNECTIONS);
      lines.push(
        "",
        `At ${LOW_CONNECTIONS} connections (latency below saturation), p50 / p95 / p99 in ms:`,
        "",
        `| op | ${SYSTEMS.join(" | ")} | Parley p95 / floor p95 |`,
        `|---|${SYSTEMS.map(() => "---:|").join("")}---:|`,
        ...OPERATIONS.map((op) => {
          const cells = SYSTEMS.map((system) => {
            const s = low(system, op);
            return `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}`;
          });
          return `| ${op} | ${cells.join(" | ")} | ${has("Parley") && has("floor") ? ratio(low("Parley", op).p95, low("floor", op).p95) : "–"} |`;
        }),
      );
    }
    lines.push(
      "",
      "Server memory (highest RSS seen after a measured run / peak RSS), MiB:",
      "",
      ...SYSTEMS.map((system) => `- ${system}: ${memory.get(`${node.label}:${system}`)?.rss.toFixed(0)} / ${memory.get(`${node.label}:${system}`)?.peak.toFixed(0)}`),
    );
  }
  if (nodes.length > 1) {
    const [a, b] = [nodes[nodes.length - 1], nodes[0]];
    lines.push(
      "",
      `## Node ${a.label} against Node ${b.label}`,
      "",
      `Ratios Node ${a.label} / Node ${b.label} of the medians above (req/s above 1 and CPU or latency below 1: Node ${a.label} is better).`,
      "",
      `| op | system | req/s | server CPU ms / request | p95 at ${CONNECTIONS} connections |${LOW_CONNECTIONS > 0 ? ` p95 at ${LOW_CONNECTIONS} connections |` : ""}`,
      `|---|---|---:|---:|---:|${LOW_CONNECTIONS > 0 ? "---:|" : ""}`,
      ...OPERATIONS.flatMap((op) =>
        SYSTEMS.map((system) => {
          const [x, y] = [summary(a.label, system, op), summary(b.label, system, op)];
          const lowCell = LOW_CONNECTIONS > 0 ? ` ${ratio(summary(a.label, system, op, LOW_CONNECTIONS).p95, summary(b.label, system, op, LOW_CONNECTIONS).p95)} |` : "";
          return `| ${op} | ${system} | ${ratio(x.rps, y.rps)} | ${ratio(x.serverCpuMs, y.serverCpuMs)} | ${ratio(x.p95, y.p95)} |${lowCell}`;
        }),
      ),
    );
  }
  lines.push(
    "",
    "## Every round",
    "",
    "| round | Node | connections | op | system | req/s | p50 ms | p95 ms | p99 ms | server CPU ms / request | PostgreSQL CPU ms / request |",
    "|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ...measurements.map(
      (m) => `| ${m.round} | ${m.node} | ${m.connections} | ${m.op} | ${m.system} | ${m.rps.toFixed(0)} | ${ms(m.p50)} | ${ms(m.p95)} | ${ms(m.p99)} | ${ms(m.serverCpuMs)} | ${ms(m.pgCpuMs)} |`,
    ),
  );
  if (pgliteResults.length) {
    lines.push(
      "",
      "## Parley on the embedded PGlite",
      "",
      `The same workload in a PGlite folder (seeded in ${pgliteSeed.toFixed(0)} s), one embedded connection, same load (${CONNECTIONS} connections), ` +
        `on Node ${process.version}. Server CPU includes the database, which runs inside Parley's process.`,
      "",
      "| op | req/s | p50 ms | p95 ms | p99 ms | server CPU ms / request | vs Parley on PostgreSQL (req/s) |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...OPERATIONS.map((op) => {
        const s = summary(pgliteResults[0].node, "Parley (PGlite)", op, CONNECTIONS, pgliteResults);
        const onPostgres = current && has("Parley") ? ratio(s.rps, summary(current.label, "Parley", op).rps) : "–";
        return `| ${op} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.serverCpuMs)} | ${onPostgres} |`;
      }),
    );
  }
  lines.push("", `Total run time ${((performance.now() - started) / 60_000).toFixed(1)} min.`, "");
  writeResults("", lines);
}

/** Parley on a PGlite folder holding the same workload (seeded in the folder itself, set-based), on this Node. */
async function benchPglite(memberCount: number): Promise<{ results: Measurement[]; seedSeconds: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-bench-pglite-"));
  try {
    const t0 = performance.now();
    const db = createDatabase(loadConfig({ PGLITE_DIR: dir }));
    await db.migrate();
    // seedWorkload speaks pg.Client's query(); PGlite's knex takes the same SQL.
    await seedWorkload({ query: (sql: string) => db.knex.raw(sql) } as unknown as pg.Client);
    const rows = (await db.knex.raw(
      `select u.id, array_agg(c.id order by c.id) as conversations from users u join conversations c on c.owner_id = u.id
        where u.role = 'member' group by u.id order by u.id`,
    )).rows as { id: string; conversations: string[] }[];
    const members: Member[] = rows.map((row) => ({ userId: row.id, token: "", conversations: row.conversations }));
    if (members.length !== memberCount) throw new Error(`PGlite holds ${members.length} members, expected ${memberCount}`);
    for (const member of members) member.token = (await createApiKey(db.knex, member.userId, "bench")).secret;
    await db.close();
    const seedSeconds = (performance.now() - t0) / 1000;
    const node: NodeVersion = { label: process.versions.node.split(".")[0], execPath: process.execPath, version: process.version };
    const running = await startSystem("Parley", node, "", { PGLITE_DIR: dir });
    running.system = { ...parley, name: "Parley (PGlite)" };
    const results: Measurement[] = [];
    try {
      for (const op of OPERATIONS) {
        console.error(`PGlite: Parley ${op}...`);
        results.push(await measure(running, op, members, { round: 1, connections: CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S }));
      }
    } finally {
      await running.stop();
    }
    return { results, seedSeconds };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
