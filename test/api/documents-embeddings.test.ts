/**
 * Documents sent without vectors while EMBEDDINGS_URL is set: Parley asks a real OpenAI-compatible server (a
 * local one answering deterministic demo vectors) in batches, records the call on the usage ledger once, and
 * stores nothing when the server stays away.
 */
import { Role } from "../../src/modules/user/role.enum";
import { demoEmbedding } from "../../src/modules/knowledge/demo-embedding";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { createEmbeddingsServer, type EmbeddingsServer } from "../helpers/embeddings-server";

const DIMENSIONS = 16;
let embeddings: EmbeddingsServer;
let app: TestApp;
let admin: TestUser;

const UPSERT = `mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { id chunkCount embeddingModel chunks(first: 50) { content hasEmbedding } } }`;
const SEARCH = `query($embedding: [Float!]) { searchDocuments(embedding: $embedding, filter: { scope: { kind: GLOBAL } }, first: 3) { similarity chunk { content } } }`;
const text = Array.from({ length: 10 }, (_, i) => `Section ${i}: the lighthouse keeper logs ship number ${i * 7} at dawn.`).join("\n\n");

beforeAll(async () => {
  embeddings = await createEmbeddingsServer({ dimensions: DIMENSIONS });
  app = await createTestApp({
    EMBEDDINGS_URL: embeddings.url,
    EMBEDDINGS_MODEL: "demo-embedder",
    EMBEDDINGS_API_KEY: "sk-test-key",
    EMBEDDINGS_BATCH_SIZE: "4",
    EMBEDDINGS_MAX_ATTEMPTS: "2",
    CHUNK_SIZE: "100",
    CHUNK_OVERLAP: "0",
  });
  admin = await app.makeUser(Role.ADMIN, "admin");
});
afterAll(async () => {
  await app.dispose();
  await embeddings.close();
});

const ledgerRows = async () => app.database.db.knex("ai_requests").where({ kind: "embedding" }).select("model", "promptTokens", "userId", "requestId");

describe("EMBEDDINGS_URL", () => {
  it("embeds the chunks sent without a vector, in batches, and records the call on the ledger once", async () => {
    const input = { scope: { kind: "GLOBAL" }, externalId: "lighthouse", title: "Lighthouse log", text };
    const doc = (await app.ok(UPSERT, { input }, admin.token)).upsertDocument;
    expect(doc.chunkCount).toBeGreaterThan(4);
    expect(doc.embeddingModel).toBe("demo-embedder");
    expect(doc.chunks.every((chunk: any) => chunk.hasEmbedding)).toBe(true);
    expect(embeddings.requests.map((request) => request.inputs.length)).toEqual(
      Array.from({ length: Math.ceil(doc.chunkCount / 4) }, (_, i) => Math.min(4, doc.chunkCount - i * 4)),
    );
    expect(embeddings.requests.every((request) => request.authorization === "Bearer sk-test-key" && request.model === "demo-embedder")).toBe(true);
    expect((await app.ok(`{ knowledgeBase(scope: { kind: GLOBAL }) { embeddingModel dimensions } }`, {}, admin.token)).knowledgeBase).toEqual({
      embeddingModel: "demo-embedder",
      dimensions: DIMENSIONS,
    });

    // The stored vectors are the server's: the query vector of a chunk's own text finds that chunk first.
    const target = doc.chunks[3].content;
    const hits = (await app.ok(SEARCH, { embedding: demoEmbedding(target, DIMENSIONS) }, admin.token)).searchDocuments;
    expect(hits[0]).toEqual({ similarity: expect.closeTo(1, 5), chunk: { content: target } });

    const [row] = await ledgerRows();
    expect(row).toMatchObject({ model: "demo-embedder", userId: admin.user.id });
    expect(row.promptTokens).toBe(embeddings.requests.reduce((sum, request) => sum + request.promptTokens, 0));
    // The same document again: embedded again (the client asked), but the same call is not billed twice.
    await app.ok(UPSERT, { input }, admin.token);
    expect(await ledgerRows()).toHaveLength(1);
  });

  it("stores nothing and answers SERVICE_UNAVAILABLE when the server stays away; the retry then works", async () => {
    const before = Number((await app.database.db.knex("documents").count({ n: "*" }))[0].n);
    embeddings.failNext(2, 503);
    const input = { scope: { kind: "GLOBAL" }, externalId: "storm", title: "Storm log", text: "The storm reached the lighthouse at noon." };
    const { status, body } = await app.gql(UPSERT, { input }, admin.token);
    expect(status).toBe(503);
    expect(body.errors?.[0].extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "EMBEDDINGS_UNAVAILABLE" });
    expect(JSON.stringify(body)).not.toContain("sk-test-key");
    expect(Number((await app.database.db.knex("documents").count({ n: "*" }))[0].n)).toBe(before);
    expect((await app.ok(UPSERT, { input }, admin.token)).upsertDocument.chunks).toEqual([{ content: input.text, hasEmbedding: true }]);
  });

  it("refuses an embeddingModel other than the one Parley would ask for chunks without a vector", async () => {
    const input = { scope: { kind: "GLOBAL" }, title: "x", text: "some text", embeddingModel: "someone-elses-model" };
    expect(await app.errorCode(UPSERT, { input }, admin.token)).toBe("BAD_USER_INPUT");
  });
});
