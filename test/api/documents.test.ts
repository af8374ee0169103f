/**
 * Documents and searchDocuments: storing (Parley's chunks or the client's, with vectors), the knowledge base's
 * one dimension count and model, bad input refused with nothing stored, full-text, vector and hybrid search with
 * reciprocal rank fusion, filters, highlights, exact vs. index search, and who reaches which scope.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements } from "../helpers/statements";

let app: TestApp;
let admin: TestUser;
let bot: TestUser; // a service granted the DISCORD origin
let stranger: TestUser; // a service without grants
let alice: TestUser;
let bob: TestUser;

const UPSERT = `mutation($input: UpsertDocumentInput!) {
  upsertDocument(input: $input) { id title scope guildId userId externalId tags metadata language chunkCount sizeBytes contentSha256 embeddingModel
    chunks(first: 100) { position content charStart charEnd hasEmbedding } }
}`;
const SEARCH = `query($query: String, $embedding: [Float!], $filter: DocumentSearchFilter, $first: Int, $exact: Boolean) {
  searchDocuments(query: $query, embedding: $embedding, filter: $filter, first: $first, exact: $exact) {
    score textRank textPosition similarity vectorPosition highlight chunk { id position content } document { id title tags scope guildId userId sourceUrl sizeBytes updatedAt }
  }
}`;
const DELETE = `mutation($id: UUID!) { deleteDocument(id: $id) }`;
const DOCUMENT = `query($id: UUID!) { document(id: $id) { id title } }`;
const BASE = `query($scope: KnowledgeScopeInput!) { knowledgeBase(scope: $scope) { scope embeddingModel dimensions documentCount chunkCount } }`;

const GLOBAL = { kind: "GLOBAL" };
const GUILD = { kind: "GUILD", guildId: "111111111111111111" };
const OTHER_GUILD = { kind: "GUILD", guildId: "222222222222222222" };
const user = (u: TestUser) => ({ kind: "USER", userId: u.user.id });

/** A unit vector along one axis of a small space, nudged toward another: easy to reason about similarity. */
function axis(i: number, dims = 4, nudge?: number): number[] {
  const v = new Array(dims).fill(0);
  v[i] = 1;
  if (nudge !== undefined) v[nudge] = 0.3;
  return v;
}

async function upsert(input: Record<string, unknown>, token = admin.token) {
  return (await app.ok(UPSERT, { input }, token)).upsertDocument;
}
async function search(variables: Record<string, unknown>, token = admin.token) {
  return (await app.ok(SEARCH, variables, token)).searchDocuments as any[];
}
const count = async (table: string) => Number((await app.database.db.knex(table).count({ n: "*" }))[0].n);

beforeAll(async () => {
  app = await createTestApp({ CHUNK_SIZE: "200", CHUNK_OVERLAP: "40", MAX_DOCUMENT_BYTES: "20000", MAX_DOCUMENT_CHUNKS: "50" });
  admin = await app.makeUser(Role.ADMIN, "admin");
  bot = await app.makeUser(Role.SERVICE, "bot");
  await app.grant(bot, { origin: "discord" });
  stranger = await app.makeUser(Role.SERVICE, "stranger");
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
});
afterAll(() => app.dispose());

