/**
 * Encryption at rest, checked through the HTTP endpoint and in the raw table underneath: no plaintext is
 * stored with a key ring, ciphertext is bound to its row, tampering is an error rather than garbage, and
 * key rotation (`reencrypt`, as a function and as the CLI in a child process) moves every message to the
 * new key without losing concurrent writes.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Knex } from "knex";
import { loadConfig, type EncryptionConfig, type Env } from "../../src/config";
import { createDatabase } from "../../src/db/database";
import { encryptContent, messageText } from "../../src/modules/message/encryption";
import { readBatch, reencryptMessages, writeBatch, type ReencryptProgress } from "../../src/modules/message/reencrypt";
import { Role } from "../../src/modules/user/role.enum";
import { seed } from "../../seeds/01_demo";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { createTestDatabase, testConfig, testDbKind, type TestDatabase } from "../helpers/db";
import { parleyCli } from "../helpers/cli";

const KEY1 = randomBytes(32).toString("base64");
const KEY2 = randomBytes(32).toString("base64");
/** Before rotation: one key. During: both, the new one current. After: only the new one. */
const RING1 = { MESSAGE_ENCRYPTION_KEYS: `k1:${KEY1}` };
const RING12 = { MESSAGE_ENCRYPTION_KEYS: `k1:${KEY1},k2:${KEY2}`, MESSAGE_ENCRYPTION_CURRENT_KEY: "k2" };
const RING2 = { MESSAGE_ENCRYPTION_KEYS: `k2:${KEY2}` };
const ringOf = (env: Env): EncryptionConfig => loadConfig(env).encryption!;

