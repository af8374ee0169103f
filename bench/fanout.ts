/**
 * Live fan-out: how fast does a message reach the subscribers of its conversation, what does the server spend
 * per delivery, and what does an idle subscription cost it?
 *
 * A throwaway PostgreSQL cluster; for each measurement a fresh Parley server as a child process
 * (NODE_ENV=production, the pg pool at its default size) and a fresh subscribers' client, bench/fanout-client.ts,
 * as a second child process (one websocket per subscriber, `messageAdded(conversationId, afterSeq) { seq content }`),
 * so that the server's, the client's and PostgreSQL's CPU are each read apart from /proc (bench/cpu.ts). This
 * process seeds the data, writes the messages (HTTP addMessage) and drives the client over IPC.
 *
 * (a) one conversation, N subscribers (BENCH_SUBSCRIBERS, default 100, 1000, 5000), all with the key of the
 *     conversation's owner (several devices of one user), or spread over BENCH_USERS admins' keys:
 *       1. idle: server RSS before any socket and with all N subscribed and idle;
 *       2. paced: one writer, BENCH_PACED_MESSAGES (100) messages at 10 per second, on a clock;
 *       3. burst: 4 writers, BENCH_BURST_MESSAGES (200) messages as fast as the server acknowledges them.
 * (b) many conversations: BENCH_MANY_SUBSCRIBERS (10,000) subscribers each on a conversation of its own,
 *     owned by one of BENCH_MANY_USERS (100) members and subscribed with the owner's key. Writes: BENCH_MANY_RATE
 *     (200) messages per second in all, each to a random conversation, sent on a clock by BENCH_MANY_WRITERS (8)
 *     concurrent writers (connections), so that a slow acknowledgement delays no other write; a write sent over
 *     LATE_MS after its due time means the rate was not held, and the results say so.
 *       1. writes only: WRITES_ONLY_SECONDS of such writes before any subscriber connects, for the server's CPU
 *          per write alone (here each write has one delivery, so the CPU per delivery below holds the write's);
 *       2. idle, as above;
 *       3. spread: such writes for BENCH_MANY_SECONDS (30).
 * Conversations are seeded with SQL, each with one message (seq 1); before the subscribers connect each
 * server takes WARM_UP writes, then every subscriber subscribes after the second-last seq of its conversation
 * and so receives the last one at once: its proof of being live.
 *
 * Each message carries the wall-clock time its write request was sent; every receipt records now − sent. That
 * is an upper bound of commit-to-receipt (it also holds the write's own request and commit); the write's
 * round trip (send → acknowledgement after commit) is reported beside it. The two processes' clocks are
 * compared before each run and the offset subtracted. CPU per delivery is the CPU a process tree used from
 * just before the first write of a phase to its last delivery, over the phase's deliveries.
 *
 * Every subscriber must receive every message of its conversation exactly once, in seq order: the results
 * then say so, otherwise they say what went wrong and the run exits non-zero. The targets of issue 18 are
 * printed next to the figures, met or not; they do not fail the run.
 *
 * Run:   node -r @swc-node/register bench/fanout.ts      (or: npm run bench:fanout)
 * Env:   the BENCH_* above (an empty BENCH_SUBSCRIBERS, or BENCH_MANY_SUBSCRIBERS=0, skips that shape),
 *        BENCH_LABEL (results title and file name), BENCH_SERVER_NODE_ARGS / BENCH_CLIENT_NODE_ARGS (node flags,
 *        e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_STALL_SECONDS (60: how long without a frame before a
 *        subscriber still short of a message counts it as lost), BENCH_IDLE_SETTLE_SECONDS (30: how long the server
 *        is left idle before its RSS is read, before the sockets and with them).
 * Output: bench/results/fanout-<YYYY-MM-DD>.md (also printed).
 */
import "reflect-metadata";
import { fork, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { createUserKey } from "../src/modules/api-key/api-key.service";
import { Role } from "../src/modules/user/role.enum";
import { postmasterPid, ticksToMs, treeTicks } from "./cpu";
import { percentile, processMemoryMiB, wallClockMs, writeResults } from "./measure";
import type { ClientMessage, Command, PhaseReport, Replies } from "./fanout-client";
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess, type ServerProcess } from "../test/helpers/process";