describe("storing documents", () => {
  it("cuts text into chunks with offsets, and indexes it for full text", async () => {
    const text = Array.from({ length: 12 }, (_, i) => `Paragraph ${i} explains how the parley relay forwards messages.`).join("\n\n");
    const doc = await upsert({ scope: user(alice), title: "Relay guide", text, tags: ["guide", "relay"], metadata: { lang: "en" } }, alice.token);
    expect(doc).toMatchObject({ scope: "USER", userId: alice.user.id, guildId: null, language: "english", embeddingModel: null, tags: ["guide", "relay"] });
    expect(doc.chunkCount).toBe(doc.chunks.length);
    expect(doc.chunks.length).toBeGreaterThan(3);
    for (const chunk of doc.chunks) {
      expect(chunk.content.length).toBeLessThanOrEqual(200);
      expect(text.slice(chunk.charStart, chunk.charEnd)).toBe(chunk.content);
      expect(chunk.hasEmbedding).toBe(false);
    }
    expect(doc.sizeBytes).toBe(Buffer.byteLength(text));
    const hits = await search({ query: "forwarding", filter: { scope: user(alice) } }, alice.token);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0].document.id).toBe(doc.id);
    expect(hits[0].highlight).toMatch(/<b>forwards<\/b>/);
    expect(hits[0].similarity).toBeNull();
  });

  it("stores the client's chunks with their vectors and settles the knowledge base's dimensions and model", async () => {
    const scope = { kind: "GUILD", guildId: "333333333333333333" };
    const doc = await upsert(
      { scope, title: "Vectors", embeddingModel: "demo-4", chunks: [{ text: "alpha text", embedding: axis(0) }, { text: "beta text", embedding: axis(1) }] },
      bot.token,
    );
    expect(doc).toMatchObject({ chunkCount: 2, embeddingModel: "demo-4", chunks: [{ position: 0, charStart: null, hasEmbedding: true }, { position: 1 }] });
    expect((await app.ok(BASE, { scope }, bot.token)).knowledgeBase).toEqual({ scope: "GUILD", embeddingModel: "demo-4", dimensions: 4, documentCount: 1, chunkCount: 2 });

    const before = await count("document_chunks");
    // Another dimension count, another model, a mix of chunks with and without vectors: refused, nothing stored.
    for (const [input, field] of [
      [{ scope, title: "3d", chunks: [{ text: "x", embedding: [1, 0, 0] }] }, "chunks.0.embedding"],
      [{ scope, title: "model", embeddingModel: "other", chunks: [{ text: "x", embedding: axis(2) }] }, "embeddingModel"],
      [{ scope, title: "mixed", chunks: [{ text: "x", embedding: axis(2) }, { text: "y" }] }, "chunks.embedding"],
      [{ scope, title: "zero", chunks: [{ text: "x", embedding: [0, 0, 0, 0] }] }, "chunks.0.embedding"],
    ] as const) {
      const { body } = await app.gql(UPSERT, { input }, bot.token);
      expect([input.title, body.errors?.[0].extensions?.code, body.errors?.[0].extensions?.field]).toEqual([input.title, "BAD_USER_INPUT", field]);
    }
    expect(await count("document_chunks")).toBe(before);
  });

  it("replaces a document by externalId (twice = one document) and by id", async () => {
    const input = { scope: GUILD, externalId: "faq.md", title: "FAQ", text: "How do I join? Ask a moderator." };
    const first = await upsert(input, bot.token);
    const again = await upsert(input, bot.token);
    expect(again.id).toBe(first.id);
    const changed = await upsert({ ...input, text: "How do I leave? Use the settings." }, bot.token);
    expect(changed.id).toBe(first.id);
    expect(changed.contentSha256).not.toBe(first.contentSha256);
    expect(await search({ query: "moderator", filter: { scope: GUILD } }, bot.token)).toEqual([]);
    expect((await search({ query: "leave", filter: { scope: GUILD } }, bot.token))[0].document.id).toBe(first.id);
    const byId = await upsert({ scope: GUILD, id: first.id, title: "FAQ v3", text: "Nothing to see." }, bot.token);
    expect(byId).toMatchObject({ id: first.id, title: "FAQ v3", externalId: "faq.md" });
    // A document does not move between scopes.
    expect(await app.errorCode(UPSERT, { input: { scope: OTHER_GUILD, id: first.id, title: "x", text: "y" } }, bot.token)).toBe("BAD_USER_INPUT");
  });

  it("refuses bad input with a clear code and stores nothing", async () => {
    const documents = await count("documents");
    const chunks = await count("document_chunks");
    const big = "word ".repeat(5000); // 25,000 bytes > MAX_DOCUMENT_BYTES
    const many = Array.from({ length: 51 }, (_, i) => ({ text: `chunk ${i}` }));
    for (const [input, code] of [
      [{ scope: GLOBAL, title: "big", text: big }, "PAYLOAD_TOO_LARGE"],
      [{ scope: GLOBAL, title: "many", chunks: many }, "PAYLOAD_TOO_LARGE"],
      [{ scope: GLOBAL, title: "both", text: "a", chunks: [{ text: "b" }] }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "neither" }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "blank", text: "   \n\n " }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "  ", text: "a" }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "lang", text: "a", language: "klingon" }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "meta", text: "a", metadata: [1] }, "BAD_USER_INPUT"],
      [{ scope: GLOBAL, title: "nul", text: "a\u0000b" }, "BAD_USER_INPUT"],
      [{ scope: { kind: "GUILD", guildId: "not-a-snowflake" }, title: "g", text: "a" }, "BAD_USER_INPUT"],
      [{ scope: { kind: "GLOBAL", guildId: "1" }, title: "g", text: "a" }, "BAD_USER_INPUT"],
    ] as const) {
      expect([input.title, await app.errorCode(UPSERT, { input }, admin.token)]).toEqual([input.title, code]);
    }
    expect(await count("documents")).toBe(documents);
    expect(await count("document_chunks")).toBe(chunks);
  });

  it("deletes a document with its chunks", async () => {
    const doc = await upsert({ scope: user(alice), title: "Temporary", text: "ephemeral zebra notes" }, alice.token);
    expect(await app.errorCode(DELETE, { id: doc.id }, bob.token)).toBe("NOT_FOUND");
    expect((await app.ok(DELETE, { id: doc.id }, alice.token)).deleteDocument).toBe(true);
    expect(await search({ query: "zebra" }, alice.token)).toEqual([]);
    expect(Number((await app.database.db.knex("document_chunks").where({ documentId: doc.id }).count({ n: "*" }))[0].n)).toBe(0);
    expect(await app.errorCode(DOCUMENT, { id: doc.id }, alice.token)).toBe("NOT_FOUND");
  });
});

