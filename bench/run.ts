/**
 * `npm run bench`: Parley against PostGraphile 5 and the floor (bench/floor.ts) on the DESIGN.md workload,
 * then Parley on the embedded PGlite.
 *
 * 1. A throwaway PostgreSQL cluster (with pg_stat_statements), Parley's migrations, the workload seeded with
 *    set-based SQL (bench/workload.ts), an API key per member for Parley.
 * 2. Each system runs as its own child process with the same pool size (POOL_MAX, default 10): Parley in
 *    production mode, PostGraphile (amber preset), the floor.
 * 3. Before timing: H and I answers of all systems are compared (normal form, bench/operations.ts) on random
 *    targets, and each system's W is checked to have written its message.
 * 4. SQL statements and PostgreSQL execution time per request: pg_stat_statements over sequential requests
 *    per system and operation (the most expensive statements are printed to the console).
 * 5. Throughput: autocannon with 32 connections, a random member and conversation per request; per round,
 *    operation and system a warm-up then a measured run, systems alternating (A B C, A B C, ...) for ROUNDS.
 * 6. Parley on PGlite (its one embedded connection): a copy of the workload, the same H, I and W.
 * Results: bench/results/<YYYY-MM-DD>.md (also printed).
 *
 * Env: BENCH_ROUNDS (3), BENCH_WARMUP_S (3), BENCH_DURATION_S (10), BENCH_CONNECTIONS (32), POOL_MAX (10),
 *      BENCH_SYSTEMS (Parley,PostGraphile,floor), BENCH_OPS (H,I,W), BENCH_PGLITE (1; 0 skips it), BENCH_LABEL (suffix of the file),
 *      BENCH_PROFILE (a folder: Parley runs with --cpu-prof into it).
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
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess } from "../test/helpers/process";
import { seedWorkload, type SeedStep } from "./workload";
import { floor, OPERATIONS as ALL_OPERATIONS, parley, postgraphile, type OperationName, type System, type Target } from "./operations";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
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
  url: string;
  pid: number;
  stop(): Promise<void>;
}

interface Measurement {
  system: string;
  op: OperationName;
  round: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const BODIES = Array.from({ length: 64 }, (_, i) => `bench write ${i} `.repeat(20).slice(0, 200));

function randomTarget(members: Member[]): Target {
  const member = pick(members);
  return { userId: member.userId, token: member.token, conversationId: pick(member.conversations), content: pick(BODIES) };
}


/** A bench/*.ts server in a child process; resolves once it prints `listening <port>`. */
function startScript(system: System, file: string, env: Record<string, string>): Promise<Running> {
  const child: ChildProcess = spawn(process.execPath, ["-r", "@swc-node/register", path.join(__dirname, file)], {
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
      if (match) resolve({ system, url: `http://127.0.0.1:${match[1]}`, pid: child.pid!, stop });
    });
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}:\n${output}`)));
  });
}

async function startSystem(name: string, databaseUrl: string, env: Record<string, string> = {}): Promise<Running> {
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
    );
    return { system: parley, url: server.url, pid: server.child.pid!, stop: server.stop };
  }
  const script = name === "PostGraphile" ? { system: postgraphile, file: "postgraphile.ts" } : { system: floor, file: "floor.ts" };
  return startScript(script.system, script.file, { DATABASE_URL: databaseUrl, POOL_MAX, PORT: "0" });
}

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
          throw new Error(`${systems[index].system.name} answers ${op} differently from ${systems[0].system.name}:\n${JSON.stringify(answer).slice(0, 800)}\n${JSON.stringify(answers[0]).slice(0, 800)}`);
        }
      }
    }
    notes.push(`${op}: ${CHECK_SAMPLES} random targets, identical answers from ${systems.map((s) => s.system.name).join(", ")}`);
  }
  for (const running of systems) {
    const target = { ...randomTarget(members), content: `check write by ${running.system.name}` };
    const id = await call(running, "W", target);
    const { rows } = await knex.query("select conversation_id, author_id, content from messages where id = $1", [id]);
    if (rows[0]?.conversation_id !== target.conversationId || rows[0]?.author_id !== target.userId || rows[0]?.content !== target.content) {
      throw new Error(`${running.system.name}'s W did not write its message (id ${String(id)})`);
    }
  }
  notes.push(`W: each system's message found in the table with its conversation, author and text`);
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


/** autocannon for `seconds`, a random target per request; latencies (ms) from its response events. */
function load(running: Running, op: OperationName, members: Member[], seconds: number): Promise<Omit<Measurement, "system" | "op" | "round">> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const first = running.system.request(op, randomTarget(members));
    const instance = autocannon(
      {
        url: running.url + first.path,
        connections: CONNECTIONS,
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
          return reject(new Error(`${running.system.name} ${op}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`));
        }
        const sorted = Float64Array.from(latencies).sort();
        resolve({ rps: result.requests.total / result.duration, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) });
      },
    );
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  });
}

