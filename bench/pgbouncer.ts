/**
 * `npm run bench:pgbouncer`: one Parley server behind PgBouncer (transaction mode) serving BENCH_CLIENTS (200)
 * concurrent clients for BENCH_SECONDS (60) s on the DESIGN.md workload, with every error counted. The claim it
 * checks (issue 19): 200 clients for 60 s through a pool of 20 PostgreSQL connections, 0 errors.
 *
 * 1. A throwaway PostgreSQL cluster (fsync off, always one of this run's own), Parley's migrations, the workload
 *    seeded with set-based SQL (bench/workload.ts), an API key per member (1,000).
 * 2. A real PgBouncer (test/helpers/pgbouncer.ts: /usr/sbin/pgbouncer, pool_mode = transaction) with
 *    default_pool_size BENCH_POOL (20) in front of it.
 * 3. ONE Parley server process (NODE_ENV=production) with DATABASE_URL = PgBouncer, DATABASE_LISTEN_URL = PostgreSQL
 *    itself, DATABASE_PREPARED_STATEMENTS=false (PgBouncer 1.18), and its own pg pool at BENCH_APP_POOL (50): more
 *    client connections to PgBouncer than PgBouncer has server connections, so PgBouncer does the multiplexing.
 *    Rate limits are off (RATE_LIMIT_ENABLED=false): every client here comes from one address, which a real
 *    deployment would not.
 * 4. Before the load: one H, I and W answered correctly (bench/operations.ts normal form).
 * 5. The load: autocannon in this process, BENCH_CLIENTS keep-alive connections for BENCH_SECONDS, no warm-up (the
 *    whole run counts). Each request picks an operation by BENCH_MIX (H:45,I:45,W:10), a random member (its own API
 *    key) and one of that member's conversations, as bench/run.ts does.
 * 6. Every second, on a direct connection to PostgreSQL: the client backends of the database (pg_stat_activity,
 *    the sampler itself left out, the LISTEN connection counted apart); and PgBouncer's SHOW POOLS (sv_active,
 *    all server connections, cl_active, cl_waiting, maxwait).
 * 7. CPU of the server process tree, PostgreSQL (postmaster and children) and PgBouncer over the run (bench/cpu.ts),
 *    the server's RSS after it (bench/measure.ts).
 *
 * Errors, counted strictly: a response with a status other than 2xx; a socket error or a timeout (autocannon's
 * `timeout`, 10 s, per request); and a 2xx response whose body has `"errors"` or does not start with the data the
 * operation asks for (`{"data":{"conversation":{`, ...). Every body is inspected, through autocannon's per-request
 * `onResponse(status, body)` hook. After the run the messages W added are counted in the table: at least as many
 * as W answered with an id (a W in flight when the run stops may be stored unanswered).
 *
 * Env: BENCH_CLIENTS (200), BENCH_SECONDS (60), BENCH_POOL (20), BENCH_APP_POOL (50), BENCH_MIX (H:45,I:45,W:10),
 *      BENCH_TIMEOUT_S (10), BENCH_LABEL (suffix of the file), BENCH_INJECT_EVERY (0; N > 0: every N-th request is
 *      made bad on purpose, alternating an invalid query (HTTP 400) and an addMessage over the length limit (HTTP 200
 *      with "errors"), to show that the counting catches both; such a run says so and fails).
 * Results: bench/results/pgbouncer-<YYYY-MM-DD>[-BENCH_LABEL].md (also printed). Exits 1 when there was any error.
 */
import "reflect-metadata";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import autocannon from "autocannon";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { createApiKey } from "../src/modules/api-key/api-key.service";
import { LISTENER_APPLICATION_NAME } from "../src/db/notifications";
import { percentile, processMemoryMiB, writeResults } from "./measure";
import { clockTicks, postmasterPid, ticksToMs, treeTicks } from "./cpu";
import { parley, type OperationName, type Target } from "./operations";
import { seedWorkload, type SeedStep } from "./workload";
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess } from "../test/helpers/process";
import { startPgBouncer } from "../test/helpers/pgbouncer";