describe("searchDocuments", () => {
  const scope = { kind: "GUILD", guildId: "444444444444444444" };
  const docs: Record<string, string> = {};

  beforeAll(async () => {
    // Four documents in one 4-dimensional space. Text and vectors disagree on purpose: "walrus" is a text match
    // for A and C; the query vector is nearest to B, then C.
    const input = (title: string, text: string, embedding: number[], tags: string[], metadata: Record<string, unknown>) => ({
      scope,
      title,
      tags,
      metadata,
      embeddingModel: "demo-4",
      chunks: [{ text, embedding }],
    });
    docs.A = (await upsert(input("Alpha", "The walrus sleeps on the walrus beach, walrus after walrus.", axis(0), ["zoo"], { level: 1 }), bot.token)).id;
    docs.B = (await upsert(input("Beta", "Penguins swim in cold water.", axis(1, 4, 2), ["zoo", "birds"], { level: 2 }), bot.token)).id;
    docs.C = (await upsert(input("Gamma", "A walrus meets a penguin.", axis(2, 4, 1), ["zoo", "birds"], { level: 2 }), bot.token)).id;
    docs.D = (await upsert(input("Delta", "Nothing about animals at all.", axis(3), ["misc"], { level: 3 }), bot.token)).id;
  });

  const titles = (hits: any[]) => hits.map((hit) => hit.document.title);

  it("ranks by full text alone", async () => {
    const hits = await search({ query: "walrus", filter: { scope } }, bot.token);
    expect(titles(hits)).toEqual(["Alpha", "Gamma"]);
    expect(hits.map((h) => h.textPosition)).toEqual([1, 2]);
    expect(hits[0].textRank).toBeGreaterThan(hits[1].textRank);
    expect(hits.every((h) => h.similarity === null && h.vectorPosition === null)).toBe(true);
    expect(hits[0].score).toBeCloseTo(1 / 61, 10);
  });

  it("ranks by vector similarity alone, through the index and exactly, alike", async () => {
    const embedding = [0.1, 1, 0.5, 0];
    for (const exact of [false, true]) {
      const hits = await search({ embedding, filter: { scope }, exact }, bot.token);
      expect(titles(hits)).toEqual(["Beta", "Gamma", "Alpha", "Delta"]);
      expect(hits.map((h) => h.vectorPosition)).toEqual([1, 2, 3, 4]);
      expect(hits[0].similarity).toBeCloseTo((1 + 0.15) / (Math.sqrt(1.09) * Math.sqrt(1.26)), 5);
      expect(hits.every((h) => h.textRank === null && h.highlight === null)).toBe(true);
    }
  });

  it("fuses both rankings by reciprocal rank: a chunk both liked comes first", async () => {
    const hits = await search({ query: "walrus", embedding: [0.1, 1, 0.5, 0], filter: { scope } }, bot.token);
    // Gamma: text 2, vector 2 → 2/62; Beta: vector 1 → 1/61; Alpha: text 1, vector 3 → 1/61 + 1/63.
    expect(titles(hits)).toEqual(["Alpha", "Gamma", "Beta", "Delta"]);
    const byTitle = Object.fromEntries(hits.map((h) => [h.document.title, h]));
    expect(byTitle.Alpha.score).toBeCloseTo(1 / 61 + 1 / 63, 10);
    expect(byTitle.Gamma.score).toBeCloseTo(2 / 62, 10);
    expect(byTitle.Beta.score).toBeCloseTo(1 / 61, 10);
    expect(byTitle.Beta).toMatchObject({ textPosition: null, textRank: null, vectorPosition: 1 });
    expect(byTitle.Gamma.highlight).toMatch(/<b>walrus<\/b>/);
  });

  it("filters by tags and metadata, still filling the page", async () => {
    expect(titles(await search({ embedding: axis(0), filter: { scope, tags: ["birds"] } }, bot.token)).sort()).toEqual(["Beta", "Gamma"]);
    expect(titles(await search({ embedding: axis(0), filter: { scope, tags: ["birds", "zoo"], metadata: { level: 2 } }, first: 1 }, bot.token))).toHaveLength(1);
    expect(titles(await search({ query: "walrus", filter: { scope, metadata: { level: 1 } } }, bot.token))).toEqual(["Alpha"]);
    expect(await search({ query: "walrus", filter: { scope, tags: ["misc"] } }, bot.token)).toEqual([]);
  });

  it("understands web search syntax and stems words", async () => {
    expect(titles(await search({ query: '"walrus meets"', filter: { scope } }, bot.token))).toEqual(["Gamma"]);
    expect(titles(await search({ query: "walrus -penguin", filter: { scope } }, bot.token))).toEqual(["Alpha"]);
    expect(titles(await search({ query: "penguins or sleeping", filter: { scope } }, bot.token)).sort()).toEqual(["Alpha", "Beta", "Gamma"]);
  });

  it("returns whole documents with the hits, and highlights that carry no markup but their own", async () => {
    const hostile = await upsert(
      { scope, title: "Hostile", sourceUrl: "https://example.com/h", text: "<script>alert(1)</script> the walrus & <img src=x onerror=alert(2)>" },
      bot.token,
    );
    const [hit] = (await search({ query: "alert", filter: { scope } }, bot.token)).filter((h) => h.document.id === hostile.id);
    expect(hit.document).toMatchObject({ sourceUrl: "https://example.com/h", sizeBytes: hostile.sizeBytes, updatedAt: expect.any(String) });
    expect(hit.highlight).not.toMatch(/<(?!\/?b>)/);
    expect(hit.highlight).toContain("&lt;/script&gt;");
    expect(hit.chunk.content).toContain("<script>"); // the content itself is as stored
    expect((await app.ok(DELETE, { id: hostile.id }, bot.token)).deleteDocument).toBe(true);
  });

  it("refuses a search without query or embedding, with only stop words, or with a vector of another dimension count", async () => {
    for (const [variables, code] of [
      [{ filter: { scope } }, "BAD_USER_INPUT"],
      [{ query: "   " }, "BAD_USER_INPUT"],
      [{ query: "the and of" }, "BAD_USER_INPUT"],
      [{ embedding: [1, 0, 0], filter: { scope } }, "BAD_USER_INPUT"],
      [{ query: "walrus", first: 0 }, "BAD_USER_INPUT"],
      [{ query: "walrus", first: 1000 }, "BAD_USER_INPUT"],
    ] as const) {
      expect([variables, await app.errorCode(SEARCH, variables, bot.token)]).toEqual([variables, code]);
    }
  });

  it("answers in a fixed number of statements however many hits, and lists documents with their chunks without N+1", async () => {
    const counter = countStatements(app);
    const variables = { query: "walrus", embedding: [0.1, 1, 0.5, 0], filter: { scope } };
    const many = await counter.run<{ searchDocuments: unknown[] }>(SEARCH, { ...variables, first: 4 }, bot.token);
    const one = await counter.run<{ searchDocuments: unknown[] }>(SEARCH, { ...variables, first: 1 }, bot.token);
    expect([many.data.searchDocuments.length, one.data.searchDocuments.length]).toEqual([4, 1]);
    expect(many.statements.length).toBe(one.statements.length);

    const LIST = `query($first: Int, $filter: DocumentSearchFilter) { documents(first: $first, filter: $filter) { edges { node { title chunks(first: 5) { content } } } } }`;
    const four = await counter.run<any>(LIST, { first: 4, filter: { scope } }, bot.token);
    const single = await counter.run<any>(LIST, { first: 1, filter: { scope } }, bot.token);
    expect(four.data.documents.edges).toHaveLength(4);
    expect(four.data.documents.edges.every((edge: any) => edge.node.chunks.length === 1)).toBe(true);
    expect(four.statements.length).toBe(single.statements.length);
  });
});

