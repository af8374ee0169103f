/**
 * Issue 19 part 3, privacy: exportMyData (an archive of all of a member's data, written by the background
 * export jobs into the storage backend and downloaded from GET /exports/:id/download) and admin
 * deleteUser(id, mode: ANONYMIZE | DELETE), through the API and checked against the tables and the files.
 *
 * One cast for the whole file: members with private conversations (messages encrypted at rest), a reply by a
 * worker, another member's message in them, a Discord conversation owned by the relay service that several
 * members write in, feedback, usage, a budget, a transcript, an artifact file, an assistant, a document and a
 * question each. Alice is exported and then anonymized, Carol deleted; Bob is the bystander whose data must come
 * out of both untouched and must never appear in anyone else's archive.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { filesBelow, sha256 } from "../helpers/transcripts";
import { RawSubscription } from "../helpers/live";
import { s3Env, startS3, type TestS3 } from "../helpers/s3";

const KEY_RING = `k1:${Buffer.alloc(32, 9).toString("base64")}`;
const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";

const EXPORT_FIELDS = `id status fileSizeBytes sha256 error requestId downloadPath createdAt completedAt
  counts { conversations messages messagesElsewhere feedback usage assistants documents queryHistory apiKeys }`;
const EXPORT = `mutation($r: String) { exportMyData(requestId: $r) { ${EXPORT_FIELDS} } }`;
const GET_EXPORT = `query($id: UUID!) { dataExport(id: $id) { ${EXPORT_FIELDS} } }`;
const DELETE_USER = `mutation($id: UUID!, $mode: DeleteUserMode!) {
  deleteUser(id: $id, mode: $mode) {
    userId mode user { id displayName isActive role email externalId discordId preferences }
    conversations messages erasedMessages feedback transcripts artifacts dataExports apiKeys serviceGrants assistants documents
    queryHistory files usageRecordsKept
  }
}`;
const ADD = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq } }`;

interface ExportData {
  id: string;
  status: "PENDING" | "READY" | "FAILED";
  fileSizeBytes: number | null;
  sha256: string | null;
  error: string | null;
  requestId: string | null;
  downloadPath: string | null;
  counts: Record<string, number> | null;
}

let dir: string;
let app: TestApp;
let admin: TestUser;
let worker: TestUser; // writes assistant replies and artifacts into web conversations
let relay: TestUser; // the Discord adapter: owns the shared channel conversation
let discordConversation: string;
let snowflakes = 900000000000000000n;

const knex = () => app.database.db.knex;

/** Polls dataExport(id) until it is no longer PENDING (bounded polls, never a clock). */
async function settledExport(user: TestUser, id: string, polls = 1200): Promise<ExportData> {
  for (let i = 0; i < polls; i++) {
    const { dataExport } = await app.ok<{ dataExport: ExportData }>(GET_EXPORT, { id }, user.token);
    if (dataExport.status !== "PENDING") return dataExport;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`data export ${id} is still PENDING after ${polls} polls`);
}

async function exportOf(user: TestUser, requestId?: string): Promise<ExportData> {
  const { exportMyData } = await app.ok<{ exportMyData: ExportData }>(EXPORT, { r: requestId }, user.token);
  return exportMyData.status === "PENDING" ? settledExport(user, exportMyData.id) : exportMyData;
}

