/**
 * What does PostgreSQL row-level security on `conversations` and `messages` cost, with policies keyed on a
 * per-transaction identity (set_config('parley.user_id' / 'parley.role', ..., true)), compared with the same
 * queries without RLS?
 *
 * A throwaway cluster gets the real migrations and the DESIGN.md "Benchmark workload" data, then the
 * operations H (history), I (inbox) and W (write) run from a 32-connection pg Pool in six variants:
 *   A  no RLS, plain autocommit statements (W needs its transaction anyway);
 *   B  no RLS, each request wrapped in BEGIN; set_config(identity); ...; COMMIT — what carrying the identity
 *      into the database costs by itself (extra round trips), with no policy to evaluate;
 *   C  RLS on, the rule stated plainly: a message is visible iff its conversation is (correlated EXISTS);
 *   D  RLS on, the same rule written for the planner: the settings read once per statement (scalar
 *      subqueries become InitPlans) and the member branch of the messages policy as an uncorrelated IN.
 *   E, F  B and C again with named (prepared) statements, which cache the plan — and the policies in it.
 * Variants alternate (A B C D E F, per operation, each round) so background load on a shared machine hits them
 * alike. Afterwards, on one idle connection, EXPLAIN ANALYZE gives each statement's server-side planning and
 * execution time per variant — the policy cost with no round trip in the way — and the full
 * EXPLAIN (ANALYZE, BUFFERS) plans of H under RLS.
 *
 * Run:   cd /work/main && node -r @swc-node/register bench/rls-overhead.ts
 * Tries: BENCH_WARMUP_MS, BENCH_MEASURE_MS, BENCH_ROUNDS shorten a run; results name the values used.
 * Output: bench/results/rls-overhead-<YYYY-MM-DD>.md (also printed).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { type ClusterState, startCluster, stopCluster } from "../test/setup/pg-cluster";
import { CONVERSATIONS_PER_MEMBER, H_PAGE, MEMBERS, MESSAGES_PER_CONVERSATION, seedWorkload, type SeedStep } from "./workload";

const POOL_SIZE = 32;
const WORKERS = 32;
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 3_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** Samples per statement and variant for the single-connection EXPLAIN timings. */
const EXPLAIN_SAMPLES = 300;

const DB_NAME = "parley_bench_rls";
/** The role requests run as: not a superuser and not the tables' owner, the only kind RLS applies to. */
const APP_ROLE = "parley_app";


// ---------------------------------------------------------------------------------------------------------
// The statements a web server would send. Identical in every variant: only the wrapping and RLS differ.

const SET_IDENTITY = "select set_config('parley.user_id', $1, true), set_config('parley.role', $2, true)";

const H_CONVERSATION = `select id, owner_id, title, origin, status, last_seq, message_count, created_at, updated_at
  from conversations where id = $1`;

const H_MESSAGES = `select m.id, m.seq, m.role, m.content, m.created_at, u.id as author_id, u.display_name as author_display_name
  from messages m left join users u on u.id = m.author_id
  where m.conversation_id = $1
  order by m.seq desc
  limit ${H_PAGE}`;

const I_INBOX = `select c.id, c.title, c.origin, c.updated_at,
    m.id as last_message_id, m.role as last_message_role, m.content as last_message_content, m.created_at as last_message_at
  from conversations c
  left join lateral (
    select id, role, content, created_at from messages where conversation_id = c.id order by seq desc limit 1
  ) m on true
  where c.owner_id = $1
  order by c.updated_at desc, c.id desc
  limit 20`;

const W_BUMP = `update conversations set last_seq = last_seq + 1, message_count = message_count + 1, updated_at = now()
  where id = $1 returning last_seq`;

const W_INSERT = `insert into messages (conversation_id, seq, author_id, role, content)
  values ($1, $2, $3, 'user', $4) returning id`;

// ---------------------------------------------------------------------------------------------------------
// Policies. Both modes state access.service.ts's rule: admin all; everyone their own conversations; a
// service also the conversations granted by id or by origin.

type RlsMode = "off" | "plain" | "tuned";

// nullif: once a session has set a custom setting, it reads back as '' (not NULL) after the transaction
// that set it ends, and ''::uuid would make every policy check throw instead of deny.
const USER_ID = "nullif(current_setting('parley.user_id', true), '')::uuid";
const ROLE = "current_setting('parley.role', true)";

