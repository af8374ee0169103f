/**
 * Feedback on messages over HTTP: rating, re-rating and retracting (each audited), bad input that stores
 * nothing, who may rate and see what (members, services acting for Discord members, admins), the statistics
 * on hand-built rows, and the N+1 guard of Message.myFeedback and Message.feedbackSummary on a 50-message page.
 */
import { Role } from "../../src/modules/user/role.enum";
import { FEEDBACK_TAGS } from "../../src/modules/feedback/feedback.types";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";

let app: TestApp;
let counter: StatementCounter;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
/** A service granted DISCORD: the Discord adapter. */
let adapter: TestUser;

const RATE = `mutation($in: RateMessageInput!) { rateMessage(input: $in) { id messageId conversationId userId rating score comment tags user { id } } }`;
const RETRACT = `mutation($m: UUID!, $u: UUID) { retractFeedback(messageId: $m, userId: $u) }`;
const MINE = `query($id: UUID!) { message(id: $id) { myFeedback { userId rating score tags } feedbackSummary { up down ratings averageScore tags { tag count } } } }`;
const STATS = `query($f: FeedbackStatsFilter!, $g: [FeedbackGroupBy!]) {
  feedbackStats(filter: $f, groupBy: $g) { periodStart model assistantId guildId up down ratings upShare averageScore }
}`;

const knex = () => app.database.db.knex;

beforeAll(async () => {
  app = await createTestApp({ AUTH_CACHE_SECONDS: "0" });
  counter = countStatements(app);
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  admin = await app.makeUser(Role.ADMIN, "admin");
  adapter = await app.makeUser(Role.SERVICE, "discord adapter");
  await app.grant(adapter, { origin: "discord" });
  // The token's once-a-minute last_used_at write is not awaited: moved out of the way of the statement counts.
  await knex()("api_keys").update({ lastUsedAt: knex().raw("now() + interval '1 day'") });
});
afterAll(() => app.dispose());

async function conversationOf(owner: TestUser): Promise<string> {
  return (await app.ok(`mutation { createConversation(input: { title: "chat" }) { id } }`, {}, owner.token)).createConversation.id;
}

/** A message in the conversation: USER ones by its owner, the others written by the admin (as a worker would). */
async function say(conversationId: string, role: "USER" | "ASSISTANT" | "TOOL" | "SYSTEM", token: string, model?: string): Promise<string> {
  const input = { conversationId, role, content: `a ${role} message`, model };
  return (await app.ok(`mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`, { in: input }, token)).addMessage.id;
}

const feedbackRows = (messageId: string) => knex()("feedback").where({ messageId }).orderBy("createdAt").select("userId", "rating", "score", "comment", "tags");
const auditRows = (messageId: string) =>
  knex()("audit_logs").where({ targetType: "message", targetId: messageId }).whereLike("action", "feedback.%").orderBy("createdAt").orderBy("id").select("action", "actorId", "details");