async function download(id: string, token?: string, target: TestApp = app) {
  const response = await fetch(`${target.url}/exports/${id}/download`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function member(name: string): Promise<TestUser> {
  const user = await app.makeUser(Role.MEMBER, name);
  await knex()("users")
    .where({ id: user.user.id })
    .update({ discordId: String(++snowflakes), email: `${name}@example.test`, externalId: `sub-${name}`, preferences: JSON.stringify({ theme: "dark" }) });
  return user;
}

const add = async (token: string, input: Record<string, unknown>) => (await app.ok(ADD, { input }, token)).addMessage as { id: string; seq: number };

interface Cast {
  user: TestUser;
  name: string;
  own: string;
  empty: string;
  reply: string;
  transcriptId: string;
  artifactId: string;
  feedbackId: string;
  usageId: string;
  discordMessageId: string;
  botReplyId: string;
}

/** Everything a member leaves behind (see the file comment); `visitor` writes one message into the member's conversation. */
async function seed(user: TestUser, name: string, visitor: TestUser): Promise<Cast> {
  const own = (await app.ok(`mutation { createConversation(input: { title: "${name}'s private", parameters: { model: "m1" } }) { id } }`, {}, user.token)).createConversation.id;
  await add(user.token, { conversationId: own, content: `${name} says hello`, metadata: { mood: "curious" } });
  const reply = (
    await add(worker.token, {
      conversationId: own,
      role: "ASSISTANT",
      content: `an answer for ${name}`,
      model: "gpt-test",
      promptTokens: 10,
      completionTokens: 20,
      costUsd: 0.0015,
      latencyMs: 321,
      toolCalls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }],
    })
  ).id;
  // Another member's words in this member's conversation (an admin may write as anyone).
  await add(admin.token, { conversationId: own, content: `a visitor writes to ${name}`, actAs: visitor.user.id });
  const empty = (await app.ok(`mutation { createConversation(input: { title: "${name}'s empty" }) { id } }`, {}, user.token)).createConversation.id;
  const discordMessageId = (await add(relay.token, { conversationId: discordConversation, content: `${name} in discord`, actAs: user.user.id, metadata: { discord: { author: name } } })).id;
  const botReplyId = (await add(relay.token, { conversationId: discordConversation, role: "ASSISTANT", content: `the bot answers ${name}` })).id;

  const feedbackId = (
    await app.ok(`mutation($m: UUID!) { rateMessage(input: { messageId: $m, rating: UP, comment: "thanks from ${name}" }) { id } }`, { m: reply }, user.token)
  ).rateMessage.id;
  const usageId = (
    await app.ok(
      `mutation($c: UUID!, $u: UUID!) { recordAiRequest(input: { requestId: "${name}-spend", conversationId: $c, userId: $u, model: "gpt-test", promptTokens: 100, completionTokens: 5, costUsd: 0.25 }) { id } }`,
      { c: own, u: user.user.id },
      admin.token,
    )
  ).recordAiRequest.id;
  await app.ok(`mutation($u: UUID!) { setBudget(input: { userId: $u, period: MONTHLY, limitUsd: 5 }) { id } }`, { u: user.user.id }, admin.token);

  const transcript = (await app.ok(`mutation($c: UUID!) { createTranscript(input: { conversationId: $c, format: JSON }) { id status } }`, { c: own }, user.token)).createTranscript;
  expect(transcript.status).toBe("READY");
  const artifactId = (
    await app.ok(`mutation($m: UUID!) { createArtifact(input: { messageId: $m, kind: FILE, title: "${name}.bin" }) { id } }`, { m: reply }, worker.token)
  ).createArtifact.id;
  const put = await fetch(`${app.url}/artifacts/${artifactId}/content`, {
    method: "PUT",
    headers: { authorization: `Bearer ${worker.token}`, "content-type": "application/octet-stream" },
    body: randomBytes(2048),
  });
  expect(put.status).toBe(200);

  await app.ok(`mutation { createAssistant(input: { name: "${name}'s helper", model: "m" }) { id } }`, {}, user.token);
  await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "${name}'s notes", text: "private notes of ${name}" }) { id } }`, {}, user.token);
  await app.ok(`mutation { recordQuery(input: { question: "what did ${name} ask?" }) { id } }`, {}, user.token);
  return { user, name, own, empty, reply, transcriptId: transcript.id, artifactId, feedbackId, usageId, discordMessageId, botReplyId };
}

/**
 * What a bystander has, to compare before and after someone else is deleted: their messages in the deleted user's
 * conversations aside (they go with those), and transcripts aside (one holding the deleted user's words goes).
 */
async function footprint(userId: string, except: string[] = []) {
  const db = knex();
  return {
    user: await db("users").where({ id: userId }).first(),
    conversations: await db("conversations").where({ ownerId: userId }).orderBy("id"),
    messages: await db("messages").where({ authorId: userId }).whereNotIn("conversationId", except).orderBy("id"),
    feedback: await db("feedback").where({ userId }).orderBy("id"),
    usage: await db("ai_requests").where({ userId }).orderBy("id"),
    rollups: await db("cost_tracking").where({ userId }).orderBy(["period", "periodStart"]),
    budget: await db("user_budgets").where({ userId }),
    keys: await db("api_keys").where({ userId }).orderBy("id").select("id", "revokedAt"),
    documents: await db("documents").where({ createdBy: userId }).orderBy("id").select("id", "title"),
  };
}

async function storageKeys(table: string, where: Record<string, unknown>): Promise<string[]> {
  const rows: { storageKey: string }[] = await knex()(table).where(where).whereNotNull("storageKey").select("storageKey");
  return rows.map((row) => row.storageKey);
}

let alice: Cast;
let bob: Cast;
let carol: Cast;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-privacy-"));
  app = await createTestApp({ TRANSCRIPT_DIR: dir, MESSAGE_ENCRYPTION_KEYS: KEY_RING });
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(worker, { origin: "web" });
  relay = await app.makeUser(Role.SERVICE, "relay");
  await app.grant(relay, { origin: "discord" });
  discordConversation = (await app.ok(`mutation { createConversation(input: { title: "#general", origin: DISCORD }) { id } }`, {}, relay.token)).createConversation.id;
  await app.ok(`mutation { upsertAiModel(input: { provider: "p", name: "gpt-test", price: { inputPerMillion: 1, outputPerMillion: 2 } }) { id } }`, {}, admin.token);
  const [a, b, c] = [await member("alice"), await member("bob"), await member("carol")];
  alice = await seed(a, "alice", b);
  bob = await seed(b, "bob", a);
  carol = await seed(c, "carol", b);
});
afterAll(async () => {
  await app?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("exportMyData", () => {
  let ready: ExportData;
  let archive: any;
  let text: string;

  beforeAll(async () => {
    ready = await exportOf(alice.user, "alice-export-1");
    const got = await download(ready.id, alice.user.token);
    expect(got.status).toBe(200);
    text = got.bytes.toString("utf8");
    archive = JSON.parse(text);
  });

  it("becomes READY with the file's size, hash and counts, stored under exports/<userId>/", async () => {
    expect(ready).toMatchObject({
      status: "READY",
      error: null,
      requestId: "alice-export-1",
      downloadPath: `/exports/${ready.id}/download`,
      // Elsewhere: her words in the Discord channel and her visit to Bob; usage: the ledger row of the worker's reply too.
      counts: { conversations: 2, messages: 3, messagesElsewhere: 2, feedback: 1, usage: 2, assistants: 1, documents: 1, queryHistory: 1, apiKeys: 1 },
    });
    expect(ready.fileSizeBytes).toBe(Buffer.byteLength(text));
    expect(ready.sha256).toBe(sha256(Buffer.from(text)));
    expect(filesBelow(dir)).toContain(`exports/${alice.user.user.id}/${ready.id}-1.json`);
  });

  it("is served as a JSON attachment with its hash as ETag", async () => {
    const got = await download(ready.id, alice.user.token);
    expect(got.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(got.headers.get("content-disposition")).toBe(`attachment; filename="parley-data-${ready.id}.json"`);
    expect(got.headers.get("etag")).toBe(`"${ready.sha256}"`);
    expect(got.headers.get("cache-control")).toBe("private, no-store");
  });

  it("holds the profile exactly as stored", async () => {
    const row = await knex()("users").where({ id: alice.user.user.id }).first();
    expect(archive.schema).toBe("parley.data-export/v1");
    expect(archive.export).toEqual({ id: ready.id, userId: row.id, createdAt: expect.any(String) });
    expect(archive.user).toEqual({
      id: row.id,
      displayName: "alice",
      email: "alice@example.test",
      externalId: "sub-alice",
      discordId: row.discordId,
      role: "member",
      isActive: true,
      preferences: { theme: "dark" },
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    });
  });

  it("holds every conversation she owns with all its messages, decrypted, in seq order (a visitor's message included)", async () => {
    const owned = await knex()("conversations").where({ ownerId: alice.user.user.id }).orderBy(["createdAt", "id"]);
    expect(archive.conversations.map((c: any) => c.id)).toEqual(owned.map((c) => c.id));
    expect(archive.conversations.map((c: any) => c.id)).toEqual([alice.own, alice.empty]);
    const [own, empty] = archive.conversations;
    expect(own).toMatchObject({ title: "alice's private", origin: "web", status: "active", parameters: { model: "m1" }, messageCount: 3 });
    expect(empty).toMatchObject({ title: "alice's empty", messages: [], messageCount: 0 });

    const stored = await knex()("messages").where({ conversationId: alice.own }).orderBy("seq");
    expect(stored.every((row) => row.content === null && row.encryptedContent !== null)).toBe(true); // encrypted at rest
    expect(own.messages.map((m: any) => [m.seq, m.id, m.authorId, m.role, m.content])).toEqual([
      [1, stored[0].id, alice.user.user.id, "user", "alice says hello"],
      [2, stored[1].id, worker.user.id, "assistant", "an answer for alice"],
      [3, stored[2].id, bob.user.user.id, "user", "a visitor writes to alice"],
    ]);
    expect(own.messages[0].metadata).toEqual({ mood: "curious" });
    expect(own.messages[1]).toMatchObject({
      model: "gpt-test",
      promptTokens: 10,
      completionTokens: 20,
      costUsd: 0.0015,
      latencyMs: 321,
      toolCalls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }],
    });
  });

  it("holds only her own messages from the shared Discord conversation and Bob's, her feedback, her usage and her budget", async () => {
    const visit = await knex()("messages").where({ conversationId: bob.own, authorId: alice.user.user.id }).first();
    // By conversation id (uuid order is the order of their text), then seq.
    const expected = [
      [discordConversation, { id: alice.discordMessageId, role: "user", content: "alice in discord", metadata: { discord: { author: "alice" } } }],
      [bob.own, { id: visit.id, seq: 3, role: "user", content: "a visitor writes to bob" }],
    ] as const;
    expect(archive.messagesElsewhere).toEqual(
      [...expected]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([conversationId, fields]) => expect.objectContaining({ conversationId, authorId: alice.user.user.id, ...fields })),
    );
    const feedback = await knex()("feedback").where({ id: alice.feedbackId }).first();
    expect(archive.feedback).toEqual([
      {
        id: alice.feedbackId,
        messageId: alice.reply,
        conversationId: alice.own,
        rating: "up",
        score: null,
        comment: "thanks from alice",
        tags: [],
        createdAt: feedback.createdAt.toISOString(),
        updatedAt: feedback.updatedAt.toISOString(),
      },
    ]);
    const usage = await knex()("ai_requests").where({ userId: alice.user.user.id }).orderBy(["occurredAt", "id"]);
    expect(archive.usage.map((row: any) => row.id)).toEqual(usage.map((row) => row.id));
    expect(archive.usage).toEqual([
      expect.objectContaining({ requestId: `message:${alice.reply}`, messageId: alice.reply, model: "gpt-test", promptTokens: 10, completionTokens: 20, costUsd: 0.0015 }),
      expect.objectContaining({ id: alice.usageId, requestId: "alice-spend", conversationId: alice.own, model: "gpt-test", promptTokens: 100, completionTokens: 5, costUsd: 0.25 }),
    ]);
    expect(archive.usage[0]).not.toHaveProperty("reportedBy");
    expect(archive.budget).toMatchObject({ period: "monthly", limitUsd: 5 });
    expect(archive.counts).toEqual(ready.counts);
  });

  it("holds her assistants with their versions, her own documents with their text, her questions, and her keys without their secrets", async () => {
    const assistant = await knex()("assistants").where({ ownerId: alice.user.user.id }).first();
    expect(archive.assistants).toEqual([
      {
        id: assistant.id,
        name: "alice's helper",
        description: null,
        isActive: true,
        currentVersion: 1,
        createdAt: assistant.createdAt.toISOString(),
        updatedAt: assistant.updatedAt.toISOString(),
        versions: [expect.objectContaining({ version: 1, model: "m", systemPrompt: null, parameters: {}, tools: [] })],
      },
    ]);
    expect(archive.documents).toEqual([expect.objectContaining({ title: "alice's notes", chunks: [{ position: 0, content: "private notes of alice" }] })]);
    expect(archive.queryHistory).toEqual([expect.objectContaining({ question: "what did alice ask?", answer: null, cacheHit: false })]);
    const [key] = await knex()("api_keys").where({ userId: alice.user.user.id });
    expect(archive.apiKeys).toEqual([{ id: key.id, name: key.name, prefix: key.prefix, role: key.role, createdAt: key.createdAt.toISOString(), lastUsedAt: key.lastUsedAt?.toISOString() ?? null, revokedAt: null }]);
    expect(text).not.toContain(alice.user.token);
    expect(text).not.toContain(key.keyHash);
  });

  it("holds nothing of anyone else's: Bob's conversations, Discord messages, feedback, usage, assistants, documents and questions are absent", () => {
    // Bob's conversation id appears once: where Alice's own visit to it lies; nothing else of it.
    expect(text.split(bob.own)).toHaveLength(2);
    const secrets = [bob.empty, "bob's private", "bob says hello", "an answer for bob", "bob in discord", "the bot answers", bob.feedbackId, "thanks from bob", bob.usageId];
    for (const secret of [...secrets, "bob-spend", "bob@example.test", "sub-bob", "bob's notes", "bob's helper", "what did bob ask?", "carol", carol.own, carol.usageId]) {
      expect(text).not.toContain(secret);
    }
  });

  it("is idempotent on requestId, refuses a second one while one is PENDING, and checks requestId", async () => {
    const again = (await app.ok(EXPORT, { r: "alice-export-1" }, alice.user.token)).exportMyData;
    expect(again).toEqual(ready);
    expect(await knex()("data_exports").where({ userId: alice.user.user.id }).pluck("id")).toEqual([ready.id]);

    // A PENDING export of Bob's, whose server is alive (a fresh heartbeat): a new request waits for it.
    const [pending] = await knex()("data_exports").insert({ userId: bob.user.user.id, status: "pending", attempts: 1, heartbeatAt: new Date() }).returning("id");
    try {
      const { body } = await app.gql(EXPORT, { r: "bob-new" }, bob.user.token);
      expect(body.errors?.[0]).toMatchObject({ extensions: { code: "CONFLICT", reason: "DATA_EXPORT_PENDING", dataExportId: pending.id } });
      expect(await knex()("data_exports").where({ userId: bob.user.user.id }).pluck("id")).toEqual([pending.id]);
    } finally {
      await knex()("data_exports").where({ id: pending.id }).delete();
    }
    expect(await app.errorCode(EXPORT, { r: "x".repeat(201) }, alice.user.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(EXPORT, { r: "" }, alice.user.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(EXPORT, {})).toBe("UNAUTHENTICATED");
  });

  it("is its user's alone: another member, an admin, an unknown id and no token get nothing", async () => {
    const outsider = await download(ready.id, bob.user.token);
    const unknown = await download(UNKNOWN_ID, bob.user.token);
    expect(outsider.status).toBe(404);
    expect(outsider.bytes.toString()).toBe(unknown.bytes.toString());
    expect(JSON.parse(outsider.bytes.toString())).toEqual({ errors: [{ message: "Data export not found", extensions: { code: "NOT_FOUND" } }] });
    expect((await download(ready.id, admin.token)).status).toBe(404);
    expect((await download("not-a-uuid", alice.user.token)).status).toBe(404);
    expect((await download(ready.id)).status).toBe(401);

    expect(await app.errorCode(GET_EXPORT, { id: ready.id }, bob.user.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(GET_EXPORT, { id: ready.id }, admin.token)).toBe("NOT_FOUND");
    const list = `{ myDataExports(first: 10) { totalCount edges { node { id } } } }`;
    expect((await app.ok(list, {}, alice.user.token)).myDataExports).toEqual({ totalCount: 1, edges: [{ node: { id: ready.id } }] });
    expect((await app.ok(list, {}, bob.user.token)).myDataExports).toEqual({ totalCount: 0, edges: [] });
    expect(await app.errorCode(`mutation($id: UUID!) { deleteDataExport(id: $id) }`, { id: ready.id }, bob.user.token)).toBe("NOT_FOUND");
    expect((await download(ready.id, alice.user.token)).status).toBe(200);
  });

  it("answers 409 while an export is not READY", async () => {
    const [failed] = await knex()("data_exports")
      .insert({ userId: alice.user.user.id, status: "failed", attempts: 1, error: "The export failed unexpectedly", completedAt: new Date() })
      .returning("id");
    const got = await download(failed.id, alice.user.token);
    expect(got.status).toBe(409);
    expect(JSON.parse(got.bytes.toString()).errors[0].extensions).toEqual({ code: "CONFLICT", reason: "DATA_EXPORT_NOT_READY" });
    expect((await app.ok(GET_EXPORT, { id: failed.id }, alice.user.token)).dataExport).toMatchObject({ status: "FAILED", downloadPath: null, counts: null });
    await knex()("data_exports").where({ id: failed.id }).delete();
  });

  it("is audited as data_export.create", async () => {
    const entry = await knex()("audit_logs").where({ action: "data_export.create", targetId: ready.id }).first();
    expect(entry).toMatchObject({ actorId: alice.user.user.id, targetType: "data_export" });
  });

  it("deleteDataExport removes the row and the file", async () => {
    const extra = await exportOf(carol.user);
    expect(extra.status).toBe("READY");
    const [key] = await storageKeys("data_exports", { id: extra.id });
    expect(filesBelow(dir)).toContain(key);
    expect((await app.ok(`mutation($id: UUID!) { deleteDataExport(id: $id) }`, { id: extra.id }, carol.user.token)).deleteDataExport).toBe(true);
    expect(filesBelow(dir)).not.toContain(key);
    expect(await knex()("data_exports").where({ id: extra.id }).first()).toBeUndefined();
    expect(await app.errorCode(GET_EXPORT, { id: extra.id }, carol.user.token)).toBe("NOT_FOUND");
  });
});

describe("export jobs", () => {
  it("takes over a data export whose server died (the transcripts' sweep), and gives one up after three runs", async () => {
    const db = knex();
    const stale = db.raw("now() - interval '1 hour'");
    const [orphan] = await db("data_exports").insert({ userId: bob.user.user.id, status: "pending", attempts: 1, heartbeatAt: stale }).returning("id");
    const loser = await app.makeUser(Role.MEMBER, "interrupted");
    const [hopeless] = await db("data_exports").insert({ userId: loser.user.id, status: "pending", attempts: 3, heartbeatAt: stale }).returning("id");
    expect(await app.server.transcripts.sweep()).toBeGreaterThanOrEqual(2);
    const done = await settledExport(bob.user, orphan.id);
    expect(done).toMatchObject({ status: "READY", counts: { conversations: 2 } });
    expect(await db("data_exports").where({ id: orphan.id }).first("attempts", "storageKey")).toEqual({
      attempts: 2,
      storageKey: `exports/${bob.user.user.id}/${orphan.id}-2.json`,
    });
    expect(sha256((await download(orphan.id, bob.user.token)).bytes)).toBe(done.sha256);
    expect(await settledExport(loser, hopeless.id)).toMatchObject({ status: "FAILED", error: "The export was interrupted 3 times", downloadPath: null });
    // Bob's archive is his to delete; the bystander checks below compare his data, not his exports.
    await app.ok(`mutation($id: UUID!) { deleteDataExport(id: $id) }`, { id: orphan.id }, bob.user.token);
  });
});

describe("deleteUser refuses bad input with a clear error and changes nothing", () => {
  const everything = async () => ({
    alice: await footprint(alice.user.user.id),
    users: await knex()("users").orderBy("id").select("id", "isActive", "displayName"),
    audit: await knex()("audit_logs").whereIn("action", ["user.delete", "user.anonymize"]).count("* as n"),
  });

  it.each([
    ["a member", () => bob.user.token, () => alice.user.user.id, "DELETE", "FORBIDDEN"],
    ["a service", () => worker.token, () => alice.user.user.id, "ANONYMIZE", "FORBIDDEN"],
    ["an admin on themselves", () => admin.token, () => admin.user.id, "DELETE", "FORBIDDEN"],
    ["an unknown id", () => admin.token, () => UNKNOWN_ID, "DELETE", "NOT_FOUND"],
    ["a malformed id", () => admin.token, () => "not-a-uuid", "DELETE", "BAD_USER_INPUT"],
    ["an unknown mode", () => admin.token, () => alice.user.user.id, "PURGE", "BAD_USER_INPUT"],
    ["no token", () => undefined, () => alice.user.user.id, "DELETE", "UNAUTHENTICATED"],
  ])("%s", async (_case, token, id, mode, code) => {
    const before = await everything();
    const { body } = await app.gql(DELETE_USER, { id: id(), mode }, token());
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0].extensions?.code).toBe(code);
    expect(body.errors![0].message).toEqual(expect.any(String));
    expect(body.data ?? null).toBeNull();
    expect(await everything()).toEqual(before);
  });

  it("an unknown mode written into the document is a validation error", async () => {
    const { body } = await app.gql(`mutation($id: UUID!) { deleteUser(id: $id, mode: PURGE) { userId } }`, { id: alice.user.user.id }, admin.token);
    expect(body.errors?.[0].extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect((await knex()("users").where({ id: alice.user.user.id }).first()).displayName).toBe("alice");
  });

  it("the refusal messages say why", async () => {
    expect((await app.gql(DELETE_USER, { id: admin.user.id, mode: "DELETE" }, admin.token)).body.errors![0].message).toBe("Admins cannot delete or anonymize themselves");
    expect((await app.gql(DELETE_USER, { id: UNKNOWN_ID, mode: "DELETE" }, admin.token)).body.errors![0].message).toBe("User not found");
    expect((await app.gql(DELETE_USER, { id: alice.user.user.id, mode: "DELETE" }, bob.user.token)).body.errors![0].message).toBe("User management is for admins");
  });
});

/** Common checks of a deleted or anonymized member's content (everything but their user row and ledger). */
async function expectContentGone(cast: Cast, files: { before: string[]; gone: string[] }) {
  const db = knex();
  const id = cast.user.user.id;
  expect(await db("conversations").whereIn("id", [cast.own, cast.empty]).first()).toBeUndefined();
  expect(await db("messages").whereIn("conversationId", [cast.own, cast.empty]).first()).toBeUndefined();
  expect(await db("feedback").where({ userId: id }).first()).toBeUndefined();
  expect(await db("transcripts").where({ conversationId: cast.own }).first()).toBeUndefined();
  expect(await db("artifacts").where({ conversationId: cast.own }).first()).toBeUndefined();
  expect(await db("data_exports").where({ userId: id }).first()).toBeUndefined();
  expect(await db("assistants").where({ ownerId: id }).first()).toBeUndefined();
  expect(await db("knowledge_bases").where({ userId: id }).first()).toBeUndefined();
  expect(await db("documents").where({ title: `${cast.name}'s notes` }).first()).toBeUndefined();
  expect(await db("query_history").where({ userId: id }).first()).toBeUndefined();
  // Their words in the shared conversation: emptied in place, the seq order of the channel untouched.
  const erased = await db("messages").where({ id: cast.discordMessageId }).first();
  expect(erased).toMatchObject({ content: "", encryptedContent: null, keyId: null, toolCalls: null, metadata: { erasedAt: expect.any(String) } });
  const seqs = (await db("messages").where({ conversationId: discordConversation }).orderBy("seq").pluck("seq")) as number[];
  expect(seqs).toEqual(seqs.map((_seq, i) => i + 1));
  // The bot's reply to them stays: it is the channel's content.
  expect(await db("messages").where({ id: cast.botReplyId }).first()).toMatchObject({ content: null, encryptedContent: expect.anything(), authorId: relay.user.id });
  // Their files are gone from the storage, nobody else's.
  const after = filesBelow(dir);
  for (const file of files.gone) expect(after).not.toContain(file);
  expect(after).toEqual(files.before.filter((file) => !files.gone.includes(file)));
}