function policyRules(mode: Exclude<RlsMode, "off">): { conversations: string; messages: string } {
  // Tuned: as a scalar subquery the setting becomes an InitPlan, read once per statement, and compares like
  // a parameter (usable as an index key) instead of a function call per row.
  const uid = mode === "tuned" ? `(select ${USER_ID})` : USER_ID;
  const role = mode === "tuned" ? `(select ${ROLE})` : ROLE;
  const conversations = `${role} = 'admin'
      or owner_id = ${uid}
      or (${role} = 'service' and exists (
            select 1 from service_grants g
            where g.service_id = ${uid}
              and (g.conversation_id = conversations.id or g.origin = conversations.origin)))`;
  // The subqueries on conversations get the conversations policy applied too (RLS applies inside policies),
  // so "exists the parent" is exactly "the parent is visible".
  const messages =
    mode === "plain"
      ? "exists (select 1 from conversations c where c.id = messages.conversation_id)"
      : // Tuned: own conversations as an uncorrelated set (one index scan, hashed, per statement) instead of
        // one parent lookup per message row; only services, whose grants can cover thousands of
        // conversations, keep the per-row parent check.
        `${role} = 'admin'
      or conversation_id in (select c.id from conversations c where c.owner_id = ${uid})
      or (${role} = 'service' and exists (select 1 from conversations c where c.id = messages.conversation_id))`;
  return { conversations, messages };
}

function policySql(mode: Exclude<RlsMode, "off">): string[] {
  const rules = policyRules(mode);
  return [
    `create policy conversations_access on conversations to ${APP_ROLE}
    using (${rules.conversations})
    with check (${rules.conversations})`,
    `create policy messages_access on messages to ${APP_ROLE}
    using (${rules.messages})
    with check (${rules.messages})`,
  ];
}

/** Switches policies between variants; runs as the owner while the app pool is idle (it takes table locks). */
async function setRlsMode(owner: pg.Client, mode: RlsMode): Promise<void> {
  await owner.query("begin");
  await owner.query("drop policy if exists conversations_access on conversations");
  await owner.query("drop policy if exists messages_access on messages");
  if (mode === "off") {
    await owner.query("alter table conversations disable row level security");
    await owner.query("alter table messages disable row level security");
  } else {
    for (const sql of policySql(mode)) await owner.query(sql);
    await owner.query("alter table conversations enable row level security");
    await owner.query("alter table messages enable row level security");
  }
  await owner.query("commit");
}

// ---------------------------------------------------------------------------------------------------------
// Workload.

interface Identity {
  userId: string;
  role: "member" | "service" | "admin";
}

interface Fixture {
  members: string[];
  conversations: { id: string; ownerId: string; origin: string }[];
  /** Conversations the measured service reaches through its origin grant only. */
  discordConversations: string[];
  discordAdapter: string;
  /** Conversations the discord adapter may see (own + granted), counted by the owner without RLS. */
  serviceVisible: number;
}

interface Operation {
  key: string;
  title: string;
  /** W is one transaction even in variant A; H and I are autocommit statements there. */
  transactional: boolean;
  /** A random target per request, and the statements for it; throws when a result is not the expected one. */
  next(f: Fixture): { identity: Identity; run(q: Query): Promise<void> };
}

/**
 * Sends one statement. In the prepared variants it goes as a named statement: parsed, rewritten (policies
 * attached) and, once PostgreSQL settles on a generic plan, planned only once per connection.
 */
type Query = (name: string, text: string, values: unknown[]) => Promise<pg.QueryResult>;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];

// 200-character message bodies, varied so the inserts are not all the same tuple.
const BODIES = Array.from({ length: 64 }, (_, i) => `bench message ${i} `.repeat(20).slice(0, 200));

function expectRows(what: string, result: pg.QueryResult, rows: number): void {
  // A policy that hides a row would make RLS look cheaper; an empty answer must fail loudly.
  if (result.rowCount !== rows) throw new Error(`${what}: ${result.rowCount} rows, expected ${rows}`);
}

async function history(q: Query, conversationId: string): Promise<void> {
  expectRows("H conversation", await q("h_conversation", H_CONVERSATION, [conversationId]), 1);
  expectRows("H messages", await q("h_messages", H_MESSAGES, [conversationId]), H_PAGE);
}

