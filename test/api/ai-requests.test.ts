/**
 * The usage ledger: recordAiRequest prices a call from the catalogue price in force at its time (or takes the
 * cost given, or says UNKNOWN), is idempotent on requestId (concurrent twins too), bills only whom the
 * reporter may bill, and keeps the hour/day/month roll-ups in the same statement. Assistant messages written
 * with usage (addMessage, completeMessage) record their own row, once, however often they are retried.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let admin: TestUser;
let worker: TestUser;
let alice: TestUser;
let bob: TestUser;

const RECORD = `mutation($input: RecordAiRequestInput!) {
  recordAiRequest(input: $input) { id requestId userId reportedBy conversationId messageId model kind promptTokens completionTokens cachedTokens
    status costUsd costSource tokensPerSecond occurredAt }
}`;

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  await app.grant(worker, { origin: "web" });
  const knex = app.database.db.knex;
  const [model] = await knex("ai_models").insert({ provider: "openai", name: "gpt-x" }).returning("id");
  await knex("ai_model_prices").insert([
    { modelId: model.id, effectiveFrom: new Date("2026-01-01T00:00:00Z"), inputPerMillion: 2.5, outputPerMillion: 10, cachedInputPerMillion: 1.25 },
    { modelId: model.id, effectiveFrom: new Date("2026-06-01T00:00:00Z"), inputPerMillion: 2, outputPerMillion: 8 },
  ]);
  // The same name at two providers: priced only when the provider is named.
  for (const provider of ["a", "b"]) {
    const [twin] = await knex("ai_models").insert({ provider, name: "twin" }).returning("id");
    await knex("ai_model_prices").insert({ modelId: twin.id, effectiveFrom: new Date("2026-01-01T00:00:00Z"), inputPerMillion: provider === "a" ? 1 : 100, outputPerMillion: 0 });
  }
});
afterAll(() => app.dispose());

async function conversationOf(user: TestUser): Promise<string> {
  return (await app.ok(`mutation { createConversation(input: { title: "usage" }) { id } }`, {}, user.token)).createConversation.id;
}

const record = async (input: Record<string, unknown>, token = worker.token) => (await app.ok(RECORD, { input }, token)).recordAiRequest;
const rollups = (userId: string) =>
  app.database.db.knex("cost_tracking").where({ userId }).orderBy(["period", "periodStart", "model"]).select("period", "periodStart", "model", "requests", "costUsd", "promptTokens");

describe("recordAiRequest", () => {
  it("prices a call from the catalogue price in force at its time; past prices stay", async () => {
    const c = await conversationOf(alice);
    const march = await record({ requestId: "r-march", conversationId: c, model: "gpt-x", promptTokens: 1000, cachedTokens: 200, completionTokens: 500, occurredAt: "2026-03-01T10:30:00Z", latencyMs: 1100, timeToFirstTokenMs: 100 });
    // 800 × 2.5 + 200 × 1.25 + 500 × 10 per million
    expect(march).toMatchObject({ userId: alice.user.id, reportedBy: worker.user.id, costUsd: 0.00725, costSource: "CATALOG", kind: "CHAT", status: "SUCCESS", tokensPerSecond: 500 });
    const july = await record({ requestId: "r-july", conversationId: c, model: "gpt-x", promptTokens: 1000, cachedTokens: 200, completionTokens: 500, occurredAt: "2026-07-01T00:00:00Z" });
    // No cached price from June: the cached part at the input price.
    expect(july).toMatchObject({ costUsd: 0.006, costSource: "CATALOG" });
    expect((await record({ requestId: "r-given", conversationId: c, model: "gpt-x", promptTokens: 10, costUsd: 0.5 })).costSource).toBe("GIVEN");
    // A model the catalogue knows but has no price for (yet): recorded, UNKNOWN.
    await app.database.db.knex("ai_models").insert({ provider: "x", name: "unpriced" });
    expect(await record({ requestId: "r-unpriced", conversationId: c, model: "unpriced", promptTokens: 10 })).toMatchObject({ costUsd: null, costSource: "UNKNOWN" });
    // One it does not know, or a name two providers share without the provider: the worker must say more.
    expect(await app.errorCode(RECORD, { input: { requestId: "r-unknown", conversationId: c, model: "nobody-knows-me", promptTokens: 10 } }, worker.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(RECORD, { input: { requestId: "r-twin", conversationId: c, model: "twin", promptTokens: 10 } }, worker.token)).toBe("BAD_USER_INPUT");
    // With the cost given, any model goes.
    expect(await record({ requestId: "r-unknown-given", conversationId: c, model: "nobody-knows-me", costUsd: 0.01 })).toMatchObject({ costSource: "GIVEN" });
    expect(await record({ requestId: "r-twin-a", conversationId: c, model: "twin", provider: "a", promptTokens: 1000000 })).toMatchObject({ costUsd: 1, costSource: "CATALOG" });
  });

  it("is idempotent on requestId, also for concurrent twins, and refuses the same key for another call", async () => {
    const c = await conversationOf(alice);
    const input = { requestId: "twins", conversationId: c, model: "gpt-x", promptTokens: 100, completionTokens: 10, occurredAt: "2026-04-02T08:00:00Z" };
    const rows = await Promise.all(Array.from({ length: 20 }, () => record(input)));
    expect(new Set(rows.map((row) => row.id)).size).toBe(1);
    expect(await app.database.db.knex("ai_requests").where({ requestId: "twins" }).count({ n: "*" })).toEqual([{ n: 1 }]);
    const hour = await app.database.db.knex("cost_tracking").where({ period: "hour", periodStart: new Date("2026-04-02T08:00:00Z"), userId: alice.user.id }).first("requests");
    expect(hour.requests).toBe(1);
    expect(await app.errorCode(RECORD, { input: { ...input, promptTokens: 101 } }, worker.token)).toBe("CONFLICT");
  });

  it("keeps hour, day and month roll-ups of every call, in UTC", async () => {
    const c = await conversationOf(bob);
    await app.grant(worker, { conversationId: c });
    await record({ requestId: "b1", conversationId: c, model: "gpt-x", promptTokens: 1000000, occurredAt: "2026-02-03T23:59:00Z" });
    await record({ requestId: "b2", conversationId: c, model: "gpt-x", promptTokens: 1000000, occurredAt: "2026-02-04T00:01:00Z" });
    const rows = (await rollups(bob.user.id)).map((row) => ({ ...row, costUsd: Number(row.costUsd), promptTokens: Number(row.promptTokens), periodStart: row.periodStart.toISOString() }));
    expect(rows).toEqual([
      { period: "day", periodStart: "2026-02-03T00:00:00.000Z", model: "gpt-x", requests: 1, costUsd: 2.5, promptTokens: 1000000 },
      { period: "day", periodStart: "2026-02-04T00:00:00.000Z", model: "gpt-x", requests: 1, costUsd: 2.5, promptTokens: 1000000 },
      { period: "hour", periodStart: "2026-02-03T23:00:00.000Z", model: "gpt-x", requests: 1, costUsd: 2.5, promptTokens: 1000000 },
      { period: "hour", periodStart: "2026-02-04T00:00:00.000Z", model: "gpt-x", requests: 1, costUsd: 2.5, promptTokens: 1000000 },
      { period: "month", periodStart: "2026-02-01T00:00:00.000Z", model: "gpt-x", requests: 2, costUsd: 5, promptTokens: 2000000 },
    ]);
  });

  it("bills only whom the reporter may bill", async () => {
    const mine = await conversationOf(alice);
    const other = await app.ok(`mutation { createConversation(input: { title: "api", origin: API }) { id } }`, {}, bob.token);
    expect(await app.errorCode(RECORD, { input: { requestId: "m", model: "gpt-x" } }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { requestId: "x", model: "gpt-x", conversationId: other.createConversation.id } }, worker.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(RECORD, { input: { requestId: "y", model: "gpt-x", userId: bob.user.id } }, worker.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(RECORD, { input: { requestId: "z", model: "gpt-x", conversationId: mine, userId: bob.user.id } }, worker.token)).toBe("FORBIDDEN");
    expect((await record({ requestId: "self", model: "gpt-x" })).userId).toBe(worker.user.id);
    expect((await record({ requestId: "admin", model: "gpt-x", userId: bob.user.id }, admin.token)).userId).toBe(bob.user.id);
    expect(await app.errorCode(RECORD, { input: { requestId: "gone", model: "gpt-x", userId: "00000000-0000-4000-8000-000000000000" } }, admin.token)).toBe("NOT_FOUND");
  });

  it.each([
    ["negative tokens", { promptTokens: -1 }],
    ["cached tokens over the prompt", { promptTokens: 5, cachedTokens: 6 }],
    ["a score out of [0, 1]", { confidence: 1.5 }],
    ["a negative cost", { costUsd: -0.01 }],
    ["a guild that is not a Discord id", { guildId: "guild" }],
    ["a time in the future", { occurredAt: "2099-01-01T00:00:00Z" }],
    ["an empty model", { model: " " }],
    ["a first token after the whole call", { latencyMs: 10, timeToFirstTokenMs: 11 }],
    ["metadata that is not an object", { metadata: [1] }],
  ])("refuses %s with BAD_USER_INPUT", async (_case, bad) => {
    expect(await app.errorCode(RECORD, { input: { requestId: "bad", model: "gpt-x", ...bad } }, worker.token)).toBe("BAD_USER_INPUT");
  });
});

describe("messages written with usage", () => {
  const ADD = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`;
  const ledgerOf = (messageId: string) => app.database.db.knex("ai_requests").where({ messageId }).select("requestId", "userId", "reportedBy", "costSource", "promptTokens");

  it("put an assistant message's model call on the ledger once, however often it is retried", async () => {
    const c = await conversationOf(alice);
    const input = { conversationId: c, role: "ASSISTANT", content: "hi", requestId: "gen-1", model: "gpt-x", promptTokens: 1000, completionTokens: 100 };
    const [first, again] = [await app.ok(ADD, { input }, worker.token), await app.ok(ADD, { input }, worker.token)];
    expect(again.addMessage.id).toBe(first.addMessage.id);
    expect(await ledgerOf(first.addMessage.id)).toEqual([
      { requestId: `message:${first.addMessage.id}`, userId: alice.user.id, reportedBy: worker.user.id, costSource: "catalog", promptTokens: 1000 },
    ]);
    // No usage, or not an assistant's: nothing on the ledger.
    const plain = await app.ok(ADD, { input: { conversationId: c, content: "thanks" } }, alice.token);
    expect(await ledgerOf(plain.addMessage.id)).toEqual([]);
  });

  it("put an encrypted assistant message's call on the ledger in its transaction, once", async () => {
    const encrypted = await createTestApp({ MESSAGE_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString("base64")}` }, app.database);
    try {
      const c = await conversationOf(alice);
      const input = { conversationId: c, role: "ASSISTANT", content: "secret reply", requestId: "enc-1", model: "gpt-x", completionTokens: 100 };
      const [first, again] = [await encrypted.ok(ADD, { input }, worker.token), await encrypted.ok(ADD, { input }, worker.token)];
      expect(again.addMessage.id).toBe(first.addMessage.id);
      expect(await ledgerOf(first.addMessage.id)).toEqual([
        { requestId: `message:${first.addMessage.id}`, userId: alice.user.id, reportedBy: worker.user.id, costSource: "catalog", promptTokens: 0 },
      ]);
    } finally {
      await encrypted.dispose();
    }
  });

  it("put a streamed reply's usage on the ledger when it completes, once", async () => {
    const c = await conversationOf(alice);
    const { startMessage } = await app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c, model: "gpt-x" }) { id } }`, { c }, worker.token);
    await app.ok(`mutation($m: UUID!) { appendMessageChunk(messageId: $m, index: 0, text: "hello") { index } }`, { m: startMessage.id }, worker.token);
    const COMPLETE = `mutation($m: UUID!) { completeMessage(messageId: $m, usage: { promptTokens: 10, completionTokens: 5, costUsd: 0.25 }) { status } }`;
    await app.ok(COMPLETE, { m: startMessage.id }, worker.token);
    await app.ok(COMPLETE, { m: startMessage.id }, worker.token); // a retry
    expect(await ledgerOf(startMessage.id)).toEqual([
      { requestId: `message:${startMessage.id}`, userId: alice.user.id, reportedBy: worker.user.id, costSource: "given", promptTokens: 10 },
    ]);
  });
});