function whole(name: string, fallback: number, min = 1): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number of at least ${min}, got "${process.env[name]}"`);
  return value;
}

const CLIENTS = whole("BENCH_CLIENTS", 200);
const SECONDS = whole("BENCH_SECONDS", 60);
const POOL = whole("BENCH_POOL", 20);
const APP_POOL = whole("BENCH_APP_POOL", 50);
const TIMEOUT_S = whole("BENCH_TIMEOUT_S", 10);
const WARMUP_S = whole("BENCH_WARMUP_S", 5, 0);
const WARMUP_CLIENTS = whole("BENCH_WARMUP_CLIENTS", 10);
const INJECT_EVERY = whole("BENCH_INJECT_EVERY", 0, 0);
const MIX = parseMix(process.env.BENCH_MIX ?? "H:45,I:45,W:10");
const DB = "parley_bench_pgbouncer";

function parseMix(text: string): { op: OperationName; weight: number }[] {
  const mix = text.split(",").map((part) => {
    const [op, weight] = part.split(":");
    if (!["H", "I", "W"].includes(op) || !(Number(weight) > 0)) throw new Error(`BENCH_MIX: "${part}" is not OP:WEIGHT with OP one of H, I, W`);
    return { op: op as OperationName, weight: Number(weight) };
  });
  const total = mix.reduce((sum, entry) => sum + entry.weight, 0);
  return mix.map((entry) => ({ op: entry.op, weight: entry.weight / total }));
}

interface Member {
  userId: string;
  token: string;
  conversations: string[];
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const BODIES = Array.from({ length: 64 }, (_, i) => `bench write ${i} `.repeat(20).slice(0, 200));

function pickOp(): OperationName {
  let r = Math.random();
  for (const { op, weight } of MIX) {
    if (r < weight) return op;
    r -= weight;
  }
  return MIX[MIX.length - 1].op;
}

function randomTarget(members: Member[]): Target {
  const member = pick(members);
  return { userId: member.userId, token: member.token, conversationId: pick(member.conversations), content: pick(BODIES) };
}

/** The start of a good answer's body: the data the operation asks for, not null. */
const EXPECTED_START: Record<OperationName, string> = {
  H: '{"data":{"conversation":{',
  I: '{"data":{"conversations":{',
  W: '{"data":{"addMessage":{',
};

type Kind = "graphql errors" | "unexpected body";

/**
 * What is wrong with a 2xx body of `op`, or undefined when nothing is. `"errors"` with its quotes cannot occur
 * inside a JSON string value (a quote there is written \"), so it finds an errors key anywhere in the answer.
 */
function bodyProblem(op: OperationName, body: string): Kind | undefined {
  if (body.includes('"errors"')) return "graphql errors";
  if (!body.startsWith(EXPECTED_START[op])) return "unexpected body";
  return undefined;
}

/** A bad request on purpose (BENCH_INJECT_EVERY): an invalid query, or an addMessage over the length limit. */
function badRequest(n: number, target: Target) {
  const auth = { "content-type": "application/json", authorization: `Bearer ${target.token}` };
  if (n % 2 === 0) return { op: "I" as const, headers: auth, body: JSON.stringify({ query: "query { noSuchField }" }) };
  const request = parley.request("W", { ...target, content: "x".repeat(100_000) });
  return { op: "W" as const, headers: request.headers, body: request.body };
}

interface Sample {
  t: number;
  /** Client backends of the database, the sampler left out. */
  backends: number;
  /** Of which the LISTEN connection(s), which go straight to PostgreSQL. */
  listeners: number;
  /** Of which running a statement at that moment. */
  active: number;
  svActive: number;
  /** sv_active + sv_idle + sv_used + sv_tested + sv_login. */
  svAll: number;
  clActive: number;
  clWaiting: number;
  /** SHOW POOLS maxwait, seconds (+ maxwait_us). */
  maxWait: number;
  /** Responses completed so far. */
  responses: number;
}

interface Outcome {
  durationS: number;
  responses: number;
  latencies: number[];
  byOp: Map<OperationName, { latencies: number[] }>;
  injected: number;
  /** Responses that took over 1 s, sent in the first 0.5 s of the run / later. */
  slowOpening: number;
  slowLater: number;
  errors: Map<string, number>;
  errorSamples: string[];
  autocannon: { total: number; non2xx: number; errors: number; timeouts: number; mismatches: number; resets: number };
}

function pgBouncerPid(): number | undefined {
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const comm = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
      const ppid = Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "pgbouncer" && ppid === process.pid) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

function newOutcome(): Outcome {
  return {
    durationS: 0,
    responses: 0,
    latencies: [],
    byOp: new Map(MIX.map(({ op }) => [op, { latencies: [] }])),
    injected: 0,
    slowOpening: 0,
    slowLater: 0,
    errors: new Map(),
    errorSamples: [],
    autocannon: { total: 0, non2xx: 0, errors: 0, timeouts: 0, mismatches: 0, resets: 0 },
  };
}

/** autocannon for `seconds` with `clients` connections, filling `outcome` as responses come; `onTick` every second. */
function runLoad(url: string, members: Member[], clients: number, seconds: number, outcome: Outcome, onTick: () => void): Promise<Outcome> {
  const error = (kind: string, sample: string) => {
    const seen = outcome.errors.get(kind) ?? 0;
    outcome.errors.set(kind, seen + 1);
    // The first two of each kind, on one line.
    if (seen < 2) outcome.errorSamples.push(`${kind}: ${sample.replace(/\s+/g, " ").trim().slice(0, 300)}`);
  };
  let sent = 0;
  // onResponse (per request, with its context) runs right before autocannon's "response" event for the same
  // response, synchronously: the operation is handed from one to the other here.
  let answered: { op: OperationName; injected: boolean; ok: boolean } | undefined;
  const T0 = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/graphql`,
        connections: clients,
        duration: seconds,
        timeout: TIMEOUT_S,
        requests: [
          {
            method: "POST",
            setupRequest: (request: any, context: any) => {
              sent += 1;
              const target = randomTarget(members);
              if (INJECT_EVERY > 0 && sent % INJECT_EVERY === 0) {
                const bad = badRequest(sent / INJECT_EVERY, target);
                context.op = bad.op;
                context.injected = true;
                return { ...request, path: "/graphql", headers: bad.headers, body: bad.body };
              }
              const op = pickOp();
              const next = parley.request(op, target);
              context.op = op;
              context.injected = false;
              return { ...request, path: next.path, headers: next.headers, body: next.body };
            },
            onResponse: (status: number, body: string, context: any) => {
              const op = context.op as OperationName;
              answered = { op, injected: context.injected, ok: false };
              if (context.injected) outcome.injected += 1;
              if (status < 200 || status >= 300) return error(`HTTP ${status}`, `${op}: ${body}`);
              const problem = bodyProblem(op, body);
              if (problem) return error(problem, `${op}: ${body}`);
              answered.ok = true;
            },
          },
        ],
      },
      (failure: Error | null, result: any) => {
        clearInterval(ticker);
        if (failure) return reject(failure);
        const socketErrors = result.errors - result.timeouts;
        if (socketErrors > 0) outcome.errors.set("socket errors", socketErrors);
        if (result.timeouts > 0) outcome.errors.set(`timeouts (no answer in ${TIMEOUT_S} s)`, result.timeouts);
        if (result.mismatches > 0) outcome.errors.set("mismatches", result.mismatches);
        outcome.durationS = result.duration;
        outcome.autocannon = {
          total: result.requests.total,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          mismatches: result.mismatches,
          resets: result.resets,
        };
        resolve(outcome);
      },
    );
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      outcome.responses += 1;
      if (!answered) return error("response without its request", "autocannon reported a response that onResponse did not see");
      if (responseTime > 1000) {
        // Sent in the first half second: the opening burst, when every connection sends its first request at once.
        if (performance.now() - responseTime - T0 < 500) outcome.slowOpening += 1;
        else outcome.slowLater += 1;
      }
      if (answered.ok && !answered.injected) {
        outcome.latencies.push(responseTime);
        outcome.byOp.get(answered.op)!.latencies.push(responseTime);
      }
      answered = undefined;
    });
    instance.on("reqError", (failure: Error) => {
      if (outcome.errorSamples.filter((s) => s.startsWith("socket")).length < 2) outcome.errorSamples.push(`socket or timeout: ${failure.message}`);
    });
    const ticker = setInterval(() => onTick(), 1000);
  });
}