const OPERATIONS: Operation[] = [
  {
    key: "H member",
    title: "H history, member (owner)",
    transactional: false,
    next(f) {
      const c = pick(f.conversations);
      return { identity: { userId: c.ownerId, role: "member" }, run: (q) => history(q, c.id) };
    },
  },
  {
    key: "H service",
    title: "H history, service via origin grant",
    transactional: false,
    next(f) {
      const id = pick(f.discordConversations);
      return { identity: { userId: f.discordAdapter, role: "service" }, run: (q) => history(q, id) };
    },
  },
  {
    key: "I member",
    title: "I inbox, member",
    transactional: false,
    next(f) {
      const userId = pick(f.members);
      return {
        identity: { userId, role: "member" },
        run: async (q) => expectRows("I", await q("i_inbox", I_INBOX, [userId]), CONVERSATIONS_PER_MEMBER),
      };
    },
  },
  {
    key: "W member",
    title: "W add message, member (owner)",
    transactional: true,
    next(f) {
      const c = pick(f.conversations);
      return {
        identity: { userId: c.ownerId, role: "member" },
        run: async (q) => {
          const bumped = await q("w_bump", W_BUMP, [c.id]);
          expectRows("W bump", bumped, 1);
          expectRows("W insert", await q("w_insert", W_INSERT, [c.id, bumped.rows[0].last_seq, c.ownerId, pick(BODIES)]), 1);
        },
      };
    },
  },
];

interface Variant {
  key: "A" | "B" | "C" | "D" | "E" | "F";
  title: string;
  rls: RlsMode;
  /** BEGIN; set_config(identity); ...; COMMIT around every request. */
  carriesIdentity: boolean;
  /** Named (prepared) statements instead of knex-style unnamed ones. */
  prepared: boolean;
}

// E and F repeat B and C with prepared statements: the policies' planning cost is paid per statement
// execution with unnamed statements (what knex sends) but only once per connection with named ones.
const VARIANTS: Variant[] = [
  { key: "A", title: "no RLS, autocommit", rls: "off", carriesIdentity: false, prepared: false },
  { key: "B", title: "no RLS, BEGIN + set_config + COMMIT", rls: "off", carriesIdentity: true, prepared: false },
  { key: "C", title: "RLS, plain policies", rls: "plain", carriesIdentity: true, prepared: false },
  { key: "D", title: "RLS, tuned policies", rls: "tuned", carriesIdentity: true, prepared: false },
  { key: "E", title: "as B, prepared statements", rls: "off", carriesIdentity: true, prepared: true },
  { key: "F", title: "as C, prepared statements", rls: "plain", carriesIdentity: true, prepared: true },
];