async function measure(running: Running, op: OperationName, members: Member[], round: number): Promise<Measurement> {
  await load(running, op, members, WARMUP_S);
  const result = await load(running, op, members, DURATION_S);
  return { system: running.system.name, op, round, ...result };
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

const ms = (value: number) => value.toFixed(2);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const started = performance.now();
  const cluster = await startCluster(["-c shared_preload_libraries=pg_stat_statements", "-c pg_stat_statements.track=all", "-c pg_stat_statements.track_planning=on"]);
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

    const systems: Running[] = [];
    for (const name of SYSTEMS) systems.push(await startSystem(name, databaseUrl));
    try {
      checks = await checkAnswers(systems, members, pool);
      for (const running of systems) {
        for (const op of OPERATIONS) {
          const cost = await statementCost(running, op, members, pool);
          statements.set(`${running.system.name}:${op}`, cost);
          console.error(`${running.system.name} ${op}: ${cost.statements.toFixed(2)} statements, ${cost.databaseMs.toFixed(3)} ms in PostgreSQL per request (planning ${cost.planMs.toFixed(3)})\n  ${cost.top.join("\n  ")}`);
        }
      }
      for (let round = 1; round <= ROUNDS; round += 1) {
        for (const op of OPERATIONS) {
          for (const running of round % 2 === 1 ? systems : [...systems].reverse()) {
            console.error(`round ${round}: ${running.system.name} ${op}...`);
            measurements.push(await measure(running, op, members, round));
            const now = processMemoryMiB(running.pid);
            memory.set(running.system.name, { rss: Math.max(memory.get(running.system.name)?.rss ?? 0, now.rss), peak: now.peak });
          }
        }
      }
    } finally {
      await Promise.all(systems.map((running) => running.stop()));
    }
    await pool.end();

    if (process.env.BENCH_PGLITE !== "0") ({ results: pgliteResults, seedSeconds: pgliteSeed } = await benchPglite(members.length));
    await admin.end();
  } finally {
    stopCluster(cluster);
  }

  const cpu = os.cpus();
  const byKey = (system: string, op: OperationName, list = measurements) => list.filter((m) => m.system === system && m.op === op);
  const summary = (system: string, op: OperationName, list = measurements) => {
    const runs = byKey(system, op, list);
    return { rps: median(runs.map((m) => m.rps)), p50: median(runs.map((m) => m.p50)), p95: median(runs.map((m) => m.p95)), p99: median(runs.map((m) => m.p99)) };
  };
  lines.push(
    `# Parley benchmark, ${new Date().toISOString().slice(0, 10)}${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
    "",
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      "PostgreSQL 15 (throwaway cluster, fsync off), the systems and the load generator (autocannon) all on the same cores.",
    `Workload: DESIGN.md (1,000 members, 10,000 conversations, 1,000,000 messages); seeded in ${seedSteps.reduce((s, x) => s + x.seconds, 0).toFixed(1)} s ` +
      `(${seedSteps.map((s) => `${s.step} ${s.seconds.toFixed(1)} s`).join("; ")}).`,
    `Load: ${CONNECTIONS} connections, a random member and conversation per request, ${WARMUP_S} s warm-up then ${DURATION_S} s measured, ` +
      `${ROUNDS} rounds with the systems alternating; figures are the median of the rounds. Pool size ${POOL_MAX} for every system.`,
    "Parley authenticates every request with the member's API key and enforces its limits; PostGraphile and the floor run without auth.",
    "",
    "Checked before timing:",
    ...checks.map((note) => `- ${note}`),
    "",
    "| op | system | req/s | p50 ms | p95 ms | p99 ms | SQL statements / request | PostgreSQL ms / request |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const op of OPERATIONS) {
    for (const system of SYSTEMS) {
      const s = summary(system, op);
      lines.push(`| ${op} | ${system} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${statements.get(`${system}:${op}`)?.statements.toFixed(2)} | ${statements.get(`${system}:${op}`)?.databaseMs.toFixed(2)} |`);
    }
  }
  const ratio = (a: string, b: string, op: OperationName) =>
    SYSTEMS.includes(a) && SYSTEMS.includes(b) ? (summary(a, op).rps / summary(b, op).rps).toFixed(2) : "–";
  lines.push(
    "",
    "| op | Parley / PostGraphile (req/s) | Parley / floor (req/s) |",
    "|---|---:|---:|",
    ...OPERATIONS.map((op) => `| ${op} | ${ratio("Parley", "PostGraphile", op)} | ${ratio("Parley", "floor", op)} |`),
    "",
    "Server memory (highest RSS seen after a measured run / peak RSS), MiB:",
    "",
    ...SYSTEMS.map((system) => `- ${system}: ${memory.get(system)?.rss.toFixed(0)} / ${memory.get(system)?.peak.toFixed(0)}`),
    "",
    "Every round:",
    "",
    "| round | op | system | req/s | p50 ms | p95 ms | p99 ms |",
    "|---:|---|---|---:|---:|---:|---:|",
    ...measurements.map((m) => `| ${m.round} | ${m.op} | ${m.system} | ${m.rps.toFixed(0)} | ${ms(m.p50)} | ${ms(m.p95)} | ${ms(m.p99)} |`),
  );
  if (pgliteResults.length) {
    lines.push(
      "",
      "## Parley on the embedded PGlite",
      "",
      `The same workload in a PGlite folder (seeded in ${pgliteSeed.toFixed(0)} s), one embedded connection, same load.`,
      "",
      "| op | req/s | p50 ms | p95 ms | p99 ms | vs Parley on PostgreSQL (req/s) |",
      "|---|---:|---:|---:|---:|---:|",
      ...OPERATIONS.map((op) => {
        const s = summary("Parley (PGlite)", op, pgliteResults);
        return `| ${op} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${SYSTEMS.includes("Parley") ? (s.rps / summary("Parley", op).rps).toFixed(2) : "–"} |`;
      }),
    );
  }
  lines.push("", `Total run time ${((performance.now() - started) / 60_000).toFixed(1)} min.`, "");
  writeResults("", lines);
}

/** Parley on a PGlite folder holding the same workload (seeded in the folder itself, set-based). */
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
    const running = await startSystem("Parley", "", { PGLITE_DIR: dir });
    running.system = { ...parley, name: "Parley (PGlite)" };
    const results: Measurement[] = [];
    try {
      for (const op of OPERATIONS) {
        console.error(`PGlite: Parley ${op}...`);
        results.push(await measure(running, op, members, 1));
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