/** The user's inbox subscription, once the server runs its stream. */
async function openInbox(token: string): Promise<RawSubscription> {
  const streams = app.server.live.size;
  const inbox = await RawSubscription.open(app.url, token, `subscription { conversationsChanged { conversationId } }`, {});
  for (let i = 0; i < 1000 && app.server.live.size <= streams; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return inbox;
}

describe("deleteUser ANONYMIZE", () => {
  let result: any;
  let bobBefore: Awaited<ReturnType<typeof footprint>>;
  let filesBefore: string[];
  let gone: string[];
  let discordTranscript: string;
  let inbox: RawSubscription;

  beforeAll(async () => {
    await exportOf(alice.user, "before-anonymize"); // a second archive of hers, on disk
    // An admin's transcript of the Discord channel holds Alice's words: it goes too.
    discordTranscript = (await app.ok(`mutation($c: UUID!) { createTranscript(input: { conversationId: $c, format: CSV }) { id status } }`, { c: discordConversation }, admin.token)).createTranscript.id;
    gone = [
      ...(await storageKeys("transcripts", { conversationId: alice.own })),
      ...(await storageKeys("transcripts", { id: discordTranscript })),
      // Bob's transcript of his own conversation holds Alice's visit: the file holds her words, so it goes too.
      ...(await storageKeys("transcripts", { id: bob.transcriptId })),
      ...(await storageKeys("artifacts", { conversationId: alice.own })),
      ...(await storageKeys("data_exports", { userId: alice.user.user.id })),
    ];
    expect(gone).toHaveLength(6);
    filesBefore = filesBelow(dir);
    for (const file of gone) expect(filesBefore).toContain(file);
    bobBefore = await footprint(bob.user.user.id, [alice.own]);
    // An open subscription of Alice's: her inbox, which nothing but the access change ends.
    inbox = await openInbox(alice.user.token);
    expect(inbox.ended).toBeUndefined();
    result = (await app.ok(DELETE_USER, { id: alice.user.user.id, mode: "ANONYMIZE" }, admin.token)).deleteUser;
  });
  afterAll(() => inbox?.socket.close());

  it("answers what it did", () => {
    expect(result).toEqual({
      userId: alice.user.user.id,
      mode: "ANONYMIZE",
      user: { id: alice.user.user.id, displayName: "Deleted user", isActive: false, role: "MEMBER", email: null, externalId: null, discordId: null, preferences: {} },
      conversations: 2,
      messages: 3,
      erasedMessages: 2,
      feedback: 1,
      transcripts: 3,
      artifacts: 1,
      dataExports: 2,
      apiKeys: 1,
      serviceGrants: 0,
      assistants: 1,
      documents: 1,
      queryHistory: 1,
      files: 6,
      usageRecordsKept: 2, // her spend and the ledger row of the worker's reply to her
    });
  });

  it("keeps a tombstone user holding the usage ledger, roll-ups and budget", async () => {
    const id = alice.user.user.id;
    expect(await knex()("users").where({ id }).first()).toMatchObject({
      displayName: "Deleted user",
      role: "member",
      email: null,
      externalId: null,
      discordId: null,
      preferences: {},
      isActive: false,
    });
    expect(await knex()("ai_requests").where({ id: alice.usageId }).first()).toMatchObject({ userId: id, requestId: "alice-spend" });
    expect(Number((await knex()("cost_tracking").where({ userId: id }).count("* as n"))[0].n)).toBeGreaterThan(0);
    expect(await knex()("user_budgets").where({ userId: id }).first()).toBeDefined();
    expect(await knex()("user_activity").where({ userId: id }).first()).toBeUndefined();
    expect(await knex()("api_keys").where({ userId: id }).whereNull("revokedAt").first()).toBeUndefined();
  });

  it("removes her content, the transcripts holding her words, and their files", async () => {
    await expectContentGone(alice, { before: filesBefore, gone });
    expect(await knex()("transcripts").whereIn("id", [discordTranscript, bob.transcriptId]).first()).toBeUndefined();
  });

  it("empties her message in Bob's conversation in place: his conversation keeps its seq order and his own messages", async () => {
    const rows = await knex()("messages").where({ conversationId: bob.own }).orderBy("seq");
    expect(rows.map((row) => [row.seq, row.authorId, row.content === null ? "encrypted" : row.content])).toEqual([
      [1, bob.user.user.id, "encrypted"],
      [2, worker.user.id, "encrypted"],
      [3, alice.user.user.id, ""],
    ]);
    expect(rows[2].metadata).toEqual({ erasedAt: expect.any(String) });
    const { conversation } = await app.ok(`query($id: UUID!) { conversation(id: $id) { messageCount messages(first: 10) { edges { node { content } } } } }`, { id: bob.own }, bob.user.token);
    expect(conversation).toEqual({ messageCount: 3, messages: { edges: [{ node: { content: "bob says hello" } }, { node: { content: "an answer for bob" } }, { node: { content: "" } }] } });
  });

  it("stops her key at once (401 UNAUTHENTICATED) and ends her open subscription", async () => {
    const { status, body } = await app.gql(`{ viewer { id } }`, {}, alice.user.token);
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    await inbox.until((sub) => sub.ended !== undefined);
    expect(inbox.ended).toBe("closed 4403");
  });

  it("writes one audit entry user.anonymize with the counts, by the admin", async () => {
    const entries = await knex()("audit_logs").where({ action: "user.anonymize", targetId: alice.user.user.id });
    expect(entries).toHaveLength(1);
    const { userId: _userId, mode: _mode, user: _user, ...counts } = result;
    expect(entries[0]).toMatchObject({ actorId: admin.user.id, targetType: "user", details: counts });
  });

  it("leaves Bob untouched: his conversations, messages, feedback, usage, transcripts and keys", async () => {
    expect(await footprint(bob.user.user.id, [alice.own])).toEqual(bobBefore);
    expect((await app.ok(`{ viewer { id } }`, {}, bob.user.token)).viewer.id).toBe(bob.user.user.id);
    // Bob's Discord message is as he wrote it.
    const mine = await knex()("messages").where({ conversationId: discordConversation, authorId: bob.user.user.id }).first();
    expect(mine.encryptedContent).not.toBeNull();
  });
});

describe("deleteUser DELETE", () => {
  let result: any;
  let bobBefore: Awaited<ReturnType<typeof footprint>>;
  let filesBefore: string[];
  let gone: string[];
  let stream: RawSubscription;

  beforeAll(async () => {
    const exported = await exportOf(carol.user);
    expect(exported.status).toBe("READY");
    gone = [
      ...(await storageKeys("transcripts", { conversationId: carol.own })),
      ...(await storageKeys("artifacts", { conversationId: carol.own })),
      ...(await storageKeys("data_exports", { userId: carol.user.user.id })),
    ];
    expect(gone).toHaveLength(3);
    filesBefore = filesBelow(dir);
    bobBefore = await footprint(bob.user.user.id, [carol.own]);
    stream = await openInbox(carol.user.token);
    result = (await app.ok(DELETE_USER, { id: carol.user.user.id, mode: "DELETE" }, admin.token)).deleteUser;
  });
  afterAll(() => stream?.socket.close());

  it("answers what it did", () => {
    expect(result).toMatchObject({
      userId: carol.user.user.id,
      mode: "DELETE",
      user: null,
      conversations: 2,
      messages: 3,
      erasedMessages: 1,
      feedback: 1,
      transcripts: 1,
      artifacts: 1,
      dataExports: 1,
      apiKeys: 1,
      assistants: 1,
      documents: 1,
      queryHistory: 1,
      files: 3,
      usageRecordsKept: 2,
    });
  });

  it("removes the user row with their content and files; the ledger keeps the spend without a user", async () => {
    const id = carol.user.user.id;
    expect(await knex()("users").where({ id }).first()).toBeUndefined();
    await expectContentGone(carol, { before: filesBefore, gone });
    expect(await knex()("ai_requests").where({ id: carol.usageId }).first()).toMatchObject({ userId: null, requestId: "carol-spend" });
    expect(await knex()("cost_tracking").where({ userId: id }).first()).toBeUndefined();
    expect(await knex()("user_budgets").where({ userId: id }).first()).toBeUndefined();
    expect(await knex()("api_keys").where({ userId: id }).first()).toBeUndefined();
    // Her erased Discord message stays in its place, without an author.
    expect(await knex()("messages").where({ id: carol.discordMessageId }).first()).toMatchObject({ authorId: null, content: "" });
  });

  it("stops her key and her open subscription, and writes user.delete to the audit log", async () => {
    const { status, body } = await app.gql(`{ viewer { id } }`, {}, carol.user.token);
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    await stream.until((sub) => sub.ended !== undefined);
    expect(stream.ended).toBe("closed 4403");
    const entries = await knex()("audit_logs").where({ action: "user.delete", targetId: carol.user.user.id });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actorId: admin.user.id, details: { conversations: 2, erasedMessages: 1, files: 3 } });
  });

  it("leaves Bob untouched, and a second DELETE is NOT_FOUND", async () => {
    expect(await footprint(bob.user.user.id, [carol.own])).toEqual(bobBefore);
    expect(await app.errorCode(DELETE_USER, { id: carol.user.user.id, mode: "DELETE" }, admin.token)).toBe("NOT_FOUND");
  });

  it("Bob's archive afterwards still holds all of his data and none of theirs", async () => {
    const ready = await exportOf(bob.user);
    const archive = JSON.parse((await download(ready.id, bob.user.token)).bytes.toString());
    expect(archive.conversations.map((c: any) => c.id)).toEqual([bob.own, bob.empty]);
    // His visits to Alice and Carol went with their conversations; Alice's visit to him is emptied.
    expect(archive.messagesElsewhere.map((m: any) => m.content)).toEqual(["bob in discord"]);
    expect(archive.conversations[0].messages.map((m: any) => m.content)).toEqual(["bob says hello", "an answer for bob", ""]);
    expect(archive.counts).toEqual({ conversations: 2, messages: 3, messagesElsewhere: 1, feedback: 1, usage: 2, assistants: 1, documents: 1, queryHistory: 1, apiKeys: 1 });
    expect(JSON.stringify(archive)).not.toMatch(/alice|carol/);
  });
});

