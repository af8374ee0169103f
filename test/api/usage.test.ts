/**
 * Reading usage: buckets by period and group, who sees what (isolation), the two sources agreeing, and the
 * roll-up property: random ledgers written concurrently, with retries, leave every cost_tracking row equal to
 * a GROUP BY over the ledger, exactly (numeric, to the last digit, so to the cent).
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements } from "../helpers/statements";

let app: TestApp;
let admin: TestUser;
let worker: TestUser;
let members: TestUser[];
let conversations: string[];

const RECORD = `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`;
const USAGE = `query($filter: UsageFilter!, $period: UsagePeriod!, $groupBy: [UsageGroupBy!]) {
  usage(filter: $filter, period: $period, groupBy: $groupBy) {
    periodStart userId model guildId requests errors unpricedRequests promptTokens completionTokens cachedTokens costUsd averageLatencyMs p95LatencyMs
  }
}`;

/** A small seeded generator (mulberry32): the same ledger every run, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY = Date.UTC(2026, 2, 10); // 2026-03-10T00:00:00Z
const CALLS = 240;

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  members = [await app.makeUser(Role.MEMBER, "m0"), await app.makeUser(Role.MEMBER, "m1"), await app.makeUser(Role.MEMBER, "m2")];
  await app.grant(worker, { origin: "web" });
  conversations = [];
  for (const member of members) {
    conversations.push((await app.ok(`mutation { createConversation(input: { title: "c" }) { id } }`, {}, member.token)).createConversation.id);
  }
  const knex = app.database.db.knex;
  await knex("ai_models").insert({ provider: "p", name: "gamma" }); // known, never priced: its calls are UNKNOWN
  for (const [name, input, output] of [["alpha", 3, 15], ["beta", 0.15, 0.6]] as const) {
    const [model] = await knex("ai_models").insert({ provider: "p", name }).returning("id");
    await knex("ai_model_prices").insert({ modelId: model.id, effectiveFrom: new Date(DAY - 86_400_000), inputPerMillion: input, outputPerMillion: output, cachedInputPerMillion: input / 10 });
  }

  // The random ledger: three members, three models (one unpriced), two guilds and none, three days, every
  // status; a fifth of the calls sent twice at once and some again later (retries), eight writers at a time.
  const next = random(20261202);
  const pick = <T,>(items: readonly T[]) => items[Math.floor(next() * items.length)];
  const calls = Array.from({ length: CALLS }, (_, i) => {
    const who = Math.floor(next() * members.length);
    const prompt = Math.floor(next() * 5000);
    return {
      requestId: `call-${i}`,
      conversationId: conversations[who],
      model: pick(["alpha", "beta", "gamma"]),
      promptTokens: prompt,
      cachedTokens: Math.floor(next() * prompt),
      completionTokens: Math.floor(next() * 2000),
      status: pick(["SUCCESS", "SUCCESS", "SUCCESS", "ERROR", "TIMEOUT", "CANCELLED"]),
      guildId: pick([null, "111", "222"]),
      latencyMs: next() < 0.8 ? Math.floor(next() * 5000) : null,
      costUsd: next() < 0.2 ? Math.round(next() * 1e6) / 1e6 : null,
      occurredAt: new Date(DAY + Math.floor(next() * 3 * 86_400_000)).toISOString(),
    };
  });
  const sends = calls.flatMap((call) => (next() < 0.2 ? [call, call] : [call]));
  let cursor = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (cursor < sends.length) await app.ok(RECORD, { input: sends[cursor++] }, worker.token);
    }),
  );
  for (const call of calls.slice(0, 20)) await app.ok(RECORD, { input: call }, worker.token); // late retries
});
afterAll(() => app.dispose());

const range = (days: number, offsetMs = 0) => ({ from: new Date(DAY + offsetMs).toISOString(), to: new Date(DAY + days * 86_400_000).toISOString() });
const usage = async (token: string, variables: Record<string, unknown>) => (await app.ok(USAGE, variables, token)).usage as Record<string, any>[];

describe("the roll-ups", () => {
  it(`equal a GROUP BY over the ledger, row for row, after ${CALLS} random calls written concurrently with retries`, async () => {
    const knex = app.database.db.knex;
    expect(await knex("ai_requests").count({ n: "*" })).toEqual([{ n: CALLS }]);
    const fromLedger = `select g.period, date_trunc(g.period, r.occurred_at, 'UTC') as period_start, r.user_id, r.model, coalesce(r.guild_id, '') as guild_id,
        count(*)::int as requests, (count(*) filter (where r.status <> 'success'))::int as errors, (count(*) filter (where r.cost_usd is null))::int as unpriced,
        sum(r.prompt_tokens)::bigint as prompt_tokens, sum(r.completion_tokens)::bigint as completion_tokens, sum(r.cached_tokens)::bigint as cached_tokens,
        coalesce(sum(r.cost_usd), 0)::numeric as cost_usd, coalesce(sum(r.latency_ms), 0)::bigint as latency_ms_sum, count(r.latency_ms)::int as latency_count
      from ai_requests r cross join (values ('hour'), ('day'), ('month')) as g(period) group by 1, 2, 3, 4, 5`;
    const rollups = `select period, period_start, user_id, model, guild_id, requests, errors, unpriced, prompt_tokens, completion_tokens, cached_tokens,
        cost_usd::numeric, latency_ms_sum, latency_count from cost_tracking`;
    // numeric compares by value: 2.5 = 2.5000000000, so "equal" here is exact, not rounded.
    const missing = await knex.raw(`(${fromLedger}) except (${rollups})`);
    const extra = await knex.raw(`(${rollups}) except (${fromLedger})`);
    expect({ missing: missing.rows, extra: extra.rows }).toEqual({ missing: [], extra: [] });
    expect((await knex.raw(`select count(*)::int as n from cost_tracking`)).rows[0].n).toBeGreaterThan(100);
  });

  it("answer usage as the ledger does (a range off the period boundaries reads the ledger)", async () => {
    for (const period of ["HOUR", "DAY", "WEEK", "MONTH"]) {
      const groupBy = ["USER", "MODEL", "GUILD"];
      // A month-aligned range for MONTH; the ledger's range starts a millisecond earlier, when no call happened.
      const aligned = period === "MONTH" ? { from: "2026-03-01T00:00:00.000Z", to: "2026-04-01T00:00:00.000Z" } : range(3);
      const shifted = { ...aligned, from: new Date(Date.parse(aligned.from) - 1).toISOString() };
      const strip = (buckets: Record<string, any>[]) => buckets.map(({ p95LatencyMs: _p95, ...rest }) => rest);
      const fromRollups = await usage(admin.token, { filter: aligned, period, groupBy });
      const fromLedger = await usage(admin.token, { filter: shifted, period, groupBy });
      expect(fromRollups.length).toBeGreaterThan(0);
      expect(fromRollups.every((bucket) => bucket.p95LatencyMs === null)).toBe(true);
      expect(strip(fromLedger).map(roundLatency)).toEqual(strip(fromRollups).map(roundLatency));
    }
  });
});

/** Averages are divisions done by two different expressions: equal to many digits, not every one. */
const roundLatency = (bucket: Record<string, any>) => ({ ...bucket, averageLatencyMs: bucket.averageLatencyMs === null ? null : Math.round(bucket.averageLatencyMs * 1e6) / 1e6 });