async function request(client: pg.ClientBase, variant: Variant, op: Operation, f: Fixture): Promise<void> {
  const job = op.next(f);
  const q: Query = (name, text, values) => client.query(variant.prepared ? { name, text, values } : { text, values });
  const inTransaction = variant.carriesIdentity || op.transactional;
  if (!inTransaction) return job.run(q);
  await client.query("begin");
  try {
    if (variant.carriesIdentity) await q("set_identity", SET_IDENTITY, [job.identity.userId, job.identity.role]);
    await job.run(q);
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Load generation.

interface Stats {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** WORKERS closed loops for `ms`; latency includes taking a pool client, as a web server's would. */
async function drive(pool: pg.Pool, variant: Variant, op: Operation, f: Fixture, ms: number): Promise<Stats> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  const deadline = start + ms;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const client = await pool.connect();
      try {
        await request(client, variant, op, f);
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error;
      } finally {
        client.release();
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const elapsed = performance.now() - start;
  if (firstError) console.error(`  ${op.key} ${variant.key}: ${errors} errors, first: ${String(firstError)}`);
  const sorted = Float64Array.from(latencies).sort();
  return {
    rps: latencies.length / (elapsed / 1000),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    errors,
  };
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

// ---------------------------------------------------------------------------------------------------------
// Database set-up.

/** The DESIGN.md data (bench/workload.ts) plus service grants; returns the seconds each step took. */
async function seed(owner: pg.Client): Promise<SeedStep[]> {
  return seedWorkload(owner, [
    {
      name: "service_grants (origin + ~100 conversations per service)",
      sql: [
        `insert into service_grants (service_id, origin) select id, 'discord' from users where email = 'discord-adapter@bench.test'`,
        // Per-conversation grants for every service except the assistant, so the grants table is not trivially small.
        `insert into service_grants (service_id, conversation_id)
         select s.id, c.id from users s join conversations c on abs(hashtext(c.id::text || s.id::text)) % 100 = 0
         where s.role = 'service' and s.email <> 'assistant@bench.test'`,
      ],
    },
  ]);
}

async function createAppRole(owner: pg.Client): Promise<void> {
  // Roles are cluster-wide: recreate, in case an external server (TEST_DATABASE_URL) kept one from a failed run.
  await owner.query(`drop role if exists ${APP_ROLE}`);
  await owner.query(`create role ${APP_ROLE} login nosuperuser nobypassrls`);
  await owner.query(`grant usage on schema public to ${APP_ROLE}`);
  await owner.query(`grant select, insert, update, delete on users, conversations, messages, service_grants to ${APP_ROLE}`);
}

async function loadFixture(owner: pg.Client): Promise<Fixture> {
  const members = (await owner.query<{ id: string }>("select id from users where role = 'member'")).rows.map((r) => r.id);
  const conversations = (
    await owner.query<{ id: string; ownerId: string; origin: string }>(
      `select id, owner_id as "ownerId", origin from conversations`,
    )
  ).rows;
  const discordAdapter = (await owner.query("select id from users where email = 'discord-adapter@bench.test'")).rows[0].id as string;
  const serviceVisible = Number(
    (
      await owner.query(
        `select count(*) from conversations c where c.owner_id = $1
         or exists (select 1 from service_grants g where g.service_id = $1 and (g.conversation_id = c.id or g.origin = c.origin))`,
        [discordAdapter],
      )
    ).rows[0].count,
  );
  return {
    members,
    conversations,
    discordConversations: conversations.filter((c) => c.origin === "discord").map((c) => c.id),
    discordAdapter,
    serviceVisible,
  };
}

/** Runs `sql` as `identity` (none: no setting at all) in a transaction that is rolled back. */
async function asIdentity(client: pg.ClientBase, identity: Identity | undefined, sql: string, params: unknown[] = []) {
  await client.query("begin");
  try {
    if (identity) await client.query(SET_IDENTITY, [identity.userId, identity.role]);
    return await client.query(sql, params);
  } finally {
    await client.query("rollback");
  }
}

/** The policies must deny what access.service.ts denies, or the timings compare different work. */
async function checkPolicies(pool: pg.Pool, f: Fixture): Promise<void> {
  const client = await pool.connect();
  try {
    const own = f.conversations[0];
    const foreign = f.conversations.find((c) => c.ownerId !== own.ownerId)!;
    const member: Identity = { userId: own.ownerId, role: "member" };
    const service: Identity = { userId: f.discordAdapter, role: "service" };
    const count = async (identity: Identity | undefined, sql: string, params: unknown[] = []) =>
      Number((await asIdentity(client, identity, sql, params)).rows[0].count);
    const expectCount = async (what: string, got: Promise<number>, want: number) => {
      const value = await got;
      if (value !== want) throw new Error(`policy check "${what}": ${value}, expected ${want}`);
    };
    await expectCount("member sees own conversations", count(member, "select count(*) from conversations"), CONVERSATIONS_PER_MEMBER);
    await expectCount("member sees own messages", count(member, "select count(*) from messages where conversation_id = $1", [own.id]), MESSAGES_PER_CONVERSATION);
    await expectCount("member sees no foreign messages", count(member, "select count(*) from messages where conversation_id = $1", [foreign.id]), 0);
    await expectCount("service sees own + granted", count(service, "select count(*) from conversations"), f.serviceVisible);
    await expectCount("service sees messages via origin grant", count(service, "select count(*) from messages where conversation_id = $1", [f.discordConversations[0]]), MESSAGES_PER_CONVERSATION);
    await expectCount("no identity sees nothing", count(undefined, "select count(*) from conversations"), 0);
    await expectCount("admin sees all", count({ userId: own.ownerId, role: "admin" }, "select count(*) from conversations"), f.conversations.length);
    const bump = await asIdentity(client, member, W_BUMP, [foreign.id]);
    if (bump.rowCount !== 0) throw new Error("policy check: member bumped a foreign conversation");
    const insert = asIdentity(client, member, W_INSERT, [foreign.id, 1000, own.ownerId, "x"]);
    const denied = await insert.then(() => false, (error: { code?: string }) => error.code === "42501");
    if (!denied) throw new Error("policy check: member inserted into a foreign conversation (or failed otherwise)");
  } finally {
    client.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Single-connection statement timings and plans.

interface StatementCase {
  label: string;
  identity(f: Fixture): Identity;
  /** Runs the statement(s) under EXPLAIN prefix `explain`; returns the EXPLAIN results. */
  run(client: pg.ClientBase, explain: string, f: Fixture, identity: Identity): Promise<pg.QueryResult[]>;
}

const ownConversation = (f: Fixture, identity: Identity) => pick(f.conversations.filter((c) => c.ownerId === identity.userId)).id;

const STATEMENT_CASES: StatementCase[] = [
  {
    label: "H conversation, member",
    identity: (f) => ({ userId: pick(f.members), role: "member" }),
    run: async (c, explain, f, id) => [await c.query(`${explain} ${H_CONVERSATION}`, [ownConversation(f, id)])],
  },
  {
    label: "H messages, member",
    identity: (f) => ({ userId: pick(f.members), role: "member" }),
    run: async (c, explain, f, id) => [await c.query(`${explain} ${H_MESSAGES}`, [ownConversation(f, id)])],
  },
  {
    label: "H conversation, service",
    identity: (f) => ({ userId: f.discordAdapter, role: "service" }),
    run: async (c, explain, f) => [await c.query(`${explain} ${H_CONVERSATION}`, [pick(f.discordConversations)])],
  },
  {
    label: "H messages, service",
    identity: (f) => ({ userId: f.discordAdapter, role: "service" }),
    run: async (c, explain, f) => [await c.query(`${explain} ${H_MESSAGES}`, [pick(f.discordConversations)])],
  },
  {
    label: "I inbox, member",
    identity: (f) => ({ userId: pick(f.members), role: "member" }),
    run: async (c, explain, _f, id) => [await c.query(`${explain} ${I_INBOX}`, [id.userId])],
  },
  {
    label: "W bump + insert, member",
    identity: (f) => ({ userId: pick(f.members), role: "member" }),
    run: async (c, explain, f, id) => {
      const conversationId = ownConversation(f, id);
      const bump = await c.query(`${explain} ${W_BUMP}`, [conversationId]);
      const seq = (await c.query("select last_seq from conversations where id = $1", [conversationId])).rows[0].last_seq;
      return [bump, await c.query(`${explain} ${W_INSERT}`, [conversationId, seq, id.userId, BODIES[0]])];
    },
  },
];

interface StatementTiming {
  planning: number;
  execution: number;
}

/** Median planning/execution time of each case, each sample in its own rolled-back transaction. */
async function statementTimings(client: pg.ClientBase, f: Fixture): Promise<StatementTiming[]> {
  const timings: StatementTiming[] = [];
  for (const sc of STATEMENT_CASES) {
    const planning: number[] = [];
    const execution: number[] = [];
    for (let i = 0; i < EXPLAIN_SAMPLES; i++) {
      const identity = sc.identity(f);
      await client.query("begin");
      try {
        await client.query(SET_IDENTITY, [identity.userId, identity.role]);
        // TIMING OFF: per-node clock reads would inflate exactly the many small subplan calls we measure.
        const results = await sc.run(client, "explain (analyze, timing off, summary on, format json)", f, identity);
        const plans = results.map((r) => (r.rows[0]["QUERY PLAN"] as { "Planning Time": number; "Execution Time": number }[])[0]);
        planning.push(plans.reduce((sum, p) => sum + p["Planning Time"], 0));
        execution.push(plans.reduce((sum, p) => sum + p["Execution Time"], 0));
      } finally {
        await client.query("rollback"); // W's rows go away; the dead tuples left behind are a few hundred
      }
    }
    timings.push({ planning: median(planning), execution: median(execution) });
  }
  return timings;
}

const PLAN_CHOICE_REQUESTS = 20;

/** Generic vs custom plan counts of the named statements after a few requests of each operation. */
async function preparedPlanChoice(url: string, mode: RlsMode, f: Fixture): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const variant = VARIANTS.find((v) => v.prepared && v.rls === mode)!;
    for (const op of OPERATIONS) {
      for (let i = 0; i < PLAN_CHOICE_REQUESTS; i++) await request(client, variant, op, f);
    }
    const rows = (await client.query("select name, generic_plans, custom_plans from pg_prepared_statements order by name")).rows;
    return rows.map((r) => `${r.name} ${r.generic_plans} generic / ${r.custom_plans} custom`).join(", ");
  } finally {
    await client.end();
  }
}

async function explainH(client: pg.ClientBase, identity: Identity, conversationId: string): Promise<string> {
  const plans: string[] = [];
  await client.query("begin");
  try {
    await client.query(SET_IDENTITY, [identity.userId, identity.role]);
    for (const sql of [H_CONVERSATION, H_MESSAGES]) {
      // Once untimed first, so the plan shows a warm cache rather than the first touch of these pages.
      await client.query(sql, [conversationId]);
      const result = await client.query(`explain (analyze, buffers) ${sql}`, [conversationId]);
      plans.push(result.rows.map((r) => r["QUERY PLAN"] as string).join("\n"));
    }
  } finally {
    await client.query("rollback");
  }
  return plans.join("\n\n");
}

/**
 * The plan a prepared H messages statement runs once cached (variant F): generic, with the conversation id a
 * parameter. Shows whether the per-row policy subplan stays, since preparing only removes planning.
 */
async function explainGenericHMessages(client: pg.ClientBase, identity: Identity, conversationId: string): Promise<string> {
  if (!/^[0-9a-f-]{36}$/.test(conversationId)) throw new Error("not a uuid"); // it is inlined below
  await client.query("begin");
  try {
    await client.query(SET_IDENTITY, [identity.userId, identity.role]);
    await client.query("set local plan_cache_mode = force_generic_plan");
    await client.query(`prepare bench_h_messages as ${H_MESSAGES}`);
    await client.query(`execute bench_h_messages('${conversationId}')`);
    const result = await client.query(`explain (analyze, buffers) execute bench_h_messages('${conversationId}')`);
    return result.rows.map((r) => r["QUERY PLAN"] as string).join("\n");
  } finally {
    await client.query("rollback");
    await client.query("deallocate bench_h_messages"); // prepared statements outlive the transaction
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report.

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
const ratio = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");

function machine(pgVersion: string): string[] {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  };
  return [
    `- nproc: ${sh("nproc", [])} (${os.cpus()[0]?.model ?? "?"}), RAM ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- node ${process.version}, pg (node-postgres) ${(require("pg/package.json") as { version: string }).version}`,
    `- ${pgVersion}`,
  ];
}

async function main(): Promise<void> {
  const cluster = await startCluster();
  // The cluster lives in /tmp and keeps running if this process dies: stop it on Ctrl-C too.
  const onSignal = () => {
    try {
      stopCluster(cluster);
    } finally {
      process.exit(130);
    }
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await bench(cluster);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (!cluster.dataDir) await dropExternal(cluster); // someone else's server: leave it as we found it
    stopCluster(cluster);
  }
}

function urlFor(adminUrl: string, user: string | undefined, database: string): string {
  const url = new URL(adminUrl);
  if (user) {
    url.username = user;
    url.password = "";
  }
  url.pathname = `/${database}`;
  return url.toString();
}

async function dropExternal(cluster: ClusterState): Promise<void> {
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${DB_NAME} with (force)`);
    await admin.query(`drop role if exists ${APP_ROLE}`);
  } finally {
    await admin.end();
  }
}

async function bench(cluster: ClusterState): Promise<void> {
  const started = new Date();
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${DB_NAME}`);
    await admin.query(`create database ${DB_NAME}`);
  } finally {
    await admin.end();
  }

  const ownerUrl = urlFor(cluster.adminUrl, undefined, DB_NAME);
  const db = createDatabase(loadConfig({ DATABASE_URL: ownerUrl }));
  try {
    const applied = await db.migrate();
    console.log(`migrations applied: ${applied.length}`);
  } finally {
    await db.close();
  }

  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  const pool = new pg.Pool({ connectionString: urlFor(cluster.adminUrl, APP_ROLE, DB_NAME), max: POOL_SIZE });
  // An idle client whose backend goes away (cluster stopped after a failure) must not crash the process.
  pool.on("error", (error) => console.error(`pool: ${error.message}`));
  try {
    const pgVersion = (await owner.query("select version()")).rows[0].version as string;
    const settings = (
      await owner.query(
        `select name, setting, unit from pg_settings
         where name in ('shared_buffers', 'fsync', 'synchronous_commit', 'max_connections', 'work_mem', 'jit')`,
      )
    ).rows.map((r) => `${r.name}=${r.setting}${r.unit ? ` ${r.unit}` : ""}`);

    console.log("seeding…");
    const seedSteps = await seed(owner);
    for (const s of seedSteps) console.log(`  ${s.step}: ${s.seconds.toFixed(1)} s`);
    const sizes = (
      await owner.query(
        `select relname, pg_size_pretty(pg_total_relation_size(oid)) as size from pg_class
         where relname in ('users', 'conversations', 'messages', 'service_grants') order by relname`,
      )
    ).rows.map((r) => `${r.relname} ${r.size}`);
    await createAppRole(owner);
    const f = await loadFixture(owner);

    for (const mode of ["plain", "tuned"] as const) {
      await setRlsMode(owner, mode);
      await checkPolicies(pool, f);
    }
    console.log("policy checks passed (plain and tuned)");

    // ---- throughput
    const loadBefore = os.loadavg();
    const measured = new Map<string, Stats[]>(); // `${op} ${variant}` → one entry per round
    for (let round = 1; round <= ROUNDS; round++) {
      for (const op of OPERATIONS) {
        for (const variant of VARIANTS) {
          await setRlsMode(owner, variant.rls);
          await drive(pool, variant, op, f, WARMUP_MS);
          const stats = await drive(pool, variant, op, f, MEASURE_MS);
          const key = `${op.key} ${variant.key}`;
          measured.set(key, [...(measured.get(key) ?? []), stats]);
          console.log(
            `round ${round} ${op.key.padEnd(10)} ${variant.key}: ${stats.rps.toFixed(0).padStart(6)} req/s` +
              `  p50 ${ms(stats.p50)}  p95 ${ms(stats.p95)}  p99 ${ms(stats.p99)} ms${stats.errors ? `  errors ${stats.errors}` : ""}`,
          );
        }
      }
    }
    const loadAfter = os.loadavg();

    // ---- single-connection timings and plans (concurrent load over, so these are quiet-ish)
    const client = await pool.connect();
    const timings = new Map<RlsMode, StatementTiming[]>();
    const plans: { title: string; text: string }[] = [];
    const planChoice = new Map<RlsMode, string>();
    try {
      const member = f.conversations[1];
      const serviceTarget = f.discordConversations[1];
      for (const mode of ["off", "plain", "tuned"] as const) {
        await setRlsMode(owner, mode);
        timings.set(mode, await statementTimings(client, f));
        if (mode !== "tuned") planChoice.set(mode, await preparedPlanChoice(urlFor(cluster.adminUrl, APP_ROLE, DB_NAME), mode, f));
        const memberPlan = { title: `${mode === "off" ? "no RLS" : `RLS ${mode}`}, member (owner)`, text: await explainH(client, { userId: member.ownerId, role: "member" }, member.id) };
        plans.push(memberPlan);
        if (mode !== "off") {
          plans.push({ title: `RLS ${mode}, service via origin grant`, text: await explainH(client, { userId: f.discordAdapter, role: "service" }, serviceTarget) });
        }
        if (mode === "plain") {
          plans.push({
            title: "RLS plain, member, H messages as a prepared statement (generic plan, as in variant F)",
            text: await explainGenericHMessages(client, { userId: member.ownerId, role: "member" }, member.id),
          });
        }
      }
    } finally {
      client.release();
    }

    // ---- report
    const agg = (key: string) => {
      const runs = measured.get(key) ?? [];
      return {
        rps: median(runs.map((r) => r.rps)),
        p50: median(runs.map((r) => r.p50)),
        p95: median(runs.map((r) => r.p95)),
        p99: median(runs.map((r) => r.p99)),
        errors: runs.reduce((s, r) => s + r.errors, 0),
        rounds: runs.map((r) => r.rps.toFixed(0)).join(" / "),
      };
    };
    const lines: string[] = [];
    const date = started.toLocaleDateString("sv-SE"); // YYYY-MM-DD in local time
    lines.push(`# Row-level security overhead — ${date}`, "");
    lines.push("Produced by `node -r @swc-node/register bench/rls-overhead.ts` (see the script's header).", "");
    lines.push("## Machine", "", ...machine(pgVersion));
    lines.push(`- cluster: throwaway (test/setup/pg-cluster.ts), ${settings.join(", ")}`);
    lines.push(
      `- load average (1/5/15 min) before the runs ${loadBefore.map((l) => l.toFixed(2)).join(" / ")}, after ${loadAfter.map((l) => l.toFixed(2)).join(" / ")}`,
    );
    lines.push(
      "- **Caveat:** 2 cores shared by PostgreSQL (32 backends), the Node load generator and other jobs running on the machine",
      "  at the same time. Absolute figures are low and noisy; compare variants within this file (they ran alternately), not with other machines.",
      "",
    );
    lines.push("## Set-up", "");
    lines.push(
      `- Data (DESIGN.md "Benchmark workload"): ${MEMBERS} members + 10 service users, ${f.conversations.length} conversations,`,
      `  ${(f.conversations.length * MESSAGES_PER_CONVERSATION).toLocaleString("en")} messages (~200 chars, user/assistant alternating), grants: the discord adapter`,
      `  has the DISCORD origin (${f.discordConversations.length} conversations) + per-conversation grants; sees ${f.serviceVisible} conversations. Sizes: ${sizes.join(", ")}.`,
      `- Seed (set-based, generate_series): ${seedSteps.map((s) => `${s.step} ${s.seconds.toFixed(1)} s`).join("; ")};` +
        ` total ${seedSteps.reduce((s, x) => s + x.seconds, 0).toFixed(1)} s.`,
      `- Requests run as \`${APP_ROLE}\`: LOGIN, not superuser, not owner, NOBYPASSRLS, with select/insert/update/delete on the four tables.`,
      "  Superusers and table owners bypass RLS; FORCE ROW LEVEL SECURITY would only catch the owner (superusers bypass it",
      "  regardless) and would also bind the migrations' role, so a separate non-owner role is the realistic deployment.",
      `- Pool of ${POOL_SIZE} connections, ${WORKERS} closed-loop workers, random target per request; ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s measured`,
      `  per variant; variants alternate A B C D E F per operation, ${ROUNDS} rounds; figures are the median of the rounds`,
      "  (with 2 rounds: their mean). Latency is per request, taking the pool client included. Every response is checked",
      "  (1 conversation + 50 messages, 10 inbox rows, 1 row bumped/inserted), so a policy cannot look cheap by hiding rows.",
      "- No RLS (A, B, E) means `alter table … disable row level security` on both tables; same role and pool as C, D, F.",
      "",
    );
    lines.push("Variants:", "");
    for (const v of VARIANTS) lines.push(`- **${v.key}**: ${v.title}`);
    lines.push(
      "",
      "Round trips per request: A — H 2, I 1, W 4 (BEGIN, update, insert, COMMIT); B to F — H 5, I 4, W 5",
      "(BEGIN, set_config, statements, COMMIT).",
      "",
    );

    lines.push("## Throughput and latency", "");
    lines.push("| operation | variant | req/s | req/s per round | p50 ms | p95 ms | p99 ms | errors |");
    lines.push("|---|---|---:|---|---:|---:|---:|---:|");
    for (const op of OPERATIONS) {
      for (const v of VARIANTS) {
        const a = agg(`${op.key} ${v.key}`);
        lines.push(`| ${op.title} | ${v.key} ${v.title} | ${a.rps.toFixed(0)} | ${a.rounds} | ${ms(a.p50)} | ${ms(a.p95)} | ${ms(a.p99)} | ${a.errors} |`);
      }
    }
    // C/A: RLS as a whole; C/B: the policies alone; B/A: carrying the identity (round trips) alone;
    // D/B: the tuned policies; F/E: the policies once plans are cached; E/B: what preparing saves without RLS.
    const pairs: [string, string][] = [["C", "A"], ["C", "B"], ["B", "A"], ["D", "B"], ["F", "E"], ["E", "B"]];
    const ratioTable = (title: string, metric: "rps" | "p50" | "p99") => {
      lines.push("", title, "");
      lines.push(`| operation | ${pairs.map(([x, y]) => `${x}/${y}`).join(" | ")} |`);
      lines.push(`|---|${pairs.map(() => "---:").join("|")}|`);
      for (const op of OPERATIONS) {
        const of = (key: string) => agg(`${op.key} ${key}`)[metric];
        lines.push(`| ${op.title} | ${pairs.map(([x, y]) => ratio(of(x) / of(y))).join(" | ")} |`);
      }
    };
    ratioTable("Throughput ratios (req/s; below 1 = fewer requests per second):", "rps");
    ratioTable("p50 latency ratios (above 1 = slower):", "p50");
    ratioTable("p99 latency ratios (above 1 = slower):", "p99");
    lines.push(
      "",
      "Plans PostgreSQL picks for the prepared statements (plan_cache_mode auto: a generic plan is cached only if its",
      "estimated cost is not above the custom plans' — otherwise every execution is still planned), after",
      `${PLAN_CHOICE_REQUESTS} requests of each operation on a fresh connection (pg_prepared_statements):`,
      "",
      `- E (no RLS): ${planChoice.get("off")}`,
      `- F (RLS plain): ${planChoice.get("plain")}`,
    );

    lines.push("", "## Server-side time per statement (one connection, no concurrency)", "");
    lines.push(
      `EXPLAIN (ANALYZE, TIMING OFF) inside BEGIN + set_config, median of ${EXPLAIN_SAMPLES} random targets; ms. This is the policies'`,
      "own cost, without round trips or contention (parse/rewrite time, where policies are attached, is not included).",
      "",
    );
    lines.push("| statement | plan, no RLS | exec, no RLS | plan, C plain | exec, C plain | plan, D tuned | exec, D tuned |");
    lines.push("|---|---:|---:|---:|---:|---:|---:|");
    STATEMENT_CASES.forEach((sc, i) => {
      const cell = (mode: RlsMode) => {
        const t = timings.get(mode)![i];
        return `${t.planning.toFixed(3)} | ${t.execution.toFixed(3)}`;
      };
      lines.push(`| ${sc.label} | ${cell("off")} | ${cell("plain")} | ${cell("tuned")} |`);
    });

    lines.push("", "## Policies", "");
    for (const mode of ["plain", "tuned"] as const) {
      lines.push(`${mode === "plain" ? "C — plain" : "D — tuned"}:`, "", "```sql", ...policySql(mode).map((s) => `${s};`), "```", "");
    }
    lines.push("The identity, per request: `" + SET_IDENTITY + "` (transaction-local).", "");

    lines.push("## Plans of H under RLS (EXPLAIN (ANALYZE, BUFFERS), warm cache)", "");
    for (const p of plans) lines.push(`### ${p.title}`, "", "```", p.text, "```", "");

    const report = lines.join("\n");
    const dir = path.join(__dirname, "results");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `rls-overhead-${date}.md`);
    fs.writeFileSync(file, report + "\n");
    console.log(`\n${report}\n\nwritten to ${path.relative(process.cwd(), file)}`);
  } finally {
    await pool.end();
    await owner.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