const CREATE_CONVERSATION = `mutation($input: CreateConversationInput!) { createConversation(input: $input) { id } }`;
const ADD_MESSAGE = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq content } }`;
const GET_MESSAGE = `query($id: UUID!) { message(id: $id) { id seq content } }`;
const HISTORY = `query($id: UUID!) {
  conversation(id: $id) { lastMessage { content } messages(first: 100) { edges { node { seq content } } } }
}`;
const DECRYPT_ERROR = "Message content could not be decrypted";

interface AddedMessage {
  id: string;
  seq: number;
  content: string;
}

async function newConversation(app: TestApp, user: TestUser): Promise<string> {
  const data = await app.ok<{ createConversation: { id: string } }>(CREATE_CONVERSATION, { input: { title: "secret chat" } }, user.token);
  return data.createConversation.id;
}

async function addMessage(app: TestApp, user: TestUser, conversationId: string, content: string, requestId?: string): Promise<AddedMessage> {
  const data = await app.ok<{ addMessage: AddedMessage }>(ADD_MESSAGE, { input: { conversationId, content, requestId } }, user.token);
  return data.addMessage;
}

async function history(app: TestApp, user: TestUser, conversationId: string): Promise<string[]> {
  const data = await app.ok(HISTORY, { id: conversationId }, user.token);
  return data.conversation.messages.edges.map((edge: { node: { content: string } }) => edge.node.content);
}

/** The stored row, as the database holds it (camelCase keys). */
async function storedRow(knex: Knex, id: string) {
  const row = await knex("messages").where({ id }).first();
  return { ...row, encryptedContent: row.encryptedContent == null ? null : Buffer.from(row.encryptedContent) };
}

async function setCiphertext(knex: Knex, id: string, encryptedContent: Buffer, keyId?: string): Promise<void> {
  await knex("messages").where({ id }).update({ content: null, encryptedContent, ...(keyId ? { keyId } : {}) });
}

/** Expects message(id) to fail with the decryption error, and nothing else (no text at all). */
async function expectUndecryptable(app: TestApp, user: TestUser, id: string): Promise<void> {
  const { body } = await app.gql(GET_MESSAGE, { id }, user.token);
  expect(body.data).toBeNull();
  expect(body.errors).toHaveLength(1);
  expect(body.errors![0]).toMatchObject({
    message: DECRYPT_ERROR,
    path: ["message", "content"],
    extensions: { code: "INTERNAL_SERVER_ERROR", reason: "CONTENT_UNDECRYPTABLE" },
  });
}

/** How many messages are on each key ("plain" for plain text). */
async function keyCounts(knex: Knex): Promise<Record<string, number>> {
  const rows: { keyId: string | null; n: number }[] = await knex("messages").select("keyId").count({ n: "*" }).groupBy("keyId");
  return Object.fromEntries(rows.map((row) => [row.keyId ?? "plain", Number(row.n)]));
}

describe("with a key ring", () => {
  let app: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    app = await createTestApp(RING1);
    alice = await app.makeUser(Role.MEMBER);
  });
  afterAll(() => app.dispose());

  it("stores only ciphertext (content NULL, current key) while the API returns the text", async () => {
    const text = "Meet me at the lighthouse at six — ünïcödé 🌅";
    const conversationId = await newConversation(app, alice);
    const added = await addMessage(app, alice, conversationId, text);
    const again = await addMessage(app, alice, conversationId, text);
    expect(added.content).toBe(text);

    const stored = await storedRow(app.database.db.knex, added.id);
    expect(stored.content).toBeNull();
    expect(stored.keyId).toBe("k1");
    const blob = stored.encryptedContent!;
    expect(blob[0]).toBe(1); // format version
    expect(blob.length).toBe(1 + 12 + 16 + Buffer.byteLength(text)); // version | iv | tag | ciphertext
    expect(blob.includes(Buffer.from(text))).toBe(false);
    expect(blob.includes(Buffer.from("lighthouse"))).toBe(false);
    // The same text twice gives different ciphertexts (a fresh iv per message).
    expect((await storedRow(app.database.db.knex, again.id)).encryptedContent!.equals(blob)).toBe(false);
    // Nowhere in the table, in either column.
    const { rows } = await app.database.db.knex.raw(
      "select count(*)::int as n from messages where content like '%lighthouse%' or position(convert_to('lighthouse', 'UTF8') in encrypted_content) > 0",
    );
    expect(rows[0].n).toBe(0);

    expect((await app.ok(GET_MESSAGE, { id: added.id }, alice.token)).message.content).toBe(text);
    expect(await history(app, alice, conversationId)).toEqual([text, text]);
    expect((await app.ok(HISTORY, { id: conversationId }, alice.token)).conversation.lastMessage.content).toBe(text);
  });

  it("keeps idempotent retries working: the same requestId returns the original, other content is CONFLICT", async () => {
    const conversationId = await newConversation(app, alice);
    const first = await addMessage(app, alice, conversationId, "order the blue one", "req-1");
    const retry = await addMessage(app, alice, conversationId, "order the blue one", "req-1");
    expect(retry).toEqual(first);
    const code = await app.errorCode(ADD_MESSAGE, { input: { conversationId, content: "order the red one", requestId: "req-1" } }, alice.token);
    expect(code).toBe("CONFLICT");
    expect(await history(app, alice, conversationId)).toEqual(["order the blue one"]);
    // The rejected duplicates used no seq: the next message follows the first without a gap.
    expect((await addMessage(app, alice, conversationId, "and a hat", "req-2")).seq).toBe(first.seq + 1);
  });

  it("answers a tampered ciphertext with an error, never garbage, and still reads the other messages", async () => {
    const knex = app.database.db.knex;
    const conversationId = await newConversation(app, alice);
    const first = await addMessage(app, alice, conversationId, "first");
    const second = await addMessage(app, alice, conversationId, "second");
    const original = (await storedRow(knex, second.id)).encryptedContent!;
    // One flipped bit in the version byte, the iv, the tag, and the first and last ciphertext bytes.
    for (const offset of [0, 1, 13, 29, original.length - 1]) {
      const tampered = Buffer.from(original);
      tampered[offset] ^= 0x01;
      await setCiphertext(knex, second.id, tampered);
      await expectUndecryptable(app, alice, second.id);
      expect((await app.ok(GET_MESSAGE, { id: first.id }, alice.token)).message.content).toBe("first");
    }
    // The rest of the history (everything but the text) stays readable.
    const seqs = await app.ok(`query($id: UUID!) { conversation(id: $id) { messages { edges { node { seq } } } } }`, { id: conversationId }, alice.token);
    expect(seqs.conversation.messages.edges.map((e: { node: { seq: number } }) => e.node.seq)).toEqual([1, 2]);

    await setCiphertext(knex, second.id, original);
    expect((await app.ok(GET_MESSAGE, { id: second.id }, alice.token)).message.content).toBe("second");
  });

  it("binds a ciphertext to its row: copied onto another seq or another conversation it does not decrypt", async () => {
    const knex = app.database.db.knex;
    const one = await newConversation(app, alice);
    const other = await newConversation(app, alice);
    const alpha = await addMessage(app, alice, one, "alpha");
    const bravo = await addMessage(app, alice, one, "bravo");
    const xray = await addMessage(app, alice, other, "x-ray"); // seq 1, like alpha
    const alphaCiphertext = (await storedRow(knex, alpha.id)).encryptedContent!;

    await setCiphertext(knex, bravo.id, alphaCiphertext);
    await setCiphertext(knex, xray.id, alphaCiphertext);
    await expectUndecryptable(app, alice, bravo.id);
    await expectUndecryptable(app, alice, xray.id);
    expect((await app.ok(GET_MESSAGE, { id: alpha.id }, alice.token)).message.content).toBe("alpha");
  });

  it("answers a key id missing from the ring with the error", async () => {
    const conversationId = await newConversation(app, alice);
    const message = await addMessage(app, alice, conversationId, "from a retired key");
    await app.database.db.knex("messages").where({ id: message.id }).update({ keyId: "retired" });
    await expectUndecryptable(app, alice, message.id);
  });

  it("encrypts the demo seed too", async () => {
    const lines: string[] = [];
    const spy = jest.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    try {
      await seed(app.database.db.knex, ringOf(RING1));
    } finally {
      spy.mockRestore();
    }
    const stored = await app.database.db.knex("messages").where({ conversationId: "00000000-0000-4000-8000-000000000c01" });
    expect(stored).toHaveLength(5);
    for (const row of stored) expect(row).toMatchObject({ content: null, keyId: "k1" });
    const data = await app.ok(`{ conversations { edges { node { lastMessage { content } } } } }`, {}, lines[lines.length - 1]);
    expect(data.conversations.edges[0].node.lastMessage.content).toMatch(/^Lisbon looks sunny/);
  });
});

describe("without a key ring", () => {
  let app: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    app = await createTestApp();
    alice = await app.makeUser(Role.MEMBER);
  });
  afterAll(() => app.dispose());

  it("stores plain text", async () => {
    const conversationId = await newConversation(app, alice);
    const message = await addMessage(app, alice, conversationId, "plain as day");
    expect(message.content).toBe("plain as day");
    expect(await storedRow(app.database.db.knex, message.id)).toMatchObject({ content: "plain as day", encryptedContent: null, keyId: null });
  });

  it("answers encrypted content with the error rather than anything else", async () => {
    const conversationId = await newConversation(app, alice);
    const message = await addMessage(app, alice, conversationId, "soon encrypted");
    const { encryptedContent, keyId } = encryptContent(ringOf(RING1), conversationId, message.seq, "soon encrypted");
    await setCiphertext(app.database.db.knex, message.id, encryptedContent, keyId);
    await expectUndecryptable(app, alice, message.id);
  });
});

describe("key rotation", () => {
  // One database, and a server for each stage of a rotation, as a fleet being restarted would have.
  let database: TestDatabase;
  let plain: TestApp;
  let before: TestApp;
  let during: TestApp;
  let after: TestApp;
  let alice: TestUser;
  let knex: Knex;
  const ring = ringOf(RING12);

  beforeAll(async () => {
    database = await createTestDatabase();
    knex = database.db.knex;
    [plain, before, during, after] = await Promise.all([{}, RING1, RING12, RING2].map((env) => createTestApp(env, database)));
    alice = await plain.makeUser(Role.MEMBER);
  });
  afterAll(async () => {
    await Promise.all([plain, before, during, after].map((app) => app.dispose()));
    await database.dispose();
  });

  it("moves plain and old-key messages to the new key, resumably, without losing concurrent writes", async () => {
    const conversationId = await newConversation(plain, alice);
    const texts: string[] = [];
    const write = async (app: TestApp, text: string) => {
      await addMessage(app, alice, conversationId, text);
      texts.push(text);
    };
    for (const text of ["plain 1", "plain 2", "plain 3"]) await write(plain, text);
    for (const text of ["k1 1", "k1 2", "k1 3"]) await write(before, text);
    await write(during, "k2 1");
    expect(await keyCounts(knex)).toEqual({ plain: 3, k1: 3, k2: 1 });
    expect(await history(during, alice, conversationId)).toEqual(texts); // old messages stay readable

    // An interrupted run: the progress callback throws after the first batch.
    const firstRun: ReencryptProgress[] = [];
    const interrupted = reencryptMessages(knex, ring, {
      batchSize: 2,
      onProgress: (progress) => {
        firstRun.push(progress);
        throw new Error("interrupted");
      },
    });
    await expect(interrupted).rejects.toThrow("interrupted");
    expect(firstRun).toEqual([{ total: 6, done: 2, reencrypted: 2, skipped: 0, failed: 0 }]);
    expect((await keyCounts(knex)).k2).toBe(3);

    // Resumed; meanwhile a server still on the old ring and one on the new ring each write a message.
    const secondRun: ReencryptProgress[] = [];
    const resumed = await reencryptMessages(knex, ring, {
      batchSize: 2,
      onProgress: async (progress) => {
        if (secondRun.push(progress) === 1) await Promise.all([write(before, "k1 written meanwhile"), write(during, "k2 written meanwhile")]);
      },
    });
    expect(secondRun[0]).toMatchObject({ total: 4, done: 2, reencrypted: 2 });
    // The old-ring write is re-encrypted by this run if its (random) id sorts after the run's position,
    // else it is reported as remaining; either way it is accounted for and a further run moves it.
    expect(resumed).toMatchObject({ keyId: "k2", skipped: 0, failed: 0 });
    expect(resumed.reencrypted + resumed.remaining).toBe(5);
    expect(resumed.remaining).toBe(Object.entries(await keyCounts(knex)).reduce((n, [key, count]) => n + (key === "k2" ? 0 : count), 0));
    const third = await reencryptMessages(knex, ring, { batchSize: 2 });
    expect(third).toMatchObject({ total: resumed.remaining, reencrypted: resumed.remaining, remaining: 0 });

    expect(await keyCounts(knex)).toEqual({ k2: 9 });
    // A server that has only the new key reads everything, the concurrent writes included.
    expect(await history(after, alice, conversationId)).toEqual(texts);
    expect(texts).toHaveLength(9);
    // Nothing left to do: a re-run reads nothing.
    expect(await reencryptMessages(knex, ring)).toMatchObject({ total: 0, done: 0, remaining: 0 });
  });

  it("skips, never overwrites, a row that changed between the read and the write of a batch", async () => {
    const conversationId = await newConversation(before, alice);
    const a = await addMessage(before, alice, conversationId, "guard a");
    const b = await addMessage(before, alice, conversationId, "guard b");
    const rows = (await readBatch(knex, "k2", undefined, 1000)).filter((row) => row.conversationId === conversationId);
    expect(rows.map((row) => row.id).sort()).toEqual([a.id, b.id].sort());

    // Concurrently: a rewritten with the same (old) key, b moved to the new key with other text.
    const rewrite = (ringEnv: Env, message: AddedMessage, text: string) => {
      const { encryptedContent, keyId } = encryptContent(ringOf(ringEnv), conversationId, message.seq, text);
      return setCiphertext(knex, message.id, encryptedContent, keyId);
    };
    await rewrite(RING1, a, "guard a (edited)");
    await rewrite(RING12, b, "guard b (edited)");

    expect(await writeBatch(knex, ring, rows)).toEqual({ written: 0, failedIds: [] });
    expect(await history(during, alice, conversationId)).toEqual(["guard a (edited)", "guard b (edited)"]);
    // The next run picks up a (still on k1) with its new text.
    expect(await reencryptMessages(knex, ring)).toMatchObject({ total: 1, reencrypted: 1, remaining: 0 });
    expect(await history(after, alice, conversationId)).toEqual(["guard a (edited)", "guard b (edited)"]);
  });

  it("moves the chunks of a reply still streaming too, so it completes on a ring without the old key", async () => {
    const admin = await before.makeUser(Role.ADMIN); // assistant replies come from services or admins
    const conversationId = await newConversation(before, admin);
    const START = `mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`;
    const APPEND = `mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`;
    const { id } = (await before.ok(START, { c: conversationId }, admin.token)).startMessage;
    await before.ok(APPEND, { m: id, i: 0, t: "streamed " }, admin.token);
    await before.ok(APPEND, { m: id, i: 1, t: "on k1, " }, admin.token);
    await during.ok(APPEND, { m: id, i: 2, t: "then k2" }, admin.token);
    const chunkKeys = async () => (await knex("message_chunks").where({ messageId: id }).orderBy("idx")).map((row) => row.keyId);
    expect(await chunkKeys()).toEqual(["k1", "k1", "k2"]);

    expect((await storedRow(knex, id)).keyId).toBe("k1");
    // The (empty) message row and the two chunks on k1; the chunk written on k2 is not even read.
    expect(await reencryptMessages(knex, ring, { batchSize: 1 })).toMatchObject({ total: 3, reencrypted: 3, failed: 0, remaining: 0 });
    expect(await chunkKeys()).toEqual(["k2", "k2", "k2"]);
    const COMPLETE = `mutation($m: UUID!) { completeMessage(messageId: $m) { content status } }`;
    expect((await after.ok(COMPLETE, { m: id }, admin.token)).completeMessage).toEqual({ content: "streamed on k1, then k2", status: "COMPLETE" });
    expect(await history(after, admin, conversationId)).toEqual(["streamed on k1, then k2"]);
  });

  it("reports undecryptable messages and leaves them as they are", async () => {
    const conversationId = await newConversation(before, alice);
    const message = await addMessage(before, alice, conversationId, "about to be damaged");
    const stored = (await storedRow(knex, message.id)).encryptedContent!;
    stored[stored.length - 1] ^= 0x01;
    await setCiphertext(knex, message.id, stored);
    expect(await reencryptMessages(knex, ring)).toMatchObject({ total: 1, reencrypted: 0, failed: 1, failedIds: [message.id], remaining: 1 });
    expect((await storedRow(knex, message.id)).encryptedContent).toEqual(stored);
    await knex("messages").where({ id: message.id }).delete(); // not to disturb later runs
  });
});

describe("npm run cli -- reencrypt", () => {
  // The CLI in a child process, on a PGlite folder (which it locks, so the test closes it first) or on a
  // PostgreSQL database that this process keeps open meanwhile, as a running server would.
  let target: { env: Record<string, string>; database: TestDatabase; dir?: string };
  const texts = ["plain one", "plain two", "k1 one", "k1 two"];

  const openTarget = () => {
    const config = testConfig(target.env.DATABASE_URL, target.env);
    const db = createDatabase(config);
    return { db, config, dispose: () => db.close() };
  };

  beforeAll(async () => {
    if (testDbKind() === "postgres") {
      const database = await createTestDatabase();
      target = { env: { DATABASE_URL: database.url! }, database };
    } else {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-reencrypt-"));
      target = { env: { PGLITE_DIR: dir }, dir, database: undefined as unknown as TestDatabase };
      target.database = openTarget();
      await target.database.db.migrate();
    }
    const plain = await createTestApp({}, target.database);
    const before = await createTestApp(RING1, target.database);
    const alice = await plain.makeUser(Role.MEMBER);
    const conversationId = await newConversation(plain, alice);
    for (const [index, text] of texts.entries()) await addMessage(index < 2 ? plain : before, alice, conversationId, text);
    await Promise.all([plain.dispose(), before.dispose()]);
    if (target.dir) await target.database.dispose(); // release the folder for the child process
  });
  afterAll(async () => {
    await target.database.dispose();
    if (target.dir) fs.rmSync(target.dir, { recursive: true, force: true });
  });

  /** Runs `check` on the target database (reopening the PGlite folder for it). */
  async function inTarget<T>(check: (knex: Knex) => Promise<T>): Promise<T> {
    const database = target.dir ? openTarget() : target.database;
    try {
      return await check(database.db.knex);
    } finally {
      if (target.dir) await database.dispose();
    }
  }

  it("refuses without a key ring, and rejects a bad --batch", async () => {
    const refused = await parleyCli(["reencrypt"], target.env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("reencrypt needs a key ring: set MESSAGE_ENCRYPTION_KEYS");
    const badBatch = await parleyCli(["reencrypt", "--batch", "0"], { ...target.env, ...RING12 });
    expect(badBatch.code).not.toBe(0);
    expect(badBatch.stderr).toContain("--batch must be an integer from 1 to 10000");
    expect(await inTarget(keyCounts)).toEqual({ plain: 2, k1: 2 });
  });

  it("moves every message to the current key with progress lines on a non-terminal stderr, and re-runs as a no-op", async () => {
    const result = await parleyCli(["reencrypt", "--batch", "3"], { ...target.env, ...RING12 });
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain('Re-encrypted 4 messages to key "k2" (0 skipped as changed meanwhile, 0 undecryptable); 0 messages are not on that key.');
    expect(result.stderr).toContain("reencrypt: 4/4 messages (100%)");
    const stored = await inTarget((knex) => knex("messages").orderBy("seq"));
    expect(stored.map((row) => row.keyId)).toEqual(["k2", "k2", "k2", "k2"]);
    expect(stored.map((row) => messageText(ringOf(RING2), row))).toEqual(texts);

    const again = await parleyCli(["reencrypt"], { ...target.env, ...RING12 });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Re-encrypted 0 messages to key "k2"');
  });
});
