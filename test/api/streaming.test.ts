/**
 * Streamed replies: startMessage, appendMessageChunk (idempotent per index, in order), completeMessage and
 * failMessage; the text so far is readable (and durable) while streaming; chunks are stored encrypted with a
 * key ring; only the writer may stream into a message.
 */
import { randomBytes } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { failStaleStreams } from "../../src/modules/message/stream.service";

const START = `mutation($c: UUID!, $r: String, $actAs: UUID) {
  startMessage(input: { conversationId: $c, requestId: $r, actAs: $actAs, model: "m1" }) { id seq role status content chunkCount }
}`;
const APPEND = `mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { messageId index text } }`;
const COMPLETE = `mutation($m: UUID!) {
  completeMessage(messageId: $m, usage: { promptTokens: 10, completionTokens: 3, costUsd: 0.5, latencyMs: 900 }) {
    id status content chunkCount promptTokens completionTokens costUsd latencyMs
  }
}`;
const FAIL = `mutation($m: UUID!, $e: String!) { failMessage(messageId: $m, error: $e) { id status content metadata } }`;
const READ = `query($m: UUID!) { message(id: $m) { status content chunkCount } }`;

function suite(name: string, env: Record<string, string>) {
  describe(name, () => {
    let app: TestApp;
    let owner: TestUser;
    let worker: TestUser;
    let conversationId: string;

    beforeAll(async () => {
      app = await createTestApp(env);
      owner = await app.makeUser(Role.MEMBER, "owner");
      worker = await app.makeUser(Role.SERVICE, "worker");
      const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "stream" }) { id } }`, {}, owner.token);
      conversationId = createConversation.id;
      await app.grant(worker, { conversationId });
    });
    afterAll(() => app.dispose());

    async function start(requestId?: string) {
      return (await app.ok(START, { c: conversationId, r: requestId }, worker.token)).startMessage;
    }
    const append = (messageId: string, index: number, text: string, token = worker.token) => app.gql(APPEND, { m: messageId, i: index, t: text }, token);

    it("streams a reply: empty STREAMING message, text so far while streaming, COMPLETE with usage, chunks folded away", async () => {
      const message = await start();
      expect(message).toMatchObject({ role: "ASSISTANT", status: "STREAMING", content: "", chunkCount: 0 });
      const parts = ["Hel", "lo, ", "wörld 🌍", "\n```js\nx\n```"];
      for (const [index, text] of parts.entries()) {
        expect((await append(message.id, index, text)).body).toEqual({ data: { appendMessageChunk: { messageId: message.id, index, text } } });
      }
      // Any reader of the conversation sees the text so far.
      expect((await app.ok(READ, { m: message.id }, owner.token)).message).toEqual({ status: "STREAMING", content: parts.join(""), chunkCount: 4 });
      const { completeMessage } = await app.ok(COMPLETE, { m: message.id }, worker.token);
      expect(completeMessage).toEqual({
        id: message.id,
        status: "COMPLETE",
        content: parts.join(""),
        chunkCount: 4,
        promptTokens: 10,
        completionTokens: 3,
        costUsd: 0.5,
        latencyMs: 900,
      });
      expect(Number((await app.database.db.knex("message_chunks").where({ messageId: message.id }).count({ n: "*" }))[0].n)).toBe(0);
      // Completing again answers the same; the other ending is CONFLICT.
      expect((await app.ok(COMPLETE, { m: message.id }, worker.token)).completeMessage.content).toBe(parts.join(""));
      expect(await app.errorCode(FAIL, { m: message.id, e: "late" }, worker.token)).toBe("CONFLICT");
    });

    it("acknowledges a retried chunk once, refuses other text for it (CONFLICT) and a chunk ahead of order (expectedIndex)", async () => {
      const message = await start();
      await append(message.id, 0, "a");
      await append(message.id, 1, "b");
      expect((await append(message.id, 1, "b")).body.data).toEqual({ appendMessageChunk: { messageId: message.id, index: 1, text: "b" } });
      expect((await append(message.id, 1, "B")).body.errors?.[0].extensions).toMatchObject({ code: "CONFLICT" });
      expect((await append(message.id, 5, "f")).body.errors?.[0].extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        reason: "CHUNK_OUT_OF_ORDER",
        expectedIndex: 2,
      });
      expect((await append(message.id, -1, "x")).body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
      expect((await app.ok(READ, { m: message.id }, owner.token)).message).toMatchObject({ content: "ab", chunkCount: 2 });
    });

    it("keeps every chunk exactly once when the same chunks are sent concurrently", async () => {
      const message = await start();
      const texts = Array.from({ length: 20 }, (_, i) => `<${i}>`);
      for (const [index, text] of texts.entries()) {
        const results = await Promise.all([append(message.id, index, text), append(message.id, index, text), append(message.id, index, text)]);
        for (const result of results) expect(result.body.errors).toBeUndefined();
      }
      expect((await app.ok(READ, { m: message.id }, owner.token)).message).toMatchObject({ content: texts.join(""), chunkCount: 20 });
    });

    it("after completion acknowledges late retries of stored chunks and refuses new ones as MESSAGE_NOT_STREAMING", async () => {
      const message = await start();
      await append(message.id, 0, "done");
      await app.ok(COMPLETE, { m: message.id }, worker.token);
      expect((await append(message.id, 0, "done")).body.errors).toBeUndefined();
      expect((await append(message.id, 1, "more")).body.errors?.[0].extensions).toMatchObject({ code: "CONFLICT", reason: "MESSAGE_NOT_STREAMING" });
    });

    it("fails a message keeping the text so far and the error in metadata", async () => {
      const message = await start();
      await append(message.id, 0, "partial");
      const { failMessage } = await app.ok(FAIL, { m: message.id, e: "model timeout" }, worker.token);
      expect(failMessage).toMatchObject({ status: "FAILED", content: "partial", metadata: { error: "model timeout" } });
      expect(await app.errorCode(COMPLETE, { m: message.id }, worker.token)).toBe("CONFLICT");
    });

    it("is idempotent on requestId: a retried startMessage returns the message it started, also after completion", async () => {
      const first = await start("gen-1");
      await append(first.id, 0, "x");
      expect((await start("gen-1")).id).toBe(first.id);
      await app.ok(COMPLETE, { m: first.id }, worker.token);
      expect((await start("gen-1")).id).toBe(first.id);
      // The same key for a whole message is another message: CONFLICT.
      const add = `mutation($c: UUID!) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "x", requestId: "gen-1" }) { id } }`;
      expect(await app.errorCode(add, { c: conversationId }, worker.token)).toBe("CONFLICT");
    });

    it("lets only the writer stream into a message: members cannot start, other readers get FORBIDDEN, outsiders NOT_FOUND", async () => {
      expect(await app.errorCode(START, { c: conversationId }, owner.token)).toBe("FORBIDDEN");
      const message = await start();
      expect((await append(message.id, 0, "x", owner.token)).body.errors?.[0].extensions?.code).toBe("FORBIDDEN");
      const outsider = await app.makeUser(Role.SERVICE, "outsider");
      expect((await append(message.id, 0, "x", outsider.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
      expect(await app.errorCode(COMPLETE, { m: message.id }, outsider.token)).toBe("NOT_FOUND");
      expect(await app.errorCode(FAIL, { m: message.id, e: "x" }, outsider.token)).toBe("NOT_FOUND");
      expect((await app.ok(READ, { m: message.id }, owner.token)).message).toMatchObject({ content: "", chunkCount: 0 });
    });

    it("fails streams that got no chunk for the timeout, keeping their text so far, and leaves live ones alone", async () => {
      const stale = await start();
      await append(stale.id, 0, "partial");
      const live = await start();
      const knex = app.database.db.knex;
      await knex("messages").where({ id: stale.id }).update({ updatedAt: knex.raw("now() - interval '1 hour'") });
      expect(await failStaleStreams(knex, app.database.config, 300)).toBe(1);
      const READ_META = `query($m: UUID!) { message(id: $m) { status content metadata } }`;
      expect((await app.ok(READ_META, { m: stale.id }, owner.token)).message).toEqual({
        status: "FAILED",
        content: "partial",
        metadata: { error: "The stream timed out: no chunk for 300 seconds" },
      });
      expect((await app.ok(READ_META, { m: live.id }, owner.token)).message.status).toBe("STREAMING");
      expect(await failStaleStreams(knex, app.database.config, 300)).toBe(0);
      await app.ok(COMPLETE, { m: live.id }, worker.token);
    });

    if (env.MESSAGE_ENCRYPTION_KEYS) {
      it("stores chunks and the completed text encrypted: no plaintext in the tables", async () => {
        const message = await start();
        const secret = "a very secret streamed sentence";
        await append(message.id, 0, secret.slice(0, 10));
        await append(message.id, 1, secret.slice(10));
        const knex = app.database.db.knex;
        const chunks = await knex("message_chunks").where({ messageId: message.id }).select("content", "encrypted_content", "key_id");
        expect(chunks).toHaveLength(2);
        for (const chunk of chunks) {
          expect(chunk.content).toBeNull();
          expect(Buffer.from(chunk.encryptedContent).toString("latin1")).not.toContain(secret.slice(0, 10));
        }
        expect((await app.ok(READ, { m: message.id }, owner.token)).message.content).toBe(secret);
        await app.ok(COMPLETE, { m: message.id }, worker.token);
        const row = await knex("messages").where({ id: message.id }).first("content", "encrypted_content");
        expect(row.content).toBeNull();
        expect(Buffer.from(row.encryptedContent).toString("latin1")).not.toContain("secret");
        expect((await app.ok(READ, { m: message.id }, owner.token)).message.content).toBe(secret);
      });
    }
  });
}

suite("streamed replies", {});
suite("streamed replies with a key ring", { MESSAGE_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}` });

