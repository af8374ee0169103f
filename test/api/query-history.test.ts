/**
 * The query history: recordQuery (members for themselves; admins and services granted DISCORD for guilds and
 * Discord members), queryHistory (who sees which records, filters, keyset paging newest first) and
 * knowledgeStats, checked figure by figure on a history built by hand.
 */
import type { Knex } from "knex";
import { Role } from "../../src/modules/user/role.enum";
import { ensureKnowledgeBase, KnowledgeScopeKind } from "../../src/modules/knowledge/scope";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let admin: TestUser;
let bot: TestUser; // a service granted the DISCORD origin
let stranger: TestUser; // a service without grants
let alice: TestUser;
let bob: TestUser;
let carol: TestUser; // a Discord member

const RECORD = `mutation($input: RecordQueryInput!) {
  recordQuery(input: $input) {
    id scope guildId channelId conversationId userId recordedBy question answer sources { documentId chunkId score } model
    responseTimeMs promptTokens completionTokens cacheHit createdAt user { id }
  }
}`;
const HISTORY = `query($filter: QueryHistoryFilter, $first: Int, $after: String) {
  queryHistory(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id question userId guildId scope cacheHit createdAt user { displayName } } }
  }
}`;
const STATS = `query($scope: KnowledgeScopeInput, $from: DateTime, $to: DateTime) {
  knowledgeStats(scope: $scope, from: $from, to: $to) {
    from to queries activeUsers cacheHitRate averageResponseTimeMs p95ResponseTimeMs cachedAnswers cacheEntriesHit
    topUsers { userId queries user { id displayName } }
  }
}`;

const DOC = "0a1b2c3d-0000-4000-8000-000000000001";
const CHUNK = "0a1b2c3d-0000-4000-8000-000000000002";
let guilds = 0;
let discordIds = 0;
const newGuildId = () => String(800_000_000_000 + ++guilds);
const user = (u: TestUser) => ({ kind: "USER", userId: u.user.id });
const knex = (): Knex => app.database.db.knex;

const record = async (input: Record<string, unknown>, token: string) => (await app.ok(RECORD, { input }, token)).recordQuery;
const history = async (token: string, filter: Record<string, unknown> = {}, first = 100) => (await app.ok(HISTORY, { filter, first }, token)).queryHistory;
const ids = async (token: string, filter: Record<string, unknown> = {}) => (await history(token, filter)).edges.map((edge: any) => edge.node.id);
const stats = async (token: string, variables: Record<string, unknown>) => (await app.ok(STATS, variables, token)).knowledgeStats;

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "admin");
  bot = await app.makeUser(Role.SERVICE, "bot");
  await app.grant(bot, { origin: "discord" });
  stranger = await app.makeUser(Role.SERVICE, "stranger");
});
beforeEach(async () => {
  alice = await app.makeUser(Role.MEMBER);
  bob = await app.makeUser(Role.MEMBER);
  carol = await app.makeUser(Role.MEMBER);
  await knex()("users").where({ id: carol.user.id }).update({ discordId: String(700_000_000_000 + ++discordIds) });
});
afterAll(() => app.dispose());

