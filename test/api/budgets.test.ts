/**
 * Budgets: set by admins, read by their subject, counted from the ledger in the budget's own time zone; a spent
 * HARD budget refuses new USER messages and startMessage (BUDGET_EXCEEDED, nothing stored) but never a report of
 * spend; each threshold crossed raises exactly one alert, even under 50 concurrent writers.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements } from "../helpers/statements";

let app: TestApp;
let admin: TestUser;
let worker: TestUser;
let alice: TestUser;
let bob: TestUser;

const SET = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { id userId guildId period timeZone limitUsd thresholds enforcement } }`;
const STATUS = `query($userId: UUID, $guildId: String) {
  budgetStatus(userId: $userId, guildId: $guildId) { spentUsd remainingUsd percent exceeded periodStart resetsAt budget { id limitUsd } }
}`;
const RECORD = `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id costUsd } }`;
const ADD = `mutation($c: UUID!, $text: String!) { addMessage(input: { conversationId: $c, content: $text }) { seq } }`;

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(worker, { origin: "web" });
});
beforeEach(async () => {
  alice = await app.makeUser(Role.MEMBER);
  bob = await app.makeUser(Role.MEMBER);
});
afterAll(() => app.dispose());

async function conversationOf(user: TestUser): Promise<string> {
  return (await app.ok(`mutation { createConversation(input: { title: "budget" }) { id } }`, {}, user.token)).createConversation.id;
}
let calls = 0;
const spend = (conversationId: string, costUsd: number, extra: Record<string, unknown> = {}) =>
  app.ok(RECORD, { input: { requestId: `spend-${++calls}`, conversationId, model: "m", costUsd, ...extra } }, worker.token);
const status = async (token: string, variables: Record<string, unknown> = {}) => (await app.ok(STATUS, variables, token)).budgetStatus;

describe("budgets", () => {
  it("are set by admins only, for a user or a guild, and checked", async () => {
    const input = { userId: alice.user.id, period: "MONTHLY", limitUsd: 20 };
    expect((await app.ok(SET, { input }, admin.token)).setBudget).toMatchObject({ userId: alice.user.id, timeZone: "UTC", thresholds: [50, 80, 100], enforcement: "SOFT" });
    expect(await app.errorCode(SET, { input }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(SET, { input }, worker.token)).toBe("FORBIDDEN");
    for (const bad of [
      { period: "DAILY", limitUsd: 1 },
      { userId: alice.user.id, guildId: "123", period: "DAILY", limitUsd: 1 },
      { userId: alice.user.id, period: "DAILY", limitUsd: 0 },
      { userId: alice.user.id, period: "DAILY", limitUsd: 1, timeZone: "Mars/Olympus_Mons" },
      { userId: alice.user.id, period: "DAILY", limitUsd: 1, thresholds: [0, 50] },
      { userId: alice.user.id, period: "DAILY", limitUsd: 1, thresholds: [101] },
      { userId: alice.user.id, period: "DAILY", limitUsd: 1, thresholds: [] },
      { guildId: "guild", period: "DAILY", limitUsd: 1 },
    ]) {
      expect([JSON.stringify(bad), await app.errorCode(SET, { input: bad }, admin.token)]).toEqual([JSON.stringify(bad), "BAD_USER_INPUT"]);
    }
  });

  it("show their subject where they stand, counting what was spent before the budget was set; nobody else", async () => {
    const c = await conversationOf(alice);
    await spend(c, 3);
    expect(await status(alice.token)).toBeNull();
    await app.ok(SET, { input: { userId: alice.user.id, period: "MONTHLY", limitUsd: 10 } }, admin.token);
    await spend(c, 2);
    expect(await status(alice.token)).toMatchObject({ spentUsd: 5, remainingUsd: 5, percent: 50, exceeded: false });
    expect(await status(admin.token, { userId: alice.user.id })).toMatchObject({ spentUsd: 5 });
    expect(await app.errorCode(STATUS, { userId: alice.user.id }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(STATUS, { guildId: "123" }, bob.token)).toBe("FORBIDDEN");
    expect(await status(bob.token)).toBeNull();
  });

  it("count periods in their own time zone, and ignore spend of an earlier period", async () => {
    const c = await conversationOf(alice);
    await app.ok(SET, { input: { userId: alice.user.id, period: "DAILY", timeZone: "Asia/Kolkata", limitUsd: 10 } }, admin.token);
    await spend(c, 1);
    await spend(c, 4, { occurredAt: new Date(Date.now() - 2 * 86_400_000).toISOString() }); // two days ago: not today's
    const today = await status(alice.token);
    expect(today.spentUsd).toBe(1);
    // Kolkata is UTC+5:30: the period starts and resets at local midnight, 18:30 UTC.
    for (const time of [today.periodStart, today.resetsAt]) expect(new Date(time).toISOString().slice(11, 16)).toBe("18:30");
    expect(Date.parse(today.resetsAt) - Date.parse(today.periodStart)).toBe(86_400_000);
  });

  it("HARD, once spent: refuse new USER messages and started replies (nothing stored), never reports of spend", async () => {
    const c = await conversationOf(alice);
    await app.grant(worker, { conversationId: c });
    expect((await app.ok(ADD, { c, text: "before" }, alice.token)).addMessage.seq).toBe(1);
    await app.ok(SET, { input: { userId: alice.user.id, period: "WEEKLY", limitUsd: 1, enforcement: "HARD" } }, admin.token);
    await spend(c, 1.25);
    const refused = await app.gql(ADD, { c, text: "after" }, alice.token);
    expect(refused.body.errors?.[0].extensions).toMatchObject({ code: "BUDGET_EXCEEDED", limit: 1, spent: 1.25, resetsAt: expect.any(String), subject: "user" });
    expect(await app.errorCode(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c }, worker.token)).toBe("BUDGET_EXCEEDED");
    // Spend that happened is always recorded: a finished reply with usage, and a report.
    await app.ok(`mutation($c: UUID!) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "late reply", model: "m", costUsd: 0.5 }) { seq } }`, { c }, worker.token);
    await spend(c, 0.25);
    expect(await status(alice.token)).toMatchObject({ spentUsd: 2, exceeded: true, remainingUsd: 0 });
    // Nothing of the refused writes was stored, and no seq was used up.
    expect(await app.database.db.knex("messages").where({ conversationId: c }).orderBy("seq").pluck("content")).toEqual(["before", "late reply"]);
    // Raised: writes go through again, in order.
    await app.ok(SET, { input: { userId: alice.user.id, period: "WEEKLY", limitUsd: 100, enforcement: "HARD" } }, admin.token);
    expect((await app.ok(ADD, { c, text: "again" }, alice.token)).addMessage.seq).toBe(3);
  });

  it("SOFT: alert, never refuse", async () => {
    const c = await conversationOf(alice);
    await app.ok(SET, { input: { userId: alice.user.id, period: "DAILY", limitUsd: 1 } }, admin.token);
    await spend(c, 5);
    expect((await app.ok(ADD, { c, text: "still fine" }, alice.token)).addMessage.seq).toBe(1);
  });

  it("raise exactly one alert per threshold crossed, under 50 concurrent writers", async () => {
    const c = await conversationOf(alice);
    const { setBudget } = await app.ok(SET, { input: { userId: alice.user.id, period: "MONTHLY", limitUsd: 10, thresholds: [50, 80, 100] } }, admin.token);
    await Promise.all(Array.from({ length: 50 }, () => spend(c, 0.5)));
    const alerts = await app.database.db.knex("system_alerts").where({ budgetId: setBudget.id }).orderBy("createdAt").select("severity", "details", "userId");
    expect(alerts.map((alert) => [alert.details.threshold, alert.severity, alert.userId])).toEqual([
      [50, "info", alice.user.id],
      [80, "warning", alice.user.id],
      [100, "critical", alice.user.id],
    ]);
    expect(await status(alice.token)).toMatchObject({ spentUsd: 25, percent: 250 });
  });

  it("of a guild are read by a service granted DISCORD, and count the guild's calls", async () => {
    await app.grant(worker, { origin: "discord" });
    await app.ok(SET, { input: { guildId: "424242", period: "DAILY", limitUsd: 4 } }, admin.token);
    await app.ok(RECORD, { input: { requestId: `guild-${++calls}`, model: "m", costUsd: 1, guildId: "424242" } }, worker.token);
    expect(await status(worker.token, { guildId: "424242" })).toMatchObject({ spentUsd: 1, percent: 25 });
  });

  it("are listed for admins, newest first with where each stands and whose it is, by pages; nobody else", async () => {
    const LIST = `query($after: String) { budgets(first: 2, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { spentUsd percent exceeded budget { userId guildId limitUsd user { id displayName } } } } } }`;
    await app.ok(SET, { input: { userId: alice.user.id, period: "MONTHLY", limitUsd: 10 } }, admin.token);
    await spend(await conversationOf(alice), 2.5);
    await app.ok(SET, { input: { guildId: "777000", period: "DAILY", limitUsd: 1 } }, admin.token);
    await app.ok(SET, { input: { userId: bob.user.id, period: "WEEKLY", limitUsd: 2, enforcement: "HARD" } }, admin.token);
    const total = Number((await app.database.db.knex("user_budgets").count({ n: "*" }))[0].n);

    const first = (await app.ok(LIST, {}, admin.token)).budgets;
    expect(first.totalCount).toBe(total);
    expect(first.edges.map((edge: any) => edge.node)).toEqual([
      { spentUsd: 0, percent: 0, exceeded: false, budget: { userId: bob.user.id, guildId: null, limitUsd: 2, user: { id: bob.user.id, displayName: bob.user.displayName } } },
      { spentUsd: 0, percent: 0, exceeded: false, budget: { userId: null, guildId: "777000", limitUsd: 1, user: null } },
    ]);
    const second = (await app.ok(LIST, { after: first.pageInfo.endCursor }, admin.token)).budgets;
    expect(second.edges[0].node).toEqual({ spentUsd: 2.5, percent: 25, exceeded: false, budget: { userId: alice.user.id, guildId: null, limitUsd: 10, user: { id: alice.user.id, displayName: alice.user.displayName } } });

    for (const token of [alice.token, worker.token]) expect(await app.errorCode(LIST, {}, token)).toBe("FORBIDDEN");
    expect(await app.errorCode(LIST, {}, undefined)).toBe("UNAUTHENTICATED");
  });

  it("listed with their users cost the same statements for 1 budget or 5 (N+1 guard)", async () => {
    const LIST = `query($n: Int) { budgets(first: $n) { edges { node { percent budget { user { displayName } } } } } }`;
    for (let i = 0; i < 5; i++) {
      const someone = await app.makeUser(Role.MEMBER);
      await app.ok(SET, { input: { userId: someone.user.id, period: "DAILY", limitUsd: 1 } }, admin.token);
    }
    const counter = countStatements(app);
    await app.ok(LIST, { n: 1 }, admin.token);
    const one = await counter.run(LIST, { n: 1 }, admin.token);
    const five = await counter.run(LIST, { n: 5 }, admin.token);
    expect(five.data.budgets.edges.map((edge: any) => edge.node.budget.user.displayName)).toHaveLength(5);
    expect(five.statements.length).toBe(one.statements.length);
  });

  it("budgetStatus costs the same statements with or without a budget (N+1 guard)", async () => {
    const counter = countStatements(app);
    await app.ok(STATUS, {}, bob.token); // the key looked up once, as in every request after a client's first
    const none = await counter.run(STATUS, {}, bob.token);
    await app.ok(SET, { input: { userId: bob.user.id, period: "DAILY", limitUsd: 4 } }, admin.token);
    const some = await counter.run(STATUS, {}, bob.token);
    expect(some.data.budgetStatus).not.toBeNull();
    expect(some.statements.length).toBe(none.statements.length);
    expect(some.statements.length).toBe(1); // the budget with its standing, in one statement
  });
});