describe("the stale-stream sweep of a running server", () => {
  it("fails a STREAMING message after STREAM_TIMEOUT_SECONDS without chunks", async () => {
    const app = await createTestApp({ STREAM_TIMEOUT_SECONDS: "1" });
    try {
      const worker = await app.makeUser(Role.SERVICE, "worker");
      const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "t" }) { id } }`, {}, worker.token);
      const { startMessage } = await app.ok(START, { c: createConversation.id }, worker.token);
      const deadline = Date.now() + 30_000; // a liveness bound: the sweep runs every 0.5 s here
      let status = "STREAMING";
      while (status === "STREAMING" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        status = (await app.ok(READ, { m: startMessage.id }, worker.token)).message.status;
      }
      expect(status).toBe("FAILED");
    } finally {
      await app.dispose();
    }
  });
});

describe("a streamed text over MAX_MESSAGE_LENGTH", () => {
  it("cannot complete (BAD_USER_INPUT), and fails keeping the part that fits", async () => {
    const app = await createTestApp({ MAX_MESSAGE_LENGTH: "10", MAX_USER_MESSAGE_LENGTH: "10" });
    try {
      const worker = await app.makeUser(Role.SERVICE, "worker");
      const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "t" }) { id } }`, {}, worker.token);
      const { startMessage } = await app.ok(START, { c: createConversation.id }, worker.token);
      await app.ok(APPEND, { m: startMessage.id, i: 0, t: "12345678" }, worker.token);
      await app.ok(APPEND, { m: startMessage.id, i: 1, t: "90abc" }, worker.token);
      expect(await app.errorCode(COMPLETE, { m: startMessage.id }, worker.token)).toBe("BAD_USER_INPUT");
      const { failMessage } = await app.ok(FAIL, { m: startMessage.id, e: "too long" }, worker.token);
      expect(failMessage).toMatchObject({ status: "FAILED", content: "1234567890" });
    } finally {
      await app.dispose();
    }
  });
});
