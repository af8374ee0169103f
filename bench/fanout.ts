/**
 * Live fan-out: how fast does one message reach N subscribers of one conversation, and what does an idle
 * subscription cost the server?
 *
 * A throwaway PostgreSQL cluster, one Parley server as a child process (NODE_ENV=production, the pg pool at
 * its default size), and, in this process, N graphql-ws clients (one websocket each, as N browser tabs would
 * be) subscribed to `messageAdded(conversationId) { id seq content }` of one conversation. For N in
 * BENCH_SUBSCRIBERS (default 100, 1000, 5000), on a fresh server each time:
 *   1. idle cost: server RSS before any socket and after all N subscriptions are live and idle;
 *   2. paced: one writer adds PACED_MESSAGES messages at PACED_RATE per second (a lively chat);
 *   3. burst: BURST_WRITERS writers add BURST_MESSAGES messages as fast as the server acknowledges them.
 * Each message carries the time its write request was sent; every receipt records now − sent. That is an
 * upper bound of commit-to-receipt (it also holds the write's own request and commit), measured on one clock;
 * the write's round trip (send → acknowledgement after commit) is reported beside it. Every subscriber must
 * receive every message exactly once, in seq order; the run fails otherwise.
 *
 * The client side runs in the same box (2 cores here), so the figures include its cost: a lower bound of
 * what a server alone can do.
 *
 * Run:   node -r @swc-node/register bench/fanout.ts      (or: npm run bench:fanout)
 * Env:   BENCH_SUBSCRIBERS=100,1000  BENCH_PACED_MESSAGES  BENCH_BURST_MESSAGES  BENCH_LABEL (results title)
 *        BENCH_SERVER_NODE_ARGS (node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
 * Output: bench/results/fanout-<YYYY-MM-DD>.md (also printed).
 */
import "reflect-metadata";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import pg from "pg";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { createUserKey } from "../src/modules/api-key/api-key.service";
import { Role } from "../src/modules/user/role.enum";
import { percentile, processMemoryMiB, writeResults } from "./measure";
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess, type ServerProcess } from "../test/helpers/process";

const SUBSCRIBERS = (process.env.BENCH_SUBSCRIBERS ?? "100,1000,5000").split(",").map(Number);
const PACED_MESSAGES = Number(process.env.BENCH_PACED_MESSAGES ?? 100);
const PACED_RATE = 10;
const BURST_MESSAGES = Number(process.env.BENCH_BURST_MESSAGES ?? 200);
const BURST_WRITERS = 4;
/** Sockets opened at once while connecting N subscribers. */
const CONNECT_BATCH = 100;
const SUBSCRIPTION = "subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { id seq content } }";
const ADD_MESSAGE = "mutation($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { seq } }";

interface Subscriber {
  client: Client;
  lastSeq: number;
  received: number;
}

interface PhaseResult {
  messages: number;
  deliveries: number;
  seconds: number;
  latencies: number[];
  roundTrips: number[];
}



const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

/**
 * Subscribes N clients; `onMessage` sees every event. Resolves once all N are connected and subscribed
 * (graphql-ws has no subscribe acknowledgement, so the caller proves liveness with a first message).
 */