describe("on S3", () => {
  let s3: TestS3;
  let s3app: TestApp;

  beforeAll(async () => {
    s3 = await startS3();
    s3app = await createTestApp(s3Env(s3.endpoint));
  });
  afterAll(async () => {
    await s3app?.dispose();
    await s3?.dispose();
  });

  it("writes the archive as an object, serves it, and deleteUser removes it", async () => {
    const dana = await s3app.makeUser(Role.MEMBER, "dana");
    const boss = await s3app.makeUser(Role.ADMIN, "boss");
    const conversation = (await s3app.ok(`mutation { createConversation(input: { title: "on s3" }) { id } }`, {}, dana.token)).createConversation.id;
    await s3app.ok(ADD, { input: { conversationId: conversation, content: "stored in a bucket" } }, dana.token);
    let created = (await s3app.ok<{ exportMyData: ExportData }>(EXPORT, {}, dana.token)).exportMyData;
    for (let i = 0; i < 1200 && created.status === "PENDING"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      created = (await s3app.ok<{ dataExport: ExportData }>(GET_EXPORT, { id: created.id }, dana.token)).dataExport;
    }
    expect(created.status).toBe("READY");
    expect(await s3.objectKeys("exports/")).toEqual([`exports/${dana.user.id}/${created.id}-1.json`]);
    const got = await download(created.id, dana.token, s3app);
    expect(got.status).toBe(200);
    expect(sha256(got.bytes)).toBe(created.sha256);
    expect(JSON.parse(got.bytes.toString()).conversations[0].messages[0].content).toBe("stored in a bucket");

    const { deleteUser } = await s3app.ok(DELETE_USER, { id: dana.user.id, mode: "DELETE" }, boss.token);
    expect(deleteUser).toMatchObject({ dataExports: 1, files: 1 });
    expect(await s3.objectKeys("exports/")).toEqual([]);
  });
});