describe("rateMessage and retractFeedback", () => {
  let conversationId: string;
  let reply: string;

  beforeAll(async () => {
    conversationId = await conversationOf(alice);
    await say(conversationId, "USER", alice.token);
    reply = await say(conversationId, "ASSISTANT", admin.token, "gpt-x");
  });

  it("rates a reply, replaces the rating when rated again, and retracts it; every change is audited with before and after", async () => {
    const first = await app.ok(RATE, { in: { messageId: reply, rating: "UP", score: 4, comment: "  spot on ", tags: ["HELPFUL", "clear", " custom:Fast ", "HELPFUL"] } }, alice.token);
    expect(first.rateMessage).toMatchObject({
      messageId: reply,
      conversationId,
      userId: alice.user.id,
      rating: "UP",
      score: 4,
      comment: "spot on",
      tags: ["HELPFUL", "CLEAR", "custom:fast"],
      user: { id: alice.user.id },
    });

    const second = await app.ok(RATE, { in: { messageId: reply, rating: "DOWN", tags: ["INACCURATE"] } }, alice.token);
    expect(second.rateMessage).toMatchObject({ id: first.rateMessage.id, rating: "DOWN", score: null, comment: null, tags: ["INACCURATE"] });
    expect(await feedbackRows(reply)).toEqual([{ userId: alice.user.id, rating: "down", score: null, comment: null, tags: ["INACCURATE"] }]);

    expect((await app.ok(MINE, { id: reply }, alice.token)).message.myFeedback).toEqual({ userId: alice.user.id, rating: "DOWN", score: null, tags: ["INACCURATE"] });

    expect((await app.ok(RETRACT, { m: reply }, alice.token)).retractFeedback).toBe(true);
    expect(await feedbackRows(reply)).toEqual([]);
    expect((await app.ok(RETRACT, { m: reply }, alice.token)).retractFeedback).toBe(false); // nothing left: not audited again
    expect((await app.ok(MINE, { id: reply }, alice.token)).message.myFeedback).toBeNull();

    const audit = await auditRows(reply);
    expect(audit.map((row) => [row.action, row.actorId])).toEqual([
      ["feedback.rate", alice.user.id],
      ["feedback.rate", alice.user.id],
      ["feedback.retract", alice.user.id],
    ]);
    expect(audit[0].details).toMatchObject({ userId: alice.user.id, before: null, after: { rating: "up", score: 4, comment: "spot on", tags: ["HELPFUL", "CLEAR", "custom:fast"] } });
    expect(audit[1].details).toMatchObject({ before: { rating: "up", score: 4 }, after: { rating: "down", score: null, tags: ["INACCURATE"] } });
    expect(audit[2].details).toMatchObject({ before: { rating: "down" }, after: null });
  });

  it("rating again with the same values changes nothing, not even the audit log", async () => {
    const input = { messageId: reply, rating: "UP", tags: ["custom:again"] };
    await app.ok(RATE, { in: input }, admin.token);
    const [before, auditBefore] = [await knex()("feedback").where({ messageId: reply, userId: admin.user.id }).first(), await auditRows(reply)];
    await app.ok(RATE, { in: { ...input, tags: [" CUSTOM:Again "] } }, admin.token); // the same once normalised
    expect(await knex()("feedback").where({ messageId: reply, userId: admin.user.id }).first()).toEqual(before);
    expect(await auditRows(reply)).toEqual(auditBefore);
    expect((await app.ok(RETRACT, { m: reply }, admin.token)).retractFeedback).toBe(true);
  });

  it("takes a score alone, and TOOL messages", async () => {
    const tool = await say(conversationId, "TOOL", admin.token);
    const { rateMessage } = await app.ok(RATE, { in: { messageId: tool, score: 5 } }, alice.token);
    expect(rateMessage).toMatchObject({ rating: null, score: 5, tags: [] });
  });

  it.each([
    ["a USER message", { role: "USER" }, { rating: "UP" }, "messageId"],
    ["a SYSTEM message", { role: "SYSTEM" }, { rating: "UP" }, "messageId"],
    ["score 7", {}, { rating: "UP", score: 7 }, "score"],
    ["score 0", {}, { score: 0 }, "score"],
    ["neither rating nor score", {}, { comment: "meh" }, "rating"],
    ["an unknown tag", {}, { rating: "UP", tags: ["HELPFUL", "AWESOME"] }, "tags"],
    ["an empty free tag", {}, { rating: "UP", tags: ["custom:  "] }, "tags"],
    ["a free tag over 50 characters", {}, { rating: "UP", tags: [`custom:${"x".repeat(44)}`] }, "tags"],
    ["21 tags", {}, { rating: "UP", tags: Array.from({ length: 21 }, (_, i) => `custom:t${i}`) }, "tags"],
    ["a comment over 2000 characters", {}, { rating: "UP", comment: "x".repeat(2001) }, "comment"],
  ])("refuses %s with BAD_USER_INPUT and stores nothing", async (_what, target, values, field) => {
    const role = (target as { role?: "USER" | "SYSTEM" }).role;
    const messageId = role ? await say(conversationId, role, role === "USER" ? alice.token : admin.token) : reply;
    const [rowsBefore, auditBefore] = [await feedbackRows(messageId), await auditRows(messageId)];
    const { body } = await app.gql(RATE, { in: { messageId, ...values } }, alice.token);
    expect(body.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(await feedbackRows(messageId)).toEqual(rowsBefore);
    expect(await auditRows(messageId)).toEqual(auditBefore);
  });

  it("takes exactly 20 tags, and every tag of the vocabulary in any case", async () => {
    const tags = [...FEEDBACK_TAGS.map((tag) => tag.toLowerCase()), ...Array.from({ length: 20 - FEEDBACK_TAGS.length }, (_, i) => `custom:t${i}`)];
    const { rateMessage } = await app.ok(RATE, { in: { messageId: reply, rating: "UP", tags } }, alice.token);
    expect(rateMessage.tags).toHaveLength(20);
    expect(rateMessage.tags.slice(0, FEEDBACK_TAGS.length)).toEqual([...FEEDBACK_TAGS]);
  });
});

describe("who may rate and see what", () => {
  let conversationId: string;
  let reply: string;

  beforeAll(async () => {
    conversationId = await conversationOf(alice);
    reply = await say(conversationId, "ASSISTANT", admin.token);
    await app.ok(RATE, { in: { messageId: reply, rating: "UP", score: 5, tags: ["HELPFUL"] } }, alice.token);
  });

  it("another member can neither rate, retract nor see the feedback of a message they cannot read: NOT_FOUND", async () => {
    const before = await feedbackRows(reply);
    expect(await app.errorCode(RATE, { in: { messageId: reply, rating: "DOWN" } }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(RETRACT, { m: reply }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(MINE, { id: reply }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(RATE, { in: { messageId: "00000000-0000-4000-8000-000000000000", rating: "UP" } }, bob.token)).toBe("NOT_FOUND");
    expect(await feedbackRows(reply)).toEqual(before);
  });

  it("a member cannot rate or retract for someone else", async () => {
    const own = await say(await conversationOf(bob), "ASSISTANT", admin.token);
    expect(await app.errorCode(RATE, { in: { messageId: own, rating: "UP", userId: alice.user.id } }, bob.token)).toBe("FORBIDDEN");
    await app.ok(RATE, { in: { messageId: own, rating: "UP" } }, admin.token);
    expect(await app.errorCode(RETRACT, { m: own, u: admin.user.id }, bob.token)).toBe("FORBIDDEN");
    expect(await feedbackRows(own)).toEqual([{ userId: admin.user.id, rating: "up", score: null, comment: null, tags: [] }]);
  });

  it("myFeedback is the viewer's own; feedbackSummary is null for members and counts everyone's for admins", async () => {
    await app.ok(RATE, { in: { messageId: reply, rating: "DOWN", score: 2, tags: ["HELPFUL", "TOO_LONG"] } }, admin.token);
    const asAlice = (await app.ok(MINE, { id: reply }, alice.token)).message;
    expect(asAlice).toEqual({ myFeedback: { userId: alice.user.id, rating: "UP", score: 5, tags: ["HELPFUL"] }, feedbackSummary: null });
    const asAdmin = (await app.ok(MINE, { id: reply }, admin.token)).message;
    expect(asAdmin.myFeedback).toEqual({ userId: admin.user.id, rating: "DOWN", score: 2, tags: ["HELPFUL", "TOO_LONG"] });
    expect(asAdmin.feedbackSummary).toEqual({
      up: 1,
      down: 1,
      ratings: 2,
      averageScore: 3.5,
      tags: [
        { tag: "HELPFUL", count: 2 },
        { tag: "TOO_LONG", count: 1 },
      ],
    });
  });

  it("members cannot read feedbackStats: FORBIDDEN; nor can a service without the DISCORD grant", async () => {
    const filter = { from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z" };
    expect(await app.errorCode(STATS, { f: filter }, alice.token)).toBe("FORBIDDEN");
    const plain = await app.makeUser(Role.SERVICE, "plain service");
    expect(await app.errorCode(STATS, { f: filter }, plain.token)).toBe("FORBIDDEN");
  });

  it("a DISCORD service rates for a Discord member in a Discord conversation, but not for a web member or in a web conversation", async () => {
    const { upsertDiscordUser: member } = await app.ok(`mutation { upsertDiscordUser(input: { discordId: "400000000000000001", displayName: "Dee" }) { id } }`, {}, adapter.token);
    const CREATE = `mutation($in: CreateConversationInput!) { createConversation(input: $in) { id } }`;
    const input = { origin: "DISCORD", ownerId: member.id, discordGuildId: "500000000000000001", discordChannelId: "500000000000000002" };
    const discordConversation = (await app.ok(CREATE, { in: input }, adapter.token)).createConversation.id;
    const answer = await say(discordConversation, "ASSISTANT", admin.token);

    const { rateMessage } = await app.ok(RATE, { in: { messageId: answer, rating: "UP", userId: member.id } }, adapter.token);
    expect(rateMessage).toMatchObject({ userId: member.id, rating: "UP" });
    expect((await auditRows(answer))[0]).toMatchObject({ action: "feedback.rate", actorId: adapter.user.id, details: { userId: member.id } });

    // Alice is a web member: the DISCORD grant does not let the adapter speak for her.
    expect(await app.errorCode(RATE, { in: { messageId: answer, rating: "DOWN", userId: alice.user.id } }, adapter.token)).toBe("FORBIDDEN");
    // Alice's web conversation is out of the adapter's reach altogether.
    expect(await app.errorCode(RATE, { in: { messageId: reply, rating: "DOWN", userId: member.id } }, adapter.token)).toBe("NOT_FOUND");
    expect(await feedbackRows(answer)).toEqual([{ userId: member.id, rating: "up", score: null, comment: null, tags: [] }]);

    expect((await app.ok(RETRACT, { m: answer, u: member.id }, adapter.token)).retractFeedback).toBe(true);
    expect(await feedbackRows(answer)).toEqual([]);
  });
});

describe("feedbackStats", () => {
  const GUILD = "500000000000000010";
  const range = { from: "2001-01-01T00:00:00Z", to: "2001-01-31T00:00:00Z" };
  let assistantId: string;

  /** Feedback rows as given at a fixed time, so the buckets below are exact whatever else the file stored. */
  async function given(messageId: string, user: string, at: string, rating: "up" | "down" | null, score: number | null = null): Promise<void> {
    const { conversationId } = await knex()("messages").where({ id: messageId }).first("conversationId");
    await knex()("feedback").insert({ messageId, conversationId, userId: user, rating, score, createdAt: new Date(at), updatedAt: new Date(at) });
  }

  beforeAll(async () => {
    [{ id: assistantId }] = await knex()("assistants").insert({ name: "Travel helper" }).returning("id");
    const versions: { id: string }[] = await knex()("assistant_versions")
      .insert([
        { assistantId, version: 1, model: "model-a" },
        { assistantId, version: 2, model: "model-a" },
      ])
      .returning("id");
    const web = await conversationOf(alice);
    const m1 = await say(web, "ASSISTANT", admin.token, "model-a");
    const m2 = await say(web, "ASSISTANT", admin.token, "model-b");
    const { upsertDiscordUser: member } = await app.ok(`mutation { upsertDiscordUser(input: { discordId: "400000000000000002", displayName: "Em" }) { id } }`, {}, adapter.token);
    const CREATE = `mutation($in: CreateConversationInput!) { createConversation(input: $in) { id } }`;
    const discord = (await app.ok(CREATE, { in: { origin: "DISCORD", ownerId: member.id, discordGuildId: GUILD, discordChannelId: "500000000000000011" } }, adapter.token)).createConversation.id;
    const m3 = await say(discord, "ASSISTANT", admin.token, "model-a");
    await knex()("messages").where({ id: m1 }).update({ assistantVersionId: versions[0].id });
    await knex()("messages").where({ id: m3 }).update({ assistantVersionId: versions[1].id });

    await given(m1, alice.user.id, "2001-01-01T10:00:00Z", "up", 4);
    await given(m1, admin.user.id, "2001-01-02T10:00:00Z", "up", 2);
    await given(m1, bob.user.id, "2001-01-02T11:00:00Z", "down");
    await given(m2, alice.user.id, "2001-01-01T12:00:00Z", "down", 1);
    await given(m3, member.id, "2001-01-03T09:00:00Z", "up", 5);
    await given(m3, alice.user.id, "2001-01-03T10:00:00Z", "down");
    await given(m2, admin.user.id, "2001-02-01T00:00:00Z", "up", 5); // after the range
  });

  const bucket = (values: Record<string, unknown>) => ({ periodStart: null, model: null, assistantId: null, guildId: null, averageScore: null, ...values });

  it("counts UP, DOWN, ratings, the share of UP and the average score per model", async () => {
    const { feedbackStats } = await app.ok(STATS, { f: range, g: ["MODEL"] }, admin.token);
    expect(feedbackStats).toEqual([
      bucket({ model: "model-a", up: 3, down: 2, ratings: 5, upShare: 0.6, averageScore: 11 / 3 }),
      bucket({ model: "model-b", up: 0, down: 1, ratings: 1, upShare: 0, averageScore: 1 }),
    ]);
  });

  it("splits by assistant and day (UTC), messages of no assistant first", async () => {
    const { feedbackStats } = await app.ok(STATS, { f: range, g: ["ASSISTANT", "DAY"] }, admin.token);
    expect(feedbackStats).toEqual([
      bucket({ assistantId: null, periodStart: "2001-01-01T00:00:00.000Z", up: 0, down: 1, ratings: 1, upShare: 0, averageScore: 1 }),
      bucket({ assistantId, periodStart: "2001-01-01T00:00:00.000Z", up: 1, down: 0, ratings: 1, upShare: 1, averageScore: 4 }),
      bucket({ assistantId, periodStart: "2001-01-02T00:00:00.000Z", up: 1, down: 1, ratings: 2, upShare: 0.5, averageScore: 2 }),
      bucket({ assistantId, periodStart: "2001-01-03T00:00:00.000Z", up: 1, down: 1, ratings: 2, upShare: 0.5, averageScore: 5 }),
    ]);
  });

  it("narrows by assistant, model and guild; without groups it is one bucket, or none", async () => {
    const one = async (f: Record<string, unknown>) => (await app.ok(STATS, { f: { ...range, ...f } }, admin.token)).feedbackStats;
    expect(await one({ assistantId })).toEqual([bucket({ up: 3, down: 2, ratings: 5, upShare: 0.6, averageScore: 11 / 3 })]);
    expect(await one({ model: "model-b" })).toEqual([bucket({ up: 0, down: 1, ratings: 1, upShare: 0, averageScore: 1 })]);
    expect(await one({ guildId: GUILD })).toEqual([bucket({ up: 1, down: 1, ratings: 2, upShare: 0.5, averageScore: 5 })]);
    expect(await one({ model: "no such model" })).toEqual([]);
  });

  it("shows a DISCORD service only the feedback given in Discord guilds' conversations", async () => {
    const { feedbackStats: admins } = await app.ok(STATS, { f: range, g: ["GUILD"] }, admin.token);
    expect(admins).toEqual([
      bucket({ guildId: null, up: 2, down: 2, ratings: 4, upShare: 0.5, averageScore: 7 / 3 }),
      bucket({ guildId: GUILD, up: 1, down: 1, ratings: 2, upShare: 0.5, averageScore: 5 }),
    ]);
    const { feedbackStats: adapters } = await app.ok(STATS, { f: range, g: ["GUILD"] }, adapter.token);
    expect(adapters).toEqual([bucket({ guildId: GUILD, up: 1, down: 1, ratings: 2, upShare: 0.5, averageScore: 5 })]);
    expect((await app.ok(STATS, { f: { ...range, guildId: "500000000000000099" } }, adapter.token)).feedbackStats).toEqual([]);
  });

  it("refuses two periods at once, an empty range and a malformed guild id", async () => {
    expect(await app.errorCode(STATS, { f: range, g: ["DAY", "WEEK"] }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(STATS, { f: { from: range.to, to: range.from } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(STATS, { f: { ...range, guildId: "not a snowflake" } }, admin.token)).toBe("BAD_USER_INPUT");
  });
});

describe("N+1 guard", () => {
  const AUTH = 1;
  const FEW = 5;
  const PAGE = 50;
  const histories = new Map<number, string>();
  const PAGE_QUERY = `query($id: UUID!, $n: Int!) {
    conversation(id: $id) { messages(first: $n) { edges { node { id myFeedback { rating score } feedbackSummary { up down ratings averageScore tags { tag count } } } } } }
  }`;

  beforeAll(async () => {
    for (const n of [FEW, PAGE]) {
      const conversationId = await conversationOf(alice);
      for (let i = 0; i < n; i++) {
        const messageId = await say(conversationId, "ASSISTANT", admin.token);
        // Every message has feedback of its own from both viewers, so no two parents share a key.
        await knex()("feedback").insert([
          { messageId, conversationId, userId: alice.user.id, rating: "up", score: 1 + (i % 5), tags: knex().raw("?::text[]", [["HELPFUL"]]) },
          { messageId, conversationId, userId: admin.user.id, rating: "down", tags: knex().raw("?::text[]", [[`custom:m${i}`]]) },
        ]);
      }
      histories.set(n, conversationId);
    }
  });

  /** The statements of one page, per size; the answers are checked so that a batch cannot skip rows unseen. */
  async function statementsPerSize(user: TestUser): Promise<Record<number, number>> {
    const counts: Record<number, number> = {};
    for (const n of [FEW, PAGE]) {
      const { data, statements } = await counter.run(PAGE_QUERY, { id: histories.get(n), n }, user.token);
      const nodes = data.conversation.messages.edges.map((edge: any) => edge.node);
      expect(nodes).toHaveLength(n);
      for (const node of nodes) {
        expect(node.myFeedback.rating).toBe(user === admin ? "DOWN" : "UP");
        if (user === admin) expect(node.feedbackSummary).toMatchObject({ up: 1, down: 1, ratings: 2, tags: expect.arrayContaining([{ tag: "HELPFUL", count: 1 }]) });
        else expect(node.feedbackSummary).toBeNull();
      }
      counts[n] = statements.length;
    }
    return counts;
  }

  it("a page of 5 or 50 messages with myFeedback and feedbackSummary costs the same statements: one per field", async () => {
    // AUTH, the conversation and its page (the history's own cost, see n-plus-one.test.ts), then one per field.
    expect(await statementsPerSize(admin)).toEqual({ [FEW]: AUTH + 1 + 2, [PAGE]: AUTH + 1 + 2 });
    // A member's summary is null without a statement.
    expect(await statementsPerSize(alice)).toEqual({ [FEW]: AUTH + 1 + 1, [PAGE]: AUTH + 1 + 1 });
  });
});