function count(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, got "${process.env[name]}"`);
  return value;
}

const SUBSCRIBERS = (process.env.BENCH_SUBSCRIBERS ?? "100,1000,5000").split(",").filter(Boolean).map((n, i) => {
  if (!/^\d+$/.test(n.trim())) throw new Error(`BENCH_SUBSCRIBERS must list whole numbers, got "${n}" at ${i}`);
  return Number(n);
});
const USERS = Math.max(1, count("BENCH_USERS", 1));
const PACED_MESSAGES = count("BENCH_PACED_MESSAGES", 100);
const PACED_RATE = 10;
const BURST_MESSAGES = count("BENCH_BURST_MESSAGES", 200);
const BURST_WRITERS = 4;
const MANY_SUBSCRIBERS = count("BENCH_MANY_SUBSCRIBERS", 10_000);
const MANY_USERS = Math.max(1, count("BENCH_MANY_USERS", 100));
const MANY_RATE = count("BENCH_MANY_RATE", 200);
const MANY_SECONDS = count("BENCH_MANY_SECONDS", 30);
const MANY_WRITERS = Math.max(1, count("BENCH_MANY_WRITERS", 8));
const SERVER_NODE_ARGS = process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
const CLIENT_NODE_ARGS = process.env.BENCH_CLIENT_NODE_ARGS?.split(" ").filter(Boolean) ?? [];

/**
 * Writes each server takes (4 writers, as fast as acknowledged) before any subscriber, to warm its code paths:
 * a cold server spends several times the CPU per write for its first few hundred (JIT compilation).
 */
const WARM_UP = 200;
/**
 * How long the server is left idle before its RSS is read (before any socket, and with all subscribed): V8's
 * memory reducer collects the garbage of warming up and of connecting only once allocation has been quiet for
 * a while (about 20 s here). "Idle" is read after it; the figure 2 s after connecting is reported beside it.
 */
const IDLE_SETTLE_MS = count("BENCH_IDLE_SETTLE_SECONDS", 30) * 1000;
/** Sockets the client opens at once; the next batch waits until this one is live. */
const CONNECT_BATCH = 100;
/** A subscriber still waiting after this long without any frame has lost a message (or the server is stuck). */
const STALL_MS = count("BENCH_STALL_SECONDS", 60) * 1000;
/** A paced write sent this much after its due time: the writers did not hold the rate. */
const LATE_MS = 100;
/** (b)'s writes with no subscriber, at its rate, for this long at most (what a write alone costs the server). */
const WRITES_ONLY_SECONDS = 10;
const TARGET_ONE = { subscribers: 5000, p99: 250 };
const TARGET_MANY = { p99: 50 };

const SUBSCRIPTION = "subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { seq content } }";
const ADD_MESSAGE = "mutation($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { seq } }";
/**
 * The server's settings besides DATABASE_URL. Rate limiting is off: every socket and write comes from one
 * address and a few keys, whose budgets (RATE_LIMIT_PER_IP 3,000, RATE_LIMIT_MEMBER 600 per minute) the
 * subscribe operations alone would exceed. MAX_SUBSCRIPTIONS_PER_CONNECTION (20) stays: one subscription per socket.
 */
const SERVER_ENV = {
  NODE_ENV: "production",
  LOG_LEVEL: "info", // the start line is how startServerProcess learns the port
  RATE_LIMIT_ENABLED: "false",
};

const ROOT = path.resolve(__dirname, "..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Conversations seeded for one run, with what the writers need: the owner's key, and the last seq so far. */
interface World {
  conversations: string[];
  /** Keys of the owners; owner[c] indexes it. */
  tokens: string[];
  owner: number[];
  /** Kept current from addMessage's answers: the seq each subscriber must reach. */
  lastSeq: number[];
}

interface Shape {
  title: string;
  world: World;
  subscribers: number;
  /** The keys the subscribers connect with, and per subscriber its key and its conversation. */
  subscriberTokens: string[];
  subscriberToken: Int32Array;
  subscriberConversation: Int32Array;
  /** The conversation the i-th write of a phase goes to. */
  pick: (i: number) => number;
  /** Written and measured before any subscriber connects: what the writes cost alone. */
  writesOnly?: PhaseSpec;
  phases: PhaseSpec[];
}

interface PhaseSpec {
  name: string;
  messages: number;
  writers: number;
  /** Messages per second, due on a clock; none: each writer sends its next one once the last is acknowledged. */
  rate?: number;
}

interface Idle {
  connectSeconds: number;
  /** Server RSS before any socket, settled (IDLE_SETTLE_MS after the warm-up). */
  serverBefore: number;
  /** Two seconds after the last subscriber connected: the garbage of connecting is still in the heap. */
  serverConnected: number;
  /** IDLE_SETTLE_MS later: V8 has collected what idle subscriptions do not hold. */
  serverIdle: number;
  clientIdle: number;
}

interface PhaseResult {
  spec: PhaseSpec;
  deliveries: number;
  /** First write sent → last delivery. */
  seconds: number;
  latency: { p50: number; p95: number; p99: number; max: number };
  writeP50: number;
  /** Most a paced write went out after its due time. */
  lagMax?: number;
  serverCpuMs: number;
  clientCpuMs: number;
  pgCpuMs?: number;
  serverPeak: number;
  clientPeak: number;
  /** Empty when every subscriber got every message once and in order. */
  problems: string[];
}

/** A phase written with no subscriber (Shape.writesOnly). */
interface WritesOnlyResult {
  spec: PhaseSpec;
  seconds: number;
  writeP50: number;
  lagMax: number;
  serverCpuMs: number;
  pgCpuMs?: number;
}

interface RunResult {
  shape: Shape;
  clockOffsetMs: number;
  writesOnly?: WritesOnlyResult;
  idle: Idle;
  phases: PhaseResult[];
}

// ---------------------------------------------------------------------------------------------------------
// Open files: every socket is a descriptor in the client and another in the server.

/** This process's open-file limits (soft, hard) from /proc/self/limits. */
function fileLimits(): { soft: number; hard: number } {
  const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))!;
  const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/).map((v) => (v === "unlimited" ? Infinity : Number(v)));
  return { soft, hard };
}

/** Whether `ulimit -n limit` works in a shell started from here (as root with CAP_SYS_RESOURCE it may pass the hard limit). */
const canSetFileLimit = (limit: number) => spawnSync("sh", ["-c", `ulimit -n ${limit}`], { stdio: "ignore" }).status === 0;

/**
 * Makes sure the server and the client, which inherit this process's limit, can hold `sockets` sockets each:
 * one descriptor per socket, plus node's own files and the pg pool; twice that is the comfortable size
 * (sockets still closing from the previous run, and so on). Node raises its soft limit to the hard one at
 * start, so the hard limit is what counts. When it is below the comfortable size and a shell may raise it,
 * this script runs again under `ulimit -n` and the function returns true: the caller only has to exit. Else
 * a warning when it still fits, an error when it does not.
 */
function ensureFileLimit(sockets: number): boolean {
  const needed = sockets + 256;
  const wanted = Math.max(2 * sockets, needed);
  const { soft, hard } = fileLimits();
  if (soft >= wanted) return false;
  const limit = process.env.BENCH_FANOUT_ULIMIT ? undefined : [Math.max(wanted, 65_536), wanted].find(canSetFileLimit);
  if (limit !== undefined) {
    console.error(`fan-out: raising the open-file limit from ${soft} to ${limit} and starting again`);
    const again = spawnSync("sh", ["-c", 'ulimit -n "$0" && exec "$@"', String(limit), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: "inherit",
      env: { ...process.env, BENCH_FANOUT_ULIMIT: String(limit) },
    });
    process.exitCode = again.status ?? 1;
    return true;
  }
  if (soft >= needed) {
    console.error(`fan-out: warning: open-file limit ${soft} (hard ${hard}) is below ${wanted} (2 × ${sockets} sockets) and cannot be raised here; it should still do`);
    return false;
  }
  throw new Error(
    `The open-file limit ${soft} (hard ${hard}) is too low for ${sockets} sockets in one process: ${needed} are needed, ${wanted} advised, ` +
      `and this shell may not raise it. Raise the hard limit (as root: ulimit -n ${wanted}; or the container's / limits.conf nofile) ` +
      "or lower BENCH_SUBSCRIBERS / BENCH_MANY_SUBSCRIBERS.",
  );
}