async function subscribeAll(server: ServerProcess, token: string, conversationId: string, afterSeq: number, n: number, onMessage: (sub: Subscriber, seq: number, content: string) => void) {
  const subscribers: Subscriber[] = [];
  for (let start = 0; start < n; start += CONNECT_BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(CONNECT_BATCH, n - start) }, () => {
        const client = createClient({
          url: `${server.url.replace("http", "ws")}/graphql`,
          webSocketImpl: WebSocket,
          connectionParams: { authorization: `Bearer ${token}` },
          retryAttempts: 0,
          lazy: false,
        });
        const sub: Subscriber = { client, lastSeq: 0, received: 0 };
        subscribers.push(sub);
        return new Promise<void>((resolve, reject) => {
          client.on("connected", () => resolve());
          client.subscribe<{ messageAdded: { seq: number; content: string } }>(
            { query: SUBSCRIPTION, variables: { c: conversationId, after: afterSeq } },
            {
              next: ({ data, errors }) => {
                if (errors || !data) throw new Error(`subscription error: ${JSON.stringify(errors)}`);
                onMessage(sub, data.messageAdded.seq, data.messageAdded.content);
              },
              error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
              complete: () => undefined,
            },
          );
        });
      }),
    );
  }
  return subscribers;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function runOne(databaseUrl: string, token: string, n: number) {
  const server = await startServerProcess({
    DATABASE_URL: databaseUrl,
    NODE_ENV: "production",
    LOG_LEVEL: "info", // the start line is how startServerProcess learns the port
    RATE_LIMIT_ENABLED: "false", // every socket comes from one address here
  }, 60_000, process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean));
  const pid = server.child.pid!;
  try {
    const { createConversation } = await graphql(server, token, "mutation { createConversation(input: { title: \"fan-out\" }) { id } }", {});
    const conversationId = createConversation.id as string;
    // Warm the server's code paths, then read its resting size.
    const WARM_UP = 20;
    for (let i = 0; i < WARM_UP; i += 1) await graphql(server, token, ADD_MESSAGE, { c: conversationId, t: "0:warm-up" });
    await sleep(1_000);
    const before = processMemoryMiB(pid);

    let phase: PhaseResult | undefined;
    let errors = 0;
    // afterSeq: a subscription registered after the primer was written still gets it.
    const subscribers = await subscribeAll(server, token, conversationId, WARM_UP, n, (sub, seq, content) => {
      if (sub.lastSeq !== 0 && seq !== sub.lastSeq + 1) errors += 1; // a gap, a repeat or a reordering
      sub.lastSeq = seq;
      sub.received += 1;
      if (phase) phase.latencies.push(performance.now() - Number(content.split(":")[0]));
    });
    // Every subscription is live once it has received the primer.
    await graphql(server, token, ADD_MESSAGE, { c: conversationId, t: `${performance.now()}:primer` });
    await waitFor(() => subscribers.every((sub) => sub.received === 1), "every subscriber to see the primer");
    await sleep(2_000);
    const idle = processMemoryMiB(pid);

    const runPhase = async (messages: number, writers: number, pace?: number): Promise<PhaseResult> => {
      const result: PhaseResult = { messages, deliveries: 0, seconds: 0, latencies: [], roundTrips: [] };
      const expected = subscribers.map((sub) => sub.received + messages);
      phase = result;
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: writers }, async () => {
          while (next < messages) {
            const index = next++;
            if (pace) {
              const due = started + (index * 1000) / pace;
              if (due > performance.now()) await sleep(due - performance.now());
            }
            const sent = performance.now();
            await graphql(server, token, ADD_MESSAGE, { c: conversationId, t: `${sent}:message ${index}` });
            result.roundTrips.push(performance.now() - sent);
          }
        }),
      );
      await waitFor(() => subscribers.every((sub, i) => sub.received >= expected[i]), "every delivery");
      result.seconds = (performance.now() - started) / 1000;
      result.deliveries = messages * n;
      phase = undefined;
      if (subscribers.some((sub, i) => sub.received !== expected[i])) throw new Error("a subscriber received a message twice");
      return result;
    };
    const paced = await runPhase(PACED_MESSAGES, 1, PACED_RATE);
    const burst = await runPhase(BURST_MESSAGES, BURST_WRITERS);
    if (errors > 0) throw new Error(`${errors} deliveries out of seq order`);
    const after = processMemoryMiB(pid);
    await Promise.all(subscribers.map((sub) => sub.client.dispose()));
    return { n, before, idle, after, paced, burst };
  } finally {
    await server.stop();
  }
}

function summary(phase: PhaseResult) {
  const sorted = [...phase.latencies].sort((a, b) => a - b);
  const trips = [...phase.roundTrips].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
    writeP50: percentile(trips, 50),
    writesPerSecond: phase.messages / phase.seconds,
    deliveriesPerSecond: phase.deliveries / phase.seconds,
  };
}

async function main(): Promise<void> {
  const cluster = await startCluster();
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  const results: Awaited<ReturnType<typeof runOne>>[] = [];
  try {
    await admin.connect();
    await admin.query("create database parley_bench_fanout");
    const databaseUrl = withDatabase(cluster.adminUrl, "parley_bench_fanout");
    const db = createDatabase(loadConfig({ DATABASE_URL: databaseUrl }));
    await db.migrate();
    const { secret } = await createUserKey(db.knex, "fan-out member", Role.MEMBER);
    await db.close();
    for (const n of SUBSCRIBERS) {
      console.error(`fan-out: ${n} subscribers...`);
      results.push(await runOne(databaseUrl, secret, n));
    }
  } finally {
    await admin.end();
    stopCluster(cluster);
  }

  const f = (value: number, digits = 1) => value.toFixed(digits);
  const cpu = os.cpus();
  const lines = [
    `# Live fan-out benchmark, ${new Date().toISOString().slice(0, 10)}${process.env.BENCH_LABEL ? ` (${process.env.BENCH_LABEL})` : ""}`,
    "",
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      "PostgreSQL (throwaway cluster, fsync off) on the same box; the subscribers' client runs on the same cores.",
    `Subscription: \`${SUBSCRIPTION}\`, one websocket per subscriber, all on one conversation.`,
    `Latency: from the write request being sent to each subscriber's receipt (an upper bound of commit → receipt).`,
    "",
    "## Idle subscriptions",
    "",
    "| subscribers | server RSS before (MiB) | with N idle (MiB) | per 1,000 idle (MiB) |",
    "|---:|---:|---:|---:|",
    ...results.map((r) => `| ${r.n} | ${f(r.before.rss)} | ${f(r.idle.rss)} | ${f(((r.idle.rss - r.before.rss) * 1000) / r.n)} |`),
    "",
    "## Delivery",
    "",
    `Paced: one writer, ${PACED_MESSAGES} messages at ${PACED_RATE}/s. Burst: ${BURST_WRITERS} writers, ${BURST_MESSAGES} messages as fast as acknowledged.`,
    "",
    "| subscribers | phase | writes/s | deliveries/s | p50 ms | p95 ms | p99 ms | max ms | write round trip p50 ms | peak RSS (MiB) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...results.flatMap((r) =>
      (["paced", "burst"] as const).map((name) => {
        const s = summary(r[name]);
        return `| ${r.n} | ${name} | ${f(s.writesPerSecond)} | ${f(s.deliveriesPerSecond, 0)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} | ${f(s.writeP50)} | ${f(r.after.peak)} |`;
      }),
    ),
    "",
    "Every subscriber received every message exactly once, in seq order (checked by the script).",
    "",
  ];
  writeResults("fanout-", lines);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