describe("usage", () => {
  it("gives a member their own calls only, and FORBIDDEN for anyone else's", async () => {
    const [m0, m1] = members;
    const own = await usage(m0.token, { filter: range(3), period: "DAY", groupBy: ["USER"] });
    expect(own.length).toBeGreaterThan(0);
    expect(new Set(own.map((bucket) => bucket.userId))).toEqual(new Set([m0.user.id]));
    expect(await app.errorCode(USAGE, { filter: { ...range(3), userId: m1.user.id }, period: "DAY" }, m0.token)).toBe("FORBIDDEN");
    // Another member's conversation: nothing of it.
    expect(await usage(m0.token, { filter: { ...range(3), conversationId: conversations[1] }, period: "DAY" })).toEqual([]);
  });

  it("gives a service the calls of conversations it may access and those it reported, with p95 latency", async () => {
    const other = await app.makeUser(Role.SERVICE, "other-service");
    expect(await usage(other.token, { filter: range(3), period: "MONTH" })).toEqual([]);
    const [all] = await usage(worker.token, { filter: range(3), period: "MONTH" });
    expect(all.requests).toBe(CALLS);
    expect(all.p95LatencyMs).toEqual(expect.any(Number));
    const [one] = await usage(admin.token, { filter: { ...range(3), conversationId: conversations[0] }, period: "MONTH" });
    const [mine] = await usage(members[0].token, { filter: { ...range(3), conversationId: conversations[0] }, period: "MONTH" });
    expect(mine).toEqual(one);
  });

  it("sums whole buckets: the months' total is every call's cost", async () => {
    const buckets = await usage(admin.token, { filter: { from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z" }, period: "MONTH" });
    const { rows } = await app.database.db.knex.raw("select coalesce(sum(cost_usd), 0)::float as cost, count(*)::int as n from ai_requests");
    expect(buckets).toHaveLength(1);
    expect(buckets[0].requests).toBe(rows[0].n);
    expect(buckets[0].costUsd).toBeCloseTo(rows[0].cost, 8);
  });

  it.each([
    ["to before from", { from: "2026-03-02T00:00:00Z", to: "2026-03-01T00:00:00Z" }, "DAY"],
    ["a range of more periods than allowed", { from: "2020-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }, "HOUR"],
  ])("refuses %s with BAD_USER_INPUT", async (_case, filter, period) => {
    expect(await app.errorCode(USAGE, { filter, period }, admin.token)).toBe("BAD_USER_INPUT");
  });

  it("costs a fixed number of statements whatever the number of buckets (N+1 guard)", async () => {
    const counter = countStatements(app);
    const few = await counter.run(USAGE, { filter: range(1), period: "DAY" }, members[0].token);
    const many = await counter.run(USAGE, { filter: range(3), period: "HOUR", groupBy: ["MODEL", "GUILD"] }, members[0].token);
    expect(many.data.usage.length).toBeGreaterThan(few.data.usage.length * 10);
    expect(many.statements.length).toBe(few.statements.length);
    const service = await counter.run(USAGE, { filter: range(3), period: "HOUR", groupBy: ["USER"] }, worker.token);
    expect(service.statements.length).toBeLessThanOrEqual(few.statements.length + 1); // + its grants
  });
});