describe("recordQuery", () => {
  it("records a member's own question with what the bot reported, and reads it back", async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "asked here" }) { id } }`, {}, alice.token);
    const input = {
      scope: { kind: "USER" },
      question: "  What is Parley?  ",
      answer: "A GraphQL server.",
      sources: [{ documentId: DOC, chunkId: CHUNK, score: 0.87 }, { chunkId: CHUNK }],
      model: "m1",
      responseTimeMs: 420,
      promptTokens: 100,
      completionTokens: 20,
      cacheHit: true,
      conversationId: createConversation.id,
    };
    const recorded = await record(input, alice.token);
    expect(recorded).toMatchObject({
      scope: "USER",
      guildId: null,
      channelId: null,
      conversationId: createConversation.id,
      userId: alice.user.id,
      recordedBy: alice.user.id,
      question: "What is Parley?",
      answer: "A GraphQL server.",
      sources: [{ documentId: DOC, chunkId: CHUNK, score: 0.87 }, { documentId: null, chunkId: CHUNK, score: null }],
      model: "m1",
      responseTimeMs: 420,
      promptTokens: 100,
      completionTokens: 20,
      cacheHit: true,
      user: { id: alice.user.id },
    });
    const minimal = await record({ question: "no details" }, alice.token);
    expect(minimal).toMatchObject({ scope: null, userId: alice.user.id, answer: null, sources: [], cacheHit: false, responseTimeMs: null });
    const { edges, totalCount } = await history(alice.token);
    expect(totalCount).toBe(2);
    expect(edges.map((edge: any) => edge.node)).toMatchObject([
      { id: minimal.id, scope: null, user: { displayName: alice.user.displayName } },
      { id: recorded.id, scope: "USER", cacheHit: true },
    ]);
  });

  it("refuses members' records for others or in Discord, and bad input", async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "bob's" }) { id } }`, {}, bob.token);
    const refusals: [Record<string, unknown>, string][] = [
      [{ userId: bob.user.id }, "FORBIDDEN"],
      [{ guildId: "123" }, "FORBIDDEN"],
      [{ channelId: "456" }, "FORBIDDEN"],
      [{ scope: { kind: "GUILD", guildId: "123" } }, "FORBIDDEN"],
      [{ scope: user(bob) }, "FORBIDDEN"],
      [{ conversationId: createConversation.id }, "NOT_FOUND"],
      [{ guildId: "guild" }, "BAD_USER_INPUT"],
      [{ question: "   " }, "BAD_USER_INPUT"],
      [{ responseTimeMs: -1 }, "BAD_USER_INPUT"],
      [{ promptTokens: -5 }, "BAD_USER_INPUT"],
      [{ sources: [{ score: 1 }] }, "BAD_USER_INPUT"],
      [{ sources: Array.from({ length: 101 }, () => ({ documentId: DOC })) }, "BAD_USER_INPUT"],
      [{ model: " " }, "BAD_USER_INPUT"],
    ];
    for (const [extra, code] of refusals) {
      const { body } = await app.gql(RECORD, { input: { question: "q", ...extra } }, alice.token);
      expect([JSON.stringify(extra).slice(0, 80), body.errors?.[0].extensions?.code]).toEqual([JSON.stringify(extra).slice(0, 80), code]);
    }
    const stored = await knex()("query_history").whereIn("userId", [alice.user.id, bob.user.id]).orWhereIn("recordedBy", [alice.user.id, bob.user.id]).count({ n: "*" });
    expect(Number(stored[0].n)).toBe(0);
  });

  it("lets a DISCORD service record guild questions for Discord members; not an ungranted one, not for web members", async () => {
    const guildId = newGuildId();
    const scope = { kind: "GUILD", guildId };
    const recorded = await record({ scope, question: "guild q", userId: carol.user.id, channelId: "555" }, bot.token);
    expect(recorded).toMatchObject({ scope: "GUILD", guildId, channelId: "555", userId: carol.user.id, recordedBy: bot.user.id });
    expect(await app.errorCode(RECORD, { input: { scope, question: "q" } }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { guildId, question: "q" } }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { question: "q", userId: carol.user.id } }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { scope, question: "q", userId: alice.user.id } }, bot.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { scope, guildId: "1", question: "q" } }, bot.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(RECORD, { input: { question: "q", userId: "0a1b2c3d-0000-4000-8000-0000000000ff" } }, bot.token)).toBe("NOT_FOUND");
    // A service asking itself, admins for anyone.
    expect(await record({ question: "own" }, stranger.token)).toMatchObject({ userId: stranger.user.id, recordedBy: stranger.user.id });
    expect(await record({ question: "for alice", userId: alice.user.id, guildId }, admin.token)).toMatchObject({ userId: alice.user.id, recordedBy: admin.user.id, guildId });
  });
});

