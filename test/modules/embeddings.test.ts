/**
 * Parley's own embedding calls (issue 15.1) against a real local OpenAI-compatible server: batches and their
 * order, the bearer key, retries (429 with Retry-After, 5xx, cut connections, timeouts) up to the attempts
 * allowed, 4xx and malformed answers failing at once with the provider's words but never the key, and the
 * ledger row of a call. Also the deterministic demo embedding the seeds, tests and benchmark use.
 */
import pino from "pino";
import type { EmbeddingsConfig } from "../../src/config";
import { createEmbedder, recordEmbeddingUsage } from "../../src/modules/knowledge/embeddings";
import { demoEmbedding } from "../../src/modules/knowledge/demo-embedding";
import { actorFor, type ActorDeps } from "../../src/modules/actor";
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { createLogger } from "../../src/logger";
import { createEmbeddingsServer, type EmbeddingsServer, type Malformed } from "../helpers/embeddings-server";
import { createTestDatabase, type TestDatabase } from "../helpers/db";

const KEY = "sk-test-0123456789abcdef-secret";
const DIMENSIONS = 32;

let server: EmbeddingsServer;
beforeEach(async () => {
  server = await createEmbeddingsServer({ dimensions: DIMENSIONS });
});
afterEach(() => server.close());

/** A logger whose warn (and worse) lines a test can read. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines, text: () => JSON.stringify(lines) };
}

function settings(overrides: Partial<EmbeddingsConfig> = {}): EmbeddingsConfig {
  return { url: server.url, apiKey: KEY, model: "demo-embed", batchSize: 64, timeoutMs: 2000, maxAttempts: 3, ...overrides };
}

const texts = (n: number, topic = "knowledge") => Array.from({ length: n }, (_, i) => `chunk ${i} of the ${topic} document, word${i}`);

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<{ message: string; extensions: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as { message: string; extensions: Record<string, unknown> };
  }
  throw new Error("expected a rejection");
}

const cosine = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * b[i], 0) / (Math.hypot(...a) * Math.hypot(...b));

describe("createEmbedder", () => {
  it("sends batches of batchSize and puts the vectors back in input order", async () => {
    const input = texts(150);
    const result = await createEmbedder(settings(), capture().log).embed(input);

    expect(server.requests.map((request) => request.inputs.length).sort((a, b) => a - b)).toEqual([22, 64, 64]);
    // The server answers each batch in reverse order: only the index puts a vector back by its text.
    expect(result.vectors).toEqual(input.map((text) => demoEmbedding(text, DIMENSIONS)));
    expect(server.requests.flatMap((request) => request.inputs).sort()).toEqual([...input].sort());
    for (const request of server.requests) expect(request).toMatchObject({ model: "demo-embed", encodingFormat: "float", status: 200 });
    expect(result.requests).toBe(3);
    expect(result.promptTokens).toBe(server.requests.reduce((sum, request) => sum + request.promptTokens, 0));
    expect(result.promptTokens).toBeGreaterThan(0);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("keeps two batches in flight, no more", async () => {
    server.slowNext(5, 150);
    const result = await createEmbedder(settings({ batchSize: 2 }), capture().log).embed(texts(10));
    expect(server.requests).toHaveLength(5);
    expect(server.maxInFlight).toBe(2);
    expect(result.vectors).toHaveLength(10);
  });

  it("sends the key as a bearer token, and no authorization header without one", async () => {
    await createEmbedder(settings(), capture().log).embed(["with a key"]);
    await createEmbedder(settings({ apiKey: undefined }), capture().log).embed(["without"]);
    expect(server.requests.map((request) => request.authorization)).toEqual([`Bearer ${KEY}`, undefined]);
  });

  it("sends nothing for no texts", async () => {
    expect(await createEmbedder(settings(), capture().log).embed([])).toMatchObject({ vectors: [], promptTokens: 0, requests: 0 });
    expect(server.requests).toHaveLength(0);
  });

  it("retries a 429 after the wait its Retry-After asks for", async () => {
    server.failNext(1, 429, { retryAfter: 1 });
    const { log, lines } = capture();
    const result = await createEmbedder(settings(), log).embed(["rate limited"]);
    expect(result.requests).toBe(2);
    expect(result.vectors).toEqual([demoEmbedding("rate limited", DIMENSIONS)]);
    const [first, second] = server.requests;
    // Without Retry-After the first backoff is at most 250 ms.
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(lines).toEqual([expect.objectContaining({ level: 40, status: 429, attempt: 1, willRetry: true })]);
  });

  it("retries 5xx answers and cut connections, then succeeds", async () => {
    server.failNext(1, 500);
    server.resetNext(1);
    const { log, lines } = capture();
    const result = await createEmbedder(settings({ maxAttempts: 3 }), log).embed(["flaky", "server"]);
    expect(result.requests).toBe(3);
    expect(result.vectors).toEqual([demoEmbedding("flaky", DIMENSIONS), demoEmbedding("server", DIMENSIONS)]);
    expect(lines.map((line) => [line.status, line.attempt])).toEqual([
      [500, 1],
      [null, 2],
    ]);
  });

  it("gives up after maxAttempts with SERVICE_UNAVAILABLE / EMBEDDINGS_UNAVAILABLE", async () => {
    server.failNext(10, 503);
    const { log, lines } = capture();
    const error = await failure(createEmbedder(settings({ maxAttempts: 3 }), log).embed(["down"]));
    expect(error.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_UNAVAILABLE", upstreamStatus: 503 });
    expect(error.message).toContain("HTTP 503");
    expect(error.message).toContain("3 attempts");
    expect(server.requests).toHaveLength(3);
    expect(lines.map((line) => [line.status, line.attempt, line.willRetry])).toEqual([
      [503, 1, true],
      [503, 2, true],
      [503, 3, false],
    ]);
  });

  it("gives up on an endpoint that refuses connections", async () => {
    const gone = await createEmbeddingsServer();
    await gone.close();
    const { log, lines } = capture();
    const error = await failure(createEmbedder(settings({ url: gone.url, maxAttempts: 2 }), log).embed(["anyone?"]));
    expect(error.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_UNAVAILABLE" });
    expect(error.message).toContain("ECONNREFUSED");
    expect(lines.map((line) => line.reason)).toEqual(["ECONNREFUSED", "ECONNREFUSED"]);
  });

  it("does not retry a 400: EMBEDDINGS_FAILED naming the status and the provider's message", async () => {
    server.failNext(1, 400, { message: "This model's maximum context length is 8192 tokens" });
    const error = await failure(createEmbedder(settings(), capture().log).embed(["far too long"]));
    expect(error.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_FAILED", upstreamStatus: 400 });
    expect(error.message).toContain("HTTP 400");
    expect(error.message).toContain("maximum context length is 8192 tokens");
    expect(server.requests).toHaveLength(1);
  });

  it("never puts the key or the texts in its error or its logs, even when the provider echoes the key", async () => {
    server.failNext(1, 401, { message: `Incorrect API key provided: ${KEY}. You can find your API key in your account.` });
    const { log, lines, text } = capture();
    const error = await failure(createEmbedder(settings(), log).embed(["a private text about salaries"]));
    expect(error.extensions).toMatchObject({ reason: "EMBEDDINGS_FAILED" });
    expect(error.message).toContain("HTTP 401");
    expect(error.message).toContain("Incorrect API key provided");
    expect(error.message).not.toContain(KEY);
    expect(lines).toHaveLength(1);
    expect(text()).not.toContain(KEY);
    expect(text()).not.toContain("salaries");
    expect(server.requests).toHaveLength(1);
  });

  it("quotes a long or non-JSON error body briefly", async () => {
    server.failNext(1, 422, { message: "x".repeat(5000) });
    const long = await failure(createEmbedder(settings(), capture().log).embed(["a"]));
    expect(long.message.length).toBeLessThan(400);
    server.failNext(1, 403, { body: "<html>\n<body>Forbidden by the proxy</body>\n</html>" });
    const html = await failure(createEmbedder(settings(), capture().log).embed(["a"]));
    expect(html.message).toContain("HTTP 403: <html> <body>Forbidden by the proxy</body> </html>");
  });

  it("retries an attempt that gets no answer within timeoutMs", async () => {
    // Far apart on purpose (a loaded machine must not blur them): the slow answer would take 10 s.
    server.slowNext(1, 10_000);
    const { log, lines } = capture();
    const started = performance.now();
    const result = await createEmbedder(settings({ timeoutMs: 300, maxAttempts: 2 }), log).embed(["slow"]);
    expect(performance.now() - started).toBeLessThan(6000);
    expect(result.requests).toBe(2);
    expect(result.vectors).toEqual([demoEmbedding("slow", DIMENSIONS)]);
    expect(lines).toEqual([expect.objectContaining({ status: null, attempt: 1, reason: "timeout" })]);
  });

  it("gives up with EMBEDDINGS_UNAVAILABLE when every attempt times out", async () => {
    server.slowNext(10, 10_000);
    const started = performance.now();
    const error = await failure(createEmbedder(settings({ timeoutMs: 300, maxAttempts: 2 }), capture().log).embed(["slow"]));
    expect(performance.now() - started).toBeLessThan(6000);
    expect(error.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_UNAVAILABLE" });
    expect(error.message).toContain("no answer within 300 ms");
    expect(server.requests).toHaveLength(2);
  });

  it.each<[Malformed, string]>([
    ["not-json", "not JSON"],
    ["missing-embedding", "1 embeddings for 2 texts"],
    ["wrong-dimensions", "differ in length"],
    ["non-finite", "not a finite number"],
    ["repeated-index", "appears twice"],
    ["base64", "not a list of numbers"],
  ])("refuses a malformed answer (%s) at once with EMBEDDINGS_FAILED", async (malformed, says) => {
    server.malformedNext(1, malformed);
    const error = await failure(createEmbedder(settings(), capture().log).embed(["first text", "second text"]));
    expect(error.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_FAILED" });
    expect(error.message).toContain(says);
    expect(server.requests).toHaveLength(1);
  });

  it("refuses vectors whose length changes from one batch to the next", async () => {
    server.malformedNext(1, "other-dimensions");
    const error = await failure(createEmbedder(settings({ batchSize: 2 }), capture().log).embed(texts(4)));
    expect(error.extensions).toMatchObject({ reason: "EMBEDDINGS_FAILED" });
    expect(error.message).toContain(`${DIMENSIONS * 2}`);
  });

  it("stops the other batches when one fails", async () => {
    // The failure comes once the second batch is in flight, which would take 10 s to answer.
    server.failNext(1, 400, { delayMs: 200 });
    server.slowNext(10, 10_000);
    const started = performance.now();
    const error = await failure(createEmbedder(settings({ batchSize: 1 }), capture().log).embed(texts(10)));
    expect(error.extensions).toMatchObject({ reason: "EMBEDDINGS_FAILED" });
    // The batch in flight was given up, not waited for, and none after it was sent.
    expect(performance.now() - started).toBeLessThan(6000);
    expect(server.requests).toHaveLength(2);
  });
});

describe("demoEmbedding", () => {
  it("is deterministic, of the dimensions asked, and of unit length", () => {
    const text = "PostgreSQL stores the chunks; pgvector searches them.";
    expect(demoEmbedding(text, 64)).toEqual(demoEmbedding(text, 64));
    for (const dimensions of [1, 8, 384, 1536]) {
      const vector = demoEmbedding(text, dimensions);
      expect(vector).toHaveLength(dimensions);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 10);
    }
    // Case and punctuation are not words.
    expect(demoEmbedding("Hello, World!", 64)).toEqual(demoEmbedding("hello world", 64));
  });

  it("puts texts that share words closer than unrelated ones", () => {
    const query = demoEmbedding("how do I reset my password", 256);
    const related = demoEmbedding("to reset your password, open the account settings", 256);
    const unrelated = demoEmbedding("quarterly revenue grew in the european market", 256);
    expect(cosine(query, related)).toBeGreaterThan(cosine(query, unrelated) + 0.2);
    // Word order counts through the pairs, but less than the words.
    const swapped = cosine(demoEmbedding("dog bites man", 256), demoEmbedding("man bites dog", 256));
    expect(swapped).toBeLessThan(0.999);
    expect(swapped).toBeGreaterThan(0.6);
  });

  it("gives a text without words a fixed unit vector, not zeros", () => {
    const empty = demoEmbedding("", 16);
    expect(empty).toEqual(demoEmbedding("  ?! ", 16));
    expect(Math.hypot(...empty)).toBeCloseTo(1, 10);
    expect(() => demoEmbedding("x", 0)).toThrow(RangeError);
  });
});

describe("recordEmbeddingUsage", () => {
  let database: TestDatabase;
  let deps: ActorDeps;
  beforeAll(async () => {
    database = await createTestDatabase();
    deps = { db: database.db, config: database.config, log: createLogger({ logLevel: "silent" }) };
    const [model] = await database.db.knex("ai_models").insert({ provider: "local", name: "demo-embed" }).returning("id");
    await database.db.knex("ai_model_prices").insert({ modelId: model.id, effectiveFrom: new Date("2026-01-01T00:00:00Z"), inputPerMillion: 0.02, outputPerMillion: 0 });
  });
  afterAll(() => database.dispose());

  async function user(role: Role, displayName: string) {
    return User.query(database.db.knex).insertAndFetch({ displayName, role });
  }

  it("puts one embedding row on the ledger, priced from the catalogue, once per requestId", async () => {
    const service = await user(Role.SERVICE, "indexer");
    const alice = await user(Role.MEMBER, "alice");
    const actor = actorFor(deps, { id: service.id, role: Role.SERVICE, displayName: "indexer" });
    const entry = { model: "demo-embed", promptTokens: 1500, latencyMs: 123.6, requestId: "embedding:doc-1:v1", userId: alice.id, guildId: "123456789012345678" };

    const first = await database.db.knex.transaction((trx) => recordEmbeddingUsage(actor, trx, entry));
    expect(first).toMatchObject({ requestId: "embedding:doc-1:v1", userId: alice.id, reportedBy: service.id, guildId: "123456789012345678", kind: "embedding", status: "success", model: "demo-embed", promptTokens: 1500, completionTokens: 0, latencyMs: 124, costSource: "catalog" });
    expect(first.costUsd).toBeCloseTo((1500 * 0.02) / 1e6, 12);
    const again = await database.db.knex.transaction((trx) => recordEmbeddingUsage(actor, trx, entry));
    expect(again.id).toBe(first.id);
    expect(await database.db.knex("ai_requests").where({ requestId: "embedding:doc-1:v1" }).count({ n: "*" })).toEqual([{ n: 1 }]);
    const hour = await database.db.knex("cost_tracking").where({ userId: alice.id, period: "hour" }).first("requests", "promptTokens");
    expect({ requests: hour.requests, promptTokens: Number(hour.promptTokens) }).toEqual({ requests: 1, promptTokens: 1500 });
  });

  it("bills the viewer when no user is named, records an unknown model without a cost, and rolls back with its transaction", async () => {
    const member = await user(Role.MEMBER, "bob");
    const actor = actorFor(deps, { id: member.id, role: Role.MEMBER, displayName: "bob" });
    const row = await database.db.knex.transaction((trx) => recordEmbeddingUsage(actor, trx, { model: "uncatalogued-embedder", promptTokens: 10, latencyMs: 5, requestId: "embedding:own" }));
    expect(row).toMatchObject({ userId: member.id, reportedBy: member.id, guildId: null, costUsd: null, costSource: "unknown" });

    await expect(
      database.db.knex.transaction(async (trx) => {
        await recordEmbeddingUsage(actor, trx, { model: "demo-embed", promptTokens: 10, latencyMs: 5, requestId: "embedding:rolled-back" });
        throw new Error("the document write failed");
      }),
    ).rejects.toThrow("the document write failed");
    expect(await database.db.knex("ai_requests").where({ requestId: "embedding:rolled-back" })).toEqual([]);
  });

  it("refuses an actor without a viewer with UNAUTHENTICATED", async () => {
    await expect(
      database.db.knex.transaction((trx) => recordEmbeddingUsage(actorFor(deps, null), trx, { model: "demo-embed", promptTokens: 1, latencyMs: 1, requestId: "embedding:nobody" })),
    ).rejects.toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
  });
});