const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? "–" : value.toFixed(1));
const sortedOf = (values: number[]) => Float64Array.from(values).sort();
const max = (samples: Sample[], key: keyof Sample) => samples.reduce((m, s) => Math.max(m, s[key]), 0);

async function main(): Promise<void> {
  const started = performance.now();
  const cluster = await startCluster([], true);
  const postmaster = postmasterPid(path.join(cluster.dataDir!, "data"));
  const lines: string[] = [];
  let exitCode = 0;
  try {
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query(`create database ${DB}`);
    const pgVersion = (await admin.query("show server_version")).rows[0].server_version as string;
    await admin.end();
    const databaseUrl = withDatabase(cluster.adminUrl, DB);
    const db = createDatabase(loadConfig({ DATABASE_URL: databaseUrl }));
    await db.migrate();
    await db.close();
    console.error("seeding the workload...");
    const owner = new pg.Client({ connectionString: databaseUrl });
    await owner.connect();
    const seedSteps: SeedStep[] = await seedWorkload(owner);
    const { rows } = await owner.query<{ id: string; conversations: string[] }>(
      `select u.id, array_agg(c.id order by c.id) as conversations from users u join conversations c on c.owner_id = u.id
        where u.role = 'member' group by u.id order by u.id`,
    );
    await owner.end();
    const members: Member[] = rows.map((row) => ({ userId: row.id, token: "", conversations: row.conversations }));
    const keys = createDatabase(loadConfig({ DATABASE_URL: databaseUrl }));
    try {
      for (const member of members) member.token = (await createApiKey(keys.knex, member.userId, "bench")).secret;
    } finally {
      await keys.close();
    }

    const bouncer = await startPgBouncer(databaseUrl, POOL);
    const bouncerPid = pgBouncerPid();
    const bouncerVersion = String(Object.values((await bouncer.admin("SHOW VERSION"))[0] ?? {})[0] ?? "?").replace(/^PgBouncer\s*/i, "");
    // The sampler: a direct connection to PostgreSQL, left out of its own count.
    const sampler = new pg.Client({ connectionString: databaseUrl });
    await sampler.connect();
    try {
      const server = await startServerProcess(
        {
          NODE_ENV: "production",
          LOG_LEVEL: "info",
          DATABASE_URL: bouncer.url,
          DATABASE_LISTEN_URL: databaseUrl,
          DATABASE_PREPARED_STATEMENTS: "false",
          DATABASE_POOL_MAX: String(APP_POOL),
          // Every client of this bench comes from 127.0.0.1 and shares that address's budget: limits off.
          RATE_LIMIT_ENABLED: "false",
        },
        120_000,
      );
      const serverPid = server.child.pid!;
      try {
        // One of each operation answered correctly before the load (normalise throws on GraphQL errors).
        for (const op of ["H", "I", "W"] as const) {
          const request = parley.request(op, randomTarget(members));
          const response = await fetch(server.url + request.path, { method: "POST", headers: request.headers, body: request.body });
          const text = await response.text();
          if (response.status !== 200 || bodyProblem(op, text)) throw new Error(`${op} before the load: HTTP ${response.status} ${text.slice(0, 500)}`);
          parley.normalise(op, JSON.parse(text));
        }
        // A warm-up at low concurrency: a deployed server has compiled its queries and opened its connections
        // before it meets 200 clients. (It does not remove the slow opening burst, see "over 1 s" in the results.)
        const warmup = newOutcome();
        if (WARMUP_S > 0) {
          console.error(`warm-up: ${WARMUP_CLIENTS} clients for ${WARMUP_S} s...`);
          await runLoad(server.url, members, WARMUP_CLIENTS, WARMUP_S, warmup, () => undefined);
        }
        const stats0 = (await bouncer.admin("SHOW STATS")).find((row) => row.database === DB);
        const messages0 = Number((await sampler.query("select count(*) from messages")).rows[0].count);

        const samples: Sample[] = [];
        const outcome = newOutcome();
        let sampling = false;
        const t0 = performance.now();
        const sample = async () => {
          if (sampling) return;
          sampling = true;
          try {
            const [activity, pools] = await Promise.all([
              sampler.query(
                `select count(*)::int as backends,
                        count(*) filter (where application_name = $2)::int as listeners,
                        count(*) filter (where state = 'active')::int as active
                   from pg_stat_activity where datname = $1 and backend_type = 'client backend' and pid <> pg_backend_pid()`,
                [DB, LISTENER_APPLICATION_NAME],
              ),
              bouncer.admin("SHOW POOLS"),
            ]);
            const pool = pools.find((row) => row.database === DB) ?? {};
            const n = (key: string) => Number(pool[key] ?? 0);
            samples.push({
              t: (performance.now() - t0) / 1000,
              ...(activity.rows[0] as { backends: number; listeners: number; active: number }),
              svActive: n("sv_active"),
              svAll: n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login"),
              clActive: n("cl_active"),
              clWaiting: n("cl_waiting"),
              maxWait: n("maxwait") + n("maxwait_us") / 1e6,
              responses: outcome.responses,
            });
          } catch (failure) {
            console.error(`sampling failed: ${(failure as Error).message}`);
          } finally {
            sampling = false;
          }
        };

        console.error(`load: ${CLIENTS} clients for ${SECONDS} s through PgBouncer (pool ${POOL})...`);
        const server0 = treeTicks(serverPid);
        const pg0 = treeTicks(postmaster);
        const bouncer0 = bouncerPid === undefined ? 0 : treeTicks(bouncerPid);
        const self0 = process.cpuUsage();
        await runLoad(server.url, members, CLIENTS, SECONDS, outcome, () => void sample());
        const server1 = treeTicks(serverPid);
        const pg1 = treeTicks(postmaster);
        const bouncer1 = bouncerPid === undefined ? 0 : treeTicks(bouncerPid);
        const self1 = process.cpuUsage(self0);
        while (sampling) await new Promise((resolve) => setTimeout(resolve, 50));
        const memory = processMemoryMiB(serverPid);
        const stats1 = (await bouncer.admin("SHOW STATS")).find((row) => row.database === DB);
        const wAnswered = outcome.byOp.get("W")?.latencies.length ?? 0;
        // A W still in flight at the end finishes on the server; wait for it before counting the rows.
        await new Promise((resolve) => setTimeout(resolve, 2000));
        const messagesAdded = Number((await sampler.query("select count(*) from messages")).rows[0].count) - messages0;

        const errorTotal = [...outcome.errors.values()].reduce((sum, n) => sum + n, 0);
        const warmupErrors = [...warmup.errors.values()].reduce((sum, n) => sum + n, 0);
        exitCode = errorTotal + warmupErrors > 0 ? 1 : 0;
        const good = outcome.latencies.length;
        const all = sortedOf(outcome.latencies);
        const requests = Math.max(1, outcome.responses);
        const xacts = Number(stats1?.total_xact_count ?? 0) - Number(stats0?.total_xact_count ?? 0);
        const queries = Number(stats1?.total_query_count ?? 0) - Number(stats0?.total_query_count ?? 0);
        const cpu = os.cpus();
        const duration = outcome.durationS;
        // Responses per second between consecutive samples (about a second apart): no stall hides in the average.
        const perSecond = samples.slice(1).map((s, i) => (s.responses - samples[i].responses) / Math.max(0.001, s.t - samples[i].t)).sort((a, b) => a - b);

        lines.push(
          `# Parley behind PgBouncer, ${new Date().toISOString().slice(0, 10)}${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
          "",
          `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
            `PostgreSQL ${pgVersion} (throwaway cluster, fsync off), PgBouncer ${bouncerVersion}, Parley and the load generator (autocannon) all on the same cores.`,
          `Workload: DESIGN.md (1,000 members, 10,000 conversations, 1,000,000 messages); seeded in ${seedSteps.reduce((s, x) => s + x.seconds, 0).toFixed(1)} s.`,
          `Setup: PgBouncer in transaction mode, default_pool_size ${POOL}, in front of PostgreSQL; ONE Parley server process (NODE_ENV=production) ` +
            `with DATABASE_URL = PgBouncer, DATABASE_LISTEN_URL = PostgreSQL (its one LISTEN connection), DATABASE_PREPARED_STATEMENTS=false, ` +
            `DATABASE_POOL_MAX ${APP_POOL} (Parley's connections to PgBouncer). Rate limits off (RATE_LIMIT_ENABLED=false): all clients share one address.`,
          `Load: ${WARMUP_S > 0 ? `after a warm-up of ${WARMUP_S} s at ${WARMUP_CLIENTS} clients, ` : "with no warm-up, "}` +
            `${CLIENTS} concurrent keep-alive clients (autocannon connections, one request in flight each) for ${SECONDS} s; each request ` +
            `${MIX.map(({ op, weight }) => `${op} ${(weight * 100).toFixed(0)}%`).join(", ")} (H = history of 50 messages, I = inbox of 20 conversations, ` +
            `W = addMessage), a random member (its own API key, ${members.length.toLocaleString("en")} keys) and one of its conversations.`,
          `Errors, counted strictly: HTTP status other than 2xx; socket errors; timeouts (no answer in ${TIMEOUT_S} s); a 2xx body with "errors" ` +
            `or without the data the operation asks for (every body inspected).` +
            (INJECT_EVERY > 0 ? ` **This run sent a bad request on purpose every ${INJECT_EVERY} requests (BENCH_INJECT_EVERY): ${outcome.injected} injected.**` : ""),
          "",
          `**${CLIENTS} clients × ${SECONDS} s through PgBouncer (pool ${POOL}): ${errorTotal} errors**` +
            ` (${outcome.responses} responses, ${good} good ones counted in the figures below).`,
          "",
          "| op | requests | req/s | p50 ms | p95 ms | p99 ms | max ms |",
          "|---|---:|---:|---:|---:|---:|---:|",
          ...MIX.map(({ op }) => {
            const list = sortedOf(outcome.byOp.get(op)!.latencies);
            return `| ${op} | ${list.length} | ${(list.length / duration).toFixed(0)} | ${ms(percentile(list, 50))} | ${ms(percentile(list, 95))} | ${ms(percentile(list, 99))} | ${ms(list[list.length - 1])} |`;
          }),
          `| all | ${good} | ${(good / duration).toFixed(0)} | ${ms(percentile(all, 50))} | ${ms(percentile(all, 95))} | ${ms(percentile(all, 99))} | ${ms(all[all.length - 1])} |`,
          "",
          ...(WARMUP_S > 0
            ? [`Warm-up (${WARMUP_CLIENTS} clients × ${WARMUP_S} s, not in the figures): ${warmup.responses} responses, ${warmupErrors} errors` +
                (warmupErrors ? ` (${[...warmup.errors.entries()].map(([kind, n]) => `${kind} ${n}`).join(", ")}; ${warmup.errorSamples.join("; ")})` : "") + "."]
            : []),
          "Errors by kind: " + (errorTotal ? [...outcome.errors.entries()].map(([kind, n]) => `${kind} ${n}`).join(", ") : "none") + ".",
          ...outcome.errorSamples.map((s) => `- ${s}`),
          `autocannon's own count: ${outcome.autocannon.total} responses, ${outcome.autocannon.non2xx} non-2xx, ${outcome.autocannon.errors} errors ` +
            `(${outcome.autocannon.timeouts} timeouts), ${outcome.autocannon.resets} resets.`,
          `Responses over 1 s: ${outcome.slowOpening} sent in the first 0.5 s (the ${CLIENTS} connections' first requests, all at once), ${outcome.slowLater} sent later.`,
          `Responses per second, second by second: lowest ${perSecond.length ? perSecond[0].toFixed(0) : "–"}, median ${perSecond.length ? percentile(perSecond, 50).toFixed(0) : "–"}, highest ${perSecond.length ? perSecond[perSecond.length - 1].toFixed(0) : "–"}.`,
          `W: ${wAnswered} answered with an id, ${messagesAdded} messages added to the table (at least as many: a W in flight when the run stopped is stored unanswered).`,
          "",
          `PostgreSQL connections, sampled every second (${samples.length} samples) against ${CLIENTS} clients:`,
          "",
          `- client backends of the database, most seen: ${max(samples, "backends")} (of which ${max(samples, "listeners")} LISTEN, straight to PostgreSQL; ` +
            `running a statement at once, most seen: ${max(samples, "active")}); pg_stat_activity on a direct connection, the sampler left out;`,
          `- PgBouncer SHOW POOLS: sv_active most seen ${max(samples, "svActive")}, server connections in all most seen ${max(samples, "svAll")} (pool ${POOL}); ` +
            `cl_active most seen ${max(samples, "clActive")}, cl_waiting most seen ${max(samples, "clWaiting")}, maxwait most seen ${max(samples, "maxWait").toFixed(3)} s;`,
          `- through PgBouncer: ${xacts} transactions, ${queries} queries (${(xacts / requests).toFixed(2)} and ${(queries / requests).toFixed(2)} per response).`,
          "",
          `CPU over the run (ms per response; /proc, ${clockTicks()} ticks per second, bench/cpu.ts): Parley ${(ticksToMs(server1 - server0) / requests).toFixed(2)}, ` +
            `PostgreSQL ${(ticksToMs(pg1 - pg0) / requests).toFixed(2)}, ` +
            `PgBouncer ${bouncerPid === undefined ? "–" : (ticksToMs(bouncer1 - bouncer0) / requests).toFixed(2)}, ` +
            `load generator ${((self1.user + self1.system) / 1000 / requests).toFixed(2)}; in all ` +
            `${((ticksToMs(server1 - server0 + pg1 - pg0 + bouncer1 - bouncer0) + (self1.user + self1.system) / 1000) / 1000 / duration).toFixed(2)} cores of ${cpu.length}.`,
          `Parley's memory after the run: RSS ${memory.rss.toFixed(0)} MiB, peak ${memory.peak.toFixed(0)} MiB.`,
          "",
          `Total run time ${((performance.now() - started) / 60_000).toFixed(1)} min.`,
          "",
        );
      } finally {
        await server.stop();
      }
    } finally {
      await sampler.end();
      await bouncer.stop();
    }
  } finally {
    stopCluster(cluster);
  }
  writeResults("pgbouncer-", lines);
  process.exitCode = exitCode;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