describe("who reaches which knowledge", () => {
  let aliceDoc: string;
  let guildDoc: string;
  let globalDoc: string;

  beforeAll(async () => {
    aliceDoc = (await upsert({ scope: user(alice), title: "Alice diary", text: "secret quokka plans" }, alice.token)).id;
    guildDoc = (await upsert({ scope: OTHER_GUILD, title: "Guild rules", text: "quokka rules of the guild" }, bot.token)).id;
    globalDoc = (await upsert({ scope: GLOBAL, title: "Handbook", text: "quokka handbook for everyone" }, admin.token)).id;
  });

  const found = async (token: string, filter?: Record<string, unknown>) =>
    (await search({ query: "quokka", ...(filter ? { filter } : {}) }, token)).map((hit) => hit.document.id).sort();

  it("a member finds their own and global documents, never another member's or a guild's", async () => {
    expect(await found(alice.token)).toEqual([aliceDoc, globalDoc].sort());
    expect(await found(bob.token)).toEqual([globalDoc]);
    expect(await app.errorCode(SEARCH, { query: "quokka", filter: { scope: user(alice) } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(SEARCH, { query: "quokka", filter: { scope: OTHER_GUILD } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DOCUMENT, { id: aliceDoc }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(DOCUMENT, { id: guildDoc }, alice.token)).toBe("NOT_FOUND");
    expect((await app.ok(DOCUMENT, { id: globalDoc }, bob.token)).document.id).toBe(globalDoc);
  });

  it("members write only their own scope; global is written by admins", async () => {
    expect(await app.errorCode(UPSERT, { input: { scope: GLOBAL, title: "x", text: "y" } }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(UPSERT, { input: { scope: user(alice), title: "x", text: "y" } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(UPSERT, { input: { scope: user(bob), id: aliceDoc, title: "x", text: "y" } }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(DELETE, { id: globalDoc }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DELETE, { id: guildDoc }, alice.token)).toBe("NOT_FOUND");
  });

  it("a service reaches guilds only with the DISCORD grant, and members' own knowledge only of Discord members", async () => {
    expect(await found(stranger.token)).toEqual([globalDoc]);
    expect(await app.errorCode(SEARCH, { query: "quokka", filter: { scope: OTHER_GUILD } }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(UPSERT, { input: { scope: OTHER_GUILD, title: "x", text: "y" } }, stranger.token)).toBe("FORBIDDEN");
    // alice is a web member (no Discord id): not even the Discord bot reaches her documents.
    expect(await found(bot.token)).not.toContain(aliceDoc);
    expect(await found(bot.token)).toEqual(expect.arrayContaining([guildDoc, globalDoc]));
    expect(await app.errorCode(SEARCH, { query: "quokka", filter: { scope: user(alice) } }, bot.token)).toBe("FORBIDDEN");
    const discordMember = await app.makeUser(Role.MEMBER, "discord-member");
    await app.database.db.knex("users").where({ id: discordMember.user.id }).update({ discordId: "555555555555555555" });
    const theirs = (await upsert({ scope: user(discordMember), title: "Notes", text: "quokka notes" }, bot.token)).id;
    expect(await found(bot.token)).toContain(theirs);
    expect(await found(alice.token)).not.toContain(theirs);
  });

  it("deleting a user deletes their own knowledge and keeps what they wrote elsewhere", async () => {
    const leaving = await app.makeUser(Role.ADMIN, "leaving-admin");
    const own = (await upsert({ scope: { kind: "USER" }, title: "Own notes", text: "private" }, leaving.token)).id;
    const shared = (await upsert({ scope: GLOBAL, title: "Shared page", text: "for all" }, leaving.token)).id;
    await app.database.db.knex("users").where({ id: leaving.user.id }).delete();
    const rows = await app.database.db.knex("documents").whereIn("id", [own, shared]).select("id", "createdBy", "updatedBy");
    expect(rows).toEqual([{ id: shared, createdBy: null, updatedBy: null }]);
  });

  it("an admin reaches everything", async () => {
    expect(await found(admin.token)).toEqual(expect.arrayContaining([aliceDoc, guildDoc, globalDoc]));
  });
});