// ---------------------------------------------------------------------------------------------------------
// Seeding.

interface Key {
  userId: string;
  secret: string;
}

async function createKeys(knex: Parameters<typeof createUserKey>[0], name: string, role: Role, n: number): Promise<Key[]> {
  const keys: Key[] = [];
  for (let i = 0; i < n; i += 1) {
    const { user, secret } = await createUserKey(knex, n === 1 ? name : `${name} ${i + 1}`, role);
    keys.push({ userId: user.id, secret });
  }
  return keys;
}

/**
 * `n` conversations, the i-th owned by owners[i % owners.length], each with one message (seq 1) by its owner,
 * in one statement: what createConversation and addMessage would leave (last_seq = message_count = 1).
 */
async function seedConversations(client: pg.Client, owners: Key[], n: number, title: string): Promise<World> {
  const { rows } = await client.query<{ conversation_id: string; author_id: string }>(
    `with created as (
       insert into conversations (owner_id, title, last_seq, message_count)
       select ($1::uuid[])[1 + g % $2::int], $3::text || ' ' || g, 1, 1 from generate_series(0, $4::int - 1) as g
       returning id, owner_id)
     insert into messages (conversation_id, seq, author_id, role, content)
     select id, 1, owner_id, 'user', '0:seed' from created
     returning conversation_id, author_id`,
    [owners.map((o) => o.userId), owners.length, title, n],
  );
  const ownerIndex = new Map(owners.map((o, i) => [o.userId, i]));
  return {
    conversations: rows.map((r) => r.conversation_id),
    tokens: owners.map((o) => o.secret),
    owner: rows.map((r) => ownerIndex.get(r.author_id)!),
    lastSeq: rows.map(() => 1),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The subscribers' client process.

interface SubscriberClient {
  pid: number;
  call<C extends Command>(command: C): Promise<Replies[C["type"]]>;
  stop(): Promise<void>;
}

/** Forks bench/fanout-client.ts and resolves once it takes commands. */
async function startClient(): Promise<SubscriberClient> {
  const child = fork(path.join(__dirname, "fanout-client.ts"), [], {
    cwd: ROOT,
    execArgv: [...CLIENT_NODE_ARGS, "-r", "@swc-node/register"],
    serialization: "advanced", // the latency samples travel as a Float64Array
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let failure: Error | undefined;
  let nextId = 1;
  const fail = (error: Error) => {
    failure ??= error;
    for (const call of waiting.values()) call.reject(failure);
    waiting.clear();
  };
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      fail(new Error(`the subscribers' client exited (${signal ?? code})`));
      resolve();
    }),
  );
  child.on("message", (message: ClientMessage) => {
    if ("type" in message) return fail(new Error(`subscribers' client: ${message.message}`));
    const call = waiting.get(message.id);
    waiting.delete(message.id);
    if ("error" in message) call?.reject(new Error(`subscribers' client: ${message.error}`));
    else call?.resolve(message.result);
  });
  const reply = (id: number) => new Promise<unknown>((resolve, reject) => waiting.set(id, { resolve, reject }));
  await reply(0); // its "ready"
  return {
    pid: child.pid!,
    call(command) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      const answer = reply(id);
      child.send({ ...command, id });
      return answer as Promise<never>;
    },
    async stop() {
      // It exits when the channel closes (its sockets close with it); killed if it does not within 10 s.
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        if (child.connected) child.disconnect();
        else child.kill("SIGKILL");
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The client's wall clock minus ours, from the exchange with the shortest round trip. */
async function clockOffset(client: SubscriberClient): Promise<number> {
  let best = { roundTrip: Infinity, offset: 0 };
  for (let i = 0; i < 20; i += 1) {
    const before = wallClockMs();
    const { wallMs } = await client.call({ type: "clock" });
    const after = wallClockMs();
    if (after - before < best.roundTrip) best = { roundTrip: after - before, offset: wallMs - (before + after) / 2 };
  }
  return best.offset;
}

// ---------------------------------------------------------------------------------------------------------
// Writing and measuring.

async function graphql(server: ServerProcess, token: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data!;
}

interface WriteLog {
  firstSentMs: number;
  roundTrips: number[];
  /** Paced phases: how late each write went out. */
  lags: number[];
}

/**
 * Sends a phase's messages, `writers` at a time; with a rate, the i-th is due i/rate seconds after the start
 * and goes out then (or as soon as a writer is free). Each content starts with its send time (fanout-client.ts).
 */
async function writeMessages(server: ServerProcess, shape: Shape, phase: PhaseSpec): Promise<WriteLog> {
  const { world } = shape;
  const log: WriteLog = { firstSentMs: Infinity, roundTrips: [], lags: [] };
  const started = wallClockMs();
  let next = 0;
  const writer = async () => {
    while (next < phase.messages) {
      const index = next++;
      if (phase.rate) {
        const due = started + (index * 1000) / phase.rate;
        if (due > wallClockMs()) await sleep(due - wallClockMs());
        log.lags.push(Math.max(0, wallClockMs() - due));
      }
      const c = shape.pick(index);
      const sent = wallClockMs();
      log.firstSentMs = Math.min(log.firstSentMs, sent);
      const { addMessage } = await graphql(server, world.tokens[world.owner[c]], ADD_MESSAGE, {
        c: world.conversations[c],
        t: `${sent.toFixed(3)}:${phase.name} ${index}`,
      });
      log.roundTrips.push(wallClockMs() - sent);
      world.lastSeq[c] = Math.max(world.lastSeq[c], addMessage.seq as number);
    }
  };
  await Promise.all(Array.from({ length: phase.writers }, writer));
  return log;
}

interface Running {
  server: ServerProcess;
  client: SubscriberClient;
  postmaster?: number;
  clockOffsetMs: number;
}

type CpuTicks = ReturnType<typeof cpuTicks>;

/** CPU ticks of the server's, the client's (once there is one) and, when it is ours, PostgreSQL's process trees. */
function cpuTicks(run: Pick<Running, "server" | "postmaster"> & { client?: SubscriberClient }) {
  return {
    server: treeTicks(run.server.child.pid!),
    client: run.client === undefined ? 0 : treeTicks(run.client.pid),
    pg: run.postmaster === undefined ? undefined : treeTicks(run.postmaster),
  };
}

/** CPU ms each tree used between two readings. */
function cpuSpent(before: CpuTicks, after: CpuTicks) {
  return {
    server: ticksToMs(after.server - before.server),
    client: ticksToMs(after.client - before.client),
    pg: before.pg === undefined || after.pg === undefined ? undefined : ticksToMs(after.pg - before.pg),
  };
}

const sortedCopy = (values: ArrayLike<number>) => Float64Array.from(values).sort();

async function measurePhase(run: Running, shape: Shape, phase: PhaseSpec): Promise<PhaseResult> {
  const { server, client, clockOffsetMs } = run;
  await client.call({ type: "start" });
  const cpu0 = cpuTicks(run);
  const writes = await writeMessages(server, shape, phase);
  const drain = await client.call({ type: "drain", expected: shape.world.lastSeq, stallMs: STALL_MS });
  const cpu = cpuSpent(cpu0, cpuTicks(run));
  const report: PhaseReport = await client.call({ type: "report" });

  const problems: string[] = [];
  if (!drain.drained) problems.push(`stalled for ${STALL_MS / 1000} s with ${drain.behind} subscribers behind`);
  if (drain.missing) problems.push(`${drain.missing} deliveries missing`);
  if (report.repeats) problems.push(`${report.repeats} repeated or out of order`);
  if (report.skips) problems.push(`${report.skips} skips in seq`);
  // The latencies were taken as client clock − our clock.
  const latencies = sortedCopy(report.samples).map((v) => v - clockOffsetMs);
  const at = (p: number) => (latencies.length ? percentile(latencies, p) : NaN);
  return {
    spec: phase,
    deliveries: report.deliveries,
    seconds: (report.lastReceiptMs - clockOffsetMs - writes.firstSentMs) / 1000,
    latency: { p50: at(50), p95: at(95), p99: at(99), max: report.deliveries ? report.maxMs - clockOffsetMs : NaN },
    writeP50: percentile(sortedCopy(writes.roundTrips), 50),
    lagMax: phase.rate ? maxOf(writes.lags) : undefined,
    serverCpuMs: cpu.server,
    clientCpuMs: cpu.client,
    pgCpuMs: cpu.pg,
    serverPeak: processMemoryMiB(server.child.pid!).peak,
    clientPeak: processMemoryMiB(client.pid).peak,
    problems,
  };
}

const maxOf = (values: number[]) => values.reduce((a, b) => Math.max(a, b), 0);

async function measureWritesOnly(server: ServerProcess, postmaster: number | undefined, shape: Shape, spec: PhaseSpec): Promise<WritesOnlyResult> {
  const cpu0 = cpuTicks({ server, postmaster });
  const started = wallClockMs();
  const writes = await writeMessages(server, shape, spec);
  const cpu = cpuSpent(cpu0, cpuTicks({ server, postmaster }));
  return {
    spec,
    seconds: (wallClockMs() - started) / 1000,
    writeP50: percentile(sortedCopy(writes.roundTrips), 50),
    lagMax: maxOf(writes.lags),
    serverCpuMs: cpu.server,
    pgCpuMs: cpu.pg,
  };
}

/** One shape on a fresh server and a fresh client: warm-up, writes alone if asked, idle cost, then its phases. */
async function runShape(shape: Shape, databaseUrl: string, postmaster: number | undefined): Promise<RunResult> {
  const server = await startServerProcess({ DATABASE_URL: databaseUrl, ...SERVER_ENV }, 60_000, SERVER_NODE_ARGS);
  let client: SubscriberClient | undefined;
  try {
    const serverPid = server.child.pid!;
    await writeMessages(server, shape, { name: "warm-up", messages: WARM_UP, writers: 4 });
    let writesOnly: WritesOnlyResult | undefined;
    if (shape.writesOnly?.messages) {
      console.error(`fan-out: ${shape.title}: ${shape.writesOnly.name}, ${shape.writesOnly.messages} messages...`);
      writesOnly = await measureWritesOnly(server, postmaster, shape, shape.writesOnly);
    }
    await sleep(IDLE_SETTLE_MS);
    const serverBefore = processMemoryMiB(serverPid).rss;

    client = await startClient();
    const run: Running = { server, client, postmaster, clockOffsetMs: await clockOffset(client) };
    const { world } = shape;
    console.error(`fan-out: ${shape.title}: connecting ${shape.subscribers} subscribers...`);
    const connected = await client.call({
      type: "connect",
      url: `${server.url.replace("http", "ws")}/graphql`,
      query: SUBSCRIPTION,
      tokens: shape.subscriberTokens,
      conversations: world.conversations,
      afterSeq: world.lastSeq.map((seq) => seq - 1), // each subscriber gets its conversation's last message at once
      subscriberConversation: shape.subscriberConversation,
      subscriberToken: shape.subscriberToken,
      batch: CONNECT_BATCH,
      stallMs: STALL_MS,
    });
    await sleep(2_000);
    const serverConnected = processMemoryMiB(serverPid).rss;
    await sleep(IDLE_SETTLE_MS);
    const idle: Idle = {
      connectSeconds: connected.seconds,
      serverBefore,
      serverConnected,
      serverIdle: processMemoryMiB(serverPid).rss,
      clientIdle: processMemoryMiB(client.pid).rss,
    };

    const phases: PhaseResult[] = [];
    for (const phase of shape.phases) {
      console.error(`fan-out: ${shape.title}: ${phase.name}, ${phase.messages} messages...`);
      const result = await measurePhase(run, shape, phase);
      phases.push(result);
      if (result.problems.length) {
        console.error(`fan-out: ${shape.title}: ${phase.name}: ${result.problems.join("; ")}`);
        // Subscribers that lost track would only repeat the failure in later phases.
        if (result.problems.some((p) => p.startsWith("stalled"))) break;
      }
    }
    return { shape, clockOffsetMs: run.clockOffsetMs, writesOnly, idle, phases };
  } finally {
    await client?.stop();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The shapes.

function oneConversation(n: number, world: World, admins: Key[]): Shape {
  // Several devices of the owner by default; with BENCH_USERS > 1, admins (who may read any conversation).
  const tokens = admins.length ? admins.map((a) => a.secret) : world.tokens;
  return {
    title: `one conversation, ${n} subscribers`,
    world,
    subscribers: n,
    subscriberTokens: tokens,
    subscriberToken: Int32Array.from({ length: n }, (_, s) => s % tokens.length),
    subscriberConversation: new Int32Array(n),
    pick: () => 0,
    phases: [
      { name: "paced", messages: PACED_MESSAGES, writers: 1, rate: PACED_RATE },
      { name: "burst", messages: BURST_MESSAGES, writers: BURST_WRITERS },
    ].filter((p) => p.messages > 0),
  };
}

function manyConversations(world: World): Shape {
  const n = world.conversations.length;
  return {
    title: `many conversations, ${n} subscribers`,
    world,
    subscribers: n,
    subscriberTokens: world.tokens,
    subscriberToken: Int32Array.from(world.owner),
    subscriberConversation: Int32Array.from({ length: n }, (_, s) => s),
    pick: () => Math.floor(Math.random() * n),
    writesOnly: { name: "writes only", messages: MANY_RATE * Math.min(MANY_SECONDS, WRITES_ONLY_SECONDS), writers: MANY_WRITERS, rate: MANY_RATE },
    phases: [{ name: "spread", messages: MANY_RATE * MANY_SECONDS, writers: MANY_WRITERS, rate: MANY_RATE }].filter((p) => p.messages > 0),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The report.

const f = (value: number | undefined, digits = 1) => (value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits));
const thousands = (value: number) => value.toLocaleString("en-US");

function idleTable(results: RunResult[]): string[] {
  return [
    "| subscribers | connect s | server RSS before (MiB) | 2 s after connecting (MiB) | idle (MiB) | KiB per subscription 2 s after | KiB per idle subscription | client RSS (MiB) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...results.map(({ shape, idle }) => {
      const per = (rss: number) => ((rss - idle.serverBefore) * 1024) / shape.subscribers;
      return `| ${shape.subscribers} | ${f(idle.connectSeconds)} | ${f(idle.serverBefore)} | ${f(idle.serverConnected)} | ${f(idle.serverIdle)} | ${f(per(idle.serverConnected))} | ${f(per(idle.serverIdle))} | ${f(idle.clientIdle)} |`;
    }),
  ];
}

/** CPU ms per delivery and, in brackets, the share of one core it kept busy over the phase. */
function cpuCell(ms: number, phase: PhaseResult): string {
  return `${f(ms / phase.deliveries, 3)} (${f((ms / (phase.seconds * 1000)) * 100, 0)} %)`;
}

function deliveryTable(results: RunResult[]): string[] {
  return [
    "| subscribers | phase | writes/s | send lag max ms | deliveries/s | p50 ms | p95 ms | p99 ms | max ms | write round trip p50 ms | " +
      "server CPU ms/delivery (% core) | client CPU ms/delivery (% core) | PostgreSQL CPU ms/write | server peak RSS (MiB) | client peak RSS (MiB) | checks |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...results.flatMap(({ shape, phases }) =>
      phases.map((p) =>
        [
          shape.subscribers,
          p.spec.name,
          f(p.spec.messages / p.seconds),
          p.lagMax !== undefined && p.lagMax > LATE_MS ? `${f(p.lagMax)} (behind)` : f(p.lagMax),
          f(p.deliveries / p.seconds, 0),
          f(p.latency.p50),
          f(p.latency.p95),
          f(p.latency.p99),
          f(p.latency.max),
          f(p.writeP50),
          cpuCell(p.serverCpuMs, p),
          cpuCell(p.clientCpuMs, p),
          f(p.pgCpuMs === undefined ? undefined : p.pgCpuMs / p.spec.messages, 2),
          f(p.serverPeak),
          f(p.clientPeak),
          p.problems.length ? p.problems.join("; ") : "ok",
        ].join(" | "),
      ).map((row) => `| ${row} |`),
    ),
  ];
}

/** What the writes cost alone: the part of (b)'s CPU per delivery that is the write itself. */
function writesOnlyLines(results: RunResult[]): string[] {
  return results.flatMap(({ writesOnly: w }) =>
    w
      ? [
          `Writes alone, before any subscriber connected (same writers and rate, ${thousands(w.spec.messages)} messages): ` +
            `${f(w.spec.messages / w.seconds)} writes/s, send lag max ${f(w.lagMax)} ms, write round trip p50 ${f(w.writeP50)} ms, ` +
            `server CPU ${f(w.serverCpuMs / w.spec.messages, 3)} ms/write (${f((w.serverCpuMs / (w.seconds * 1000)) * 100, 0)} % core), ` +
            `PostgreSQL CPU ${f(w.pgCpuMs === undefined ? undefined : w.pgCpuMs / w.spec.messages, 2)} ms/write.`,
          "",
        ]
      : [],
  );
}

function targetsLine(one: RunResult[], many: RunResult[]): string {
  const verdict = (p99: number | undefined, limit: number) =>
    p99 === undefined || Number.isNaN(p99) ? "not measured" : `${p99 < limit ? "met" : "not met"} (p99 ${f(p99)} ms)`;
  const paced = one.find((r) => r.shape.subscribers === TARGET_ONE.subscribers)?.phases.find((p) => p.spec.name === "paced");
  const spread = many[0]?.phases[0];
  return (
    `Targets (issue 18): (a) ${thousands(TARGET_ONE.subscribers)} subscribers, paced, p99 < ${TARGET_ONE.p99} ms: ${verdict(paced?.latency.p99, TARGET_ONE.p99)}; ` +
    `(b) many conversations, p99 < ${TARGET_MANY.p99} ms: ${verdict(spread?.latency.p99, TARGET_MANY.p99)}.`
  );
}

function report(one: RunResult[], many: RunResult[], fileLimit: number): string[] {
  const cpu = os.cpus();
  const all = [...one, ...many];
  const offsets = all.map((r) => Math.abs(r.clockOffsetMs));
  const ok = all.every((r) => r.phases.every((p) => p.problems.length === 0));
  const serverArgs = SERVER_NODE_ARGS.length ? `, node ${SERVER_NODE_ARGS.join(" ")}` : "";
  return [
    `# Live fan-out benchmark, ${new Date().toISOString().slice(0, 10)}${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
    "",
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      "PostgreSQL (throwaway cluster, fsync off) on the same box. The server, the subscribers' client and PostgreSQL share these cores.",
    `Server: a child process per row, ${Object.entries(SERVER_ENV).map(([k, v]) => `${k}=${v}`).join(" ")}${serverArgs} (rate limits off: every socket ` +
      "comes from one address with a few keys; MAX_SUBSCRIPTIONS_PER_CONNECTION at its default 20, one subscription per socket), pg pool at its default size. " +
      `Open-file limit ${fileLimit}.`,
    `Subscribers: a second process (bench/fanout-client.ts: \`ws\`, graphql-transport-ws by hand), one websocket per subscriber, opened ${CONNECT_BATCH} at a time, ` +
      `each with \`${SUBSCRIPTION}\`. Writers: HTTP \`addMessage\` from the coordinating process.`,
    "Latency: from the write request being sent to each subscriber's receipt (an upper bound of commit → receipt), across the two processes' clocks " +
      `(offset measured and subtracted, at most ${f(Math.max(0, ...offsets), 2)} ms). CPU: each process tree's from /proc over the phase ` +
      "(first write → last delivery), per delivery (PostgreSQL per write), and the share of one core it kept busy. Peak RSS: the process's high-water mark so far.",
    "",
    "## (a) One conversation",
    "",
    ...(one.length
      ? [
          `All subscribers on one conversation, with ${USERS > 1 ? `the keys of ${USERS} admins, in turn` : "the key of its owner, a member (several devices of one user)"}; ` +
            "the writers use the owner's key.",
          "",
          ...idleTable(one),
          "",
          `Paced: one writer, ${PACED_MESSAGES} messages at ${PACED_RATE}/s on a clock. Burst: ${BURST_WRITERS} writers, ${BURST_MESSAGES} messages as fast as acknowledged.`,
          "",
          ...deliveryTable(one),
        ]
      : ["Not run (BENCH_SUBSCRIBERS empty)."]),
    "",
    "## (b) Many conversations",
    "",
    ...(many.length
      ? [
          `Each subscriber on a conversation of its own, owned by one of ${MANY_USERS} members and subscribed with that owner's key. Spread: ` +
            `${MANY_WRITERS} writers (the conversation's owner's key) at ${MANY_RATE} messages/s in all on a clock, each to a random conversation, for ` +
            `${MANY_SECONDS} s (${thousands(MANY_RATE * MANY_SECONDS)} messages); a send lag over ${LATE_MS} ms means the rate was not held.`,
          "",
          ...writesOnlyLines(many),
          ...idleTable(many),
          "",
          ...deliveryTable(many),
        ]
      : ["Not run (BENCH_MANY_SUBSCRIBERS=0)."]),
    "",
    targetsLine(one, many),
    "",
    ok
      ? "Every subscriber received every message of its conversation exactly once, in seq order (checked by the client)."
      : "FAILED: some subscribers did not receive every message exactly once and in seq order (see the checks column).",
    "",
  ];
}

async function main(): Promise<void> {
  const sockets = Math.max(0, ...SUBSCRIBERS, MANY_SUBSCRIBERS);
  if (ensureFileLimit(sockets)) return;
  const cluster = await startCluster();
  const postmaster = cluster.dataDir ? postmasterPid(path.join(cluster.dataDir, "data")) : undefined;
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  const one: RunResult[] = [];
  const many: RunResult[] = [];
  try {
    await admin.connect();
    await admin.query("create database parley_bench_fanout");
    const databaseUrl = withDatabase(cluster.adminUrl, "parley_bench_fanout");
    const db = createDatabase(loadConfig({ DATABASE_URL: databaseUrl }));
    const seeder = new pg.Client({ connectionString: databaseUrl });
    let oneWorlds: World[];
    let manyWorld: World | undefined;
    let admins: Key[] = [];
    try {
      await db.migrate();
      await seeder.connect();
      const [member] = await createKeys(db.knex, "fan-out member", Role.MEMBER, 1);
      if (USERS > 1) admins = await createKeys(db.knex, "fan-out admin", Role.ADMIN, USERS);
      oneWorlds = [];
      for (const n of SUBSCRIBERS) oneWorlds.push(await seedConversations(seeder, [member], 1, `fan-out ${n}`));
      if (MANY_SUBSCRIBERS > 0) {
        const owners = await createKeys(db.knex, "fan-out owner", Role.MEMBER, MANY_USERS);
        manyWorld = await seedConversations(seeder, owners, MANY_SUBSCRIBERS, "fan-out many");
      }
    } finally {
      await seeder.end();
      await db.close();
    }
    for (const [i, n] of SUBSCRIBERS.entries()) one.push(await runShape(oneConversation(n, oneWorlds[i], admins), databaseUrl, postmaster));
    if (manyWorld) many.push(await runShape(manyConversations(manyWorld), databaseUrl, postmaster));
  } finally {
    await admin.end();
    stopCluster(cluster);
  }
  writeResults("fanout-", report(one, many, fileLimits().soft));
  const failed = [...one, ...many].flatMap((r) => r.phases.filter((p) => p.problems.length).map((p) => `${r.shape.title}, ${p.spec.name}: ${p.problems.join("; ")}`));
  if (failed.length) throw new Error(`delivery checks failed:\n${failed.join("\n")}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