describe("queryHistory", () => {
  it("shows admins everything, a DISCORD service guild records and its own, anyone else their own", async () => {
    const guildId = newGuildId();
    const ofAlice = (await record({ question: "alice's" }, alice.token)).id;
    const ofBob = (await record({ question: "bob's" }, bob.token)).id;
    const inGuild = (await record({ scope: { kind: "GUILD", guildId }, question: "in the guild", userId: carol.user.id }, bot.token)).id;
    const botsOwn = (await record({ question: "bot's own, no guild" }, bot.token)).id;
    const strangers = (await record({ question: "stranger's own" }, stranger.token)).id;
    const everything = [ofAlice, ofBob, inGuild, botsOwn, strangers];

    expect(await ids(admin.token)).toEqual(expect.arrayContaining(everything));
    const botSees = await ids(bot.token);
    expect(botSees).toEqual(expect.arrayContaining([inGuild, botsOwn]));
    expect(botSees.filter((id: string) => [ofAlice, ofBob, strangers].includes(id))).toEqual([]);
    expect(await ids(alice.token)).toEqual([ofAlice]);
    expect(await ids(carol.token)).toEqual([inGuild]); // her question, whoever recorded it
    expect((await ids(stranger.token)).filter((id: string) => everything.includes(id))).toEqual([strangers]);

    expect(await app.errorCode(HISTORY, { filter: { userId: alice.user.id } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(HISTORY, { filter: { scope: user(alice) } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(HISTORY, { filter: { scope: { kind: "GUILD", guildId } } }, stranger.token)).toBe("FORBIDDEN");
    expect(await ids(bob.token, { guildId })).toEqual([]);
  });

  it("filters by scope, guild, user, conversation, time and cache hit, and pages newest first", async () => {
    const guildId = newGuildId();
    const scope = { kind: "GUILD", guildId };
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "c" }) { id } }`, {}, admin.token);
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const input: Record<string, unknown> = { question: `q${i}`, cacheHit: i % 2 === 0, userId: i < 4 ? carol.user.id : admin.user.id };
      if (i !== 6) input.scope = scope;
      if (i === 5) input.conversationId = createConversation.id;
      made.push((await record(input, admin.token)).id);
    }
    // q0 oldest … q6 newest, a minute apart; q6 asked outside the guild scope, in the guild.
    await knex().raw(
      `update query_history h set created_at = timestamptz '2026-03-01T12:00:00Z' + ((t.i - 1) * interval '1 minute')
       from unnest(?::uuid[]) with ordinality as t(id, i) where h.id = t.id`,
      [made],
    );
    await knex()("query_history").where({ id: made[6] }).update({ guildId });
    const byQuestion = async (filter: Record<string, unknown>) => (await history(admin.token, filter)).edges.map((edge: any) => edge.node.question);
    expect(await byQuestion({ guildId })).toEqual(["q6", "q5", "q4", "q3", "q2", "q1", "q0"]);
    expect(await byQuestion({ scope })).toEqual(["q5", "q4", "q3", "q2", "q1", "q0"]);
    expect(await byQuestion({ guildId, userId: carol.user.id })).toEqual(["q3", "q2", "q1", "q0"]);
    expect(await byQuestion({ conversationId: createConversation.id })).toEqual(["q5"]);
    expect(await byQuestion({ guildId, cacheHit: true })).toEqual(["q6", "q4", "q2", "q0"]);
    expect(await byQuestion({ guildId, from: "2026-03-01T12:02:00.000Z", to: "2026-03-01T12:05:00.000Z" })).toEqual(["q4", "q3", "q2"]);
    expect(await byQuestion({ scope: { kind: "GUILD", guildId: newGuildId() } })).toEqual([]);
    expect(await app.errorCode(HISTORY, { filter: { from: "2026-03-01T12:05:00Z", to: "2026-03-01T12:05:00Z" } }, admin.token)).toBe("BAD_USER_INPUT");

    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const { queryHistory } = await app.ok(HISTORY, { filter: { guildId }, first: 3, after }, admin.token);
      expect(queryHistory.totalCount).toBe(7);
      pages.push(queryHistory.edges.map((edge: any) => edge.node.question));
      if (!queryHistory.pageInfo.hasNextPage) break;
      after = queryHistory.pageInfo.endCursor;
    }
    expect(pages).toEqual([["q6", "q5", "q4"], ["q3", "q2", "q1"], ["q0"]]);
    expect(await app.errorCode(HISTORY, { first: 3, after: "bm90IGEgY3Vyc29y" }, admin.token)).toBe("BAD_USER_INPUT");
  });
});

describe("knowledgeStats", () => {
  const T0 = Date.parse("2026-05-01T00:00:00.000Z");
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const window = { from: at(0), to: at(3_600_000) };

  /** History rows written directly, so that times, users and figures are exactly the test's. */
  async function insertHistory(rows: { baseId?: string | null; guildId?: string | null; userId: string | null; ms: number; responseTimeMs: number | null; cacheHit: boolean }[]) {
    await knex()("query_history").insert(
      rows.map((row) => ({
        knowledgeBaseId: row.baseId ?? null,
        guildId: row.guildId ?? null,
        userId: row.userId,
        question: "q",
        responseTimeMs: row.responseTimeMs,
        cacheHit: row.cacheHit,
        createdAt: new Date(T0 + row.ms),
      })),
    );
  }

  it("computes the monitoring figures of a scope over [from, to), with its live cache", async () => {
    const guildId = newGuildId();
    const scope = { kind: "GUILD", guildId };
    const base = await ensureKnowledgeBase(knex(), { kind: KnowledgeScopeKind.GUILD, guildId, userId: null });
    const global = await ensureKnowledgeBase(knex(), { kind: KnowledgeScopeKind.GLOBAL, guildId: null, userId: null });
    const [u1, u2, u3] = [alice, bob, carol].map((u) => u.user.id);
    const row = (userId: string | null, ms: number, responseTimeMs: number | null, cacheHit: boolean) => ({ baseId: base.id, guildId, userId, ms, responseTimeMs, cacheHit });
    await insertHistory([
      row(u1, 1000, 100, true),
      row(u1, 2000, 200, true),
      row(u1, 3000, 300, false),
      row(u1, 4000, 400, false),
      row(u2, 5000, 500, true),
      row(u2, 6000, 600, false),
      row(u2, 7000, null, false),
      row(u3, 8000, 700, false),
      row(null, 9000, 800, true), // asked by a user since deleted
      row(u1, -1, 10_000, true), // just before `from`
      row(u3, 3_600_000, 10_000, true), // at `to`: outside
      { baseId: global.id, userId: u3, ms: 10_000, responseTimeMs: 10_000, cacheHit: true }, // another scope
    ]);
    // Cache entries: live and hit 3 times, live and never hit, live and hit once, expired (hit 5 times).
    const entry = (question: string, hitCount: number, expires: string) => ({
      knowledgeBaseId: base.id,
      question,
      questionHash: question.padEnd(64, "0").replace(/[^0-9a-f]/g, "0"),
      answer: "a",
      hitCount,
      expiresAt: knex().raw(`now() + interval '${expires}'`),
    });
    await knex()("query_cache").insert([entry("a1", 3, "1 hour"), entry("b2", 0, "1 hour"), entry("c3", 1, "1 day"), entry("d4", 5, "-1 second")]);

    const figures = await stats(bot.token, { scope, ...window });
    expect(figures).toMatchObject({
      from: window.from,
      to: window.to,
      queries: 9,
      activeUsers: 3,
      averageResponseTimeMs: 450, // (100 + … + 800) / 8: the null is left out
      cachedAnswers: 3,
      cacheEntriesHit: 2,
      topUsers: [
        { userId: u1, queries: 4, user: { id: u1, displayName: alice.user.displayName } },
        { userId: u2, queries: 3, user: { id: u2 } },
        { userId: u3, queries: 1, user: { id: u3 } },
      ],
    });
    expect(figures.cacheHitRate).toBeCloseTo(4 / 9, 10);
    // Interpolated: 8 values, position 0.95 × 7 = 6.65 → 700 + 0.65 × (800 − 700).
    expect(figures.p95ResponseTimeMs).toBeCloseTo(765, 6);
    expect(await stats(admin.token, { scope, ...window })).toEqual(figures);

    // The same scope, seen by a member: only their own questions; a guild they cannot read is refused.
    expect(await app.errorCode(STATS, { scope, ...window }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(STATS, { scope, ...window }, stranger.token)).toBe("FORBIDDEN");
    const own = await stats(alice.token, { ...window });
    expect(own).toMatchObject({ queries: 4, activeUsers: 1, averageResponseTimeMs: 250, topUsers: [{ userId: u1, queries: 4 }] });
    expect(own.cacheHitRate).toBeCloseTo(0.5, 10);
    expect(own.p95ResponseTimeMs).toBeCloseTo(385, 6); // 4 values: position 2.85 → 300 + 0.85 × 100
    expect(await app.errorCode(STATS, { scope: user(bob) }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(STATS, { ...window, from: window.to }, admin.token)).toBe("BAD_USER_INPUT");
  });

  it("answers zeros and nulls without questions, and defaults to the 24 hours before now", async () => {
    const guildId = newGuildId();
    const scope = { kind: "GUILD", guildId };
    expect(await stats(bot.token, { scope })).toMatchObject({
      queries: 0,
      activeUsers: 0,
      cacheHitRate: null,
      averageResponseTimeMs: null,
      p95ResponseTimeMs: null,
      topUsers: [],
      cachedAnswers: 0,
      cacheEntriesHit: 0,
    });
    await record({ scope, question: "now", responseTimeMs: 50, userId: carol.user.id }, bot.token);
    const old = await record({ scope, question: "yesterday", responseTimeMs: 5000, userId: carol.user.id }, bot.token);
    await knex()("query_history").where({ id: old.id }).update({ createdAt: knex().raw("now() - interval '25 hours'") });
    const recent = await stats(bot.token, { scope });
    expect(recent).toMatchObject({ queries: 1, activeUsers: 1, cacheHitRate: 0, averageResponseTimeMs: 50, p95ResponseTimeMs: 50 });
    expect(Date.parse(recent.to) - Date.parse(recent.from)).toBe(86_400_000);
    expect(Math.abs(Date.parse(recent.to) - Date.now())).toBeLessThan(60_000);
    const withTo = await stats(bot.token, { scope, to: "2026-01-02T00:00:00.000Z" });
    expect([withTo.from, withTo.queries]).toEqual(["2026-01-01T00:00:00.000Z", 0]);
  });

  it("lists at most 10 top users, most questions first, ties by user id", async () => {
    const guildId = newGuildId();
    const base = await ensureKnowledgeBase(knex(), { kind: KnowledgeScopeKind.GUILD, guildId, userId: null });
    const people = await knex()("users")
      .insert(Array.from({ length: 12 }, (_, i) => ({ displayName: `asker ${i}`, role: "member" })))
      .returning("id");
    // Person i asks i + 1 questions, except that the last two ask as many as the one before them.
    const counts = people.map((_: unknown, i: number) => Math.min(i + 1, 10));
    await insertHistory(people.flatMap(({ id }: { id: string }, i: number) => Array.from({ length: counts[i] }, (_, k) => ({ baseId: base.id, guildId, userId: id, ms: 1000 + k, responseTimeMs: 10, cacheHit: false }))));
    const { topUsers, queries, activeUsers } = await stats(admin.token, { scope: { kind: "GUILD", guildId }, ...window });
    expect([queries, activeUsers]).toEqual([counts.reduce((a: number, b: number) => a + b, 0), 12]);
    const expected = people
      .map(({ id }: { id: string }, i: number) => ({ userId: id, queries: counts[i] }))
      .sort((a: { userId: string; queries: number }, b: { userId: string; queries: number }) => b.queries - a.queries || (a.userId < b.userId ? -1 : 1))
      .slice(0, 10);
    expect(topUsers.map(({ userId, queries: n }: { userId: string; queries: number }) => ({ userId, queries: n }))).toEqual(expected);
  });
});
