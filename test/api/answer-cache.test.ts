/**
 * The answer cache: exact hits after normalization, similar hits from the cosine similarity threshold up, TTL
 * (never served once expired, then swept), hit counts exact under concurrent hits, replacement, invalidation by
 * source document, the knowledge base's one dimension count, and who reaches which scope.
 */
import type { Knex } from "knex";
import { Role } from "../../src/modules/user/role.enum";
import { ensureKnowledgeBase, KnowledgeScopeKind, type Scope } from "../../src/modules/knowledge/scope";
import { invalidateAnswers, normalizeQuestion, questionHash } from "../../src/modules/knowledge/answer-cache.service";
import { AnswerCacheSweeper } from "../../src/modules/knowledge/answer-cache.sweeper";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let admin: TestUser;
let bot: TestUser; // a service granted the DISCORD origin
let stranger: TestUser; // a service without grants
let alice: TestUser;
let bob: TestUser;

const STORE = `mutation($input: StoreAnswerInput!) {
  storeAnswer(input: $input) { id question answer model metadata hitCount lastHitAt expiresAt createdAt sourceDocumentIds }
}`;
const ASK = `query($q: String!, $scope: KnowledgeScopeInput!, $e: [Float!]) {
  cachedAnswer(question: $q, scope: $scope, embedding: $e) { match similarity entry { id question answer hitCount lastHitAt sourceDocumentIds } }
}`;
const DELETE = `mutation($id: UUID!) { deleteCachedAnswer(id: $id) }`;
const CLEAR = `mutation($scope: KnowledgeScopeInput!) { clearAnswerCache(scope: $scope) }`;

const GLOBAL = { kind: "GLOBAL" };
let guilds = 0;
/** A guild of its own for each test, so that counts are the test's own. */
const newGuild = () => ({ kind: "GUILD", guildId: String(900_000_000_000 + ++guilds) });
const user = (u: TestUser) => ({ kind: "USER", userId: u.user.id });

const knex = () => app.database.db.knex;
const store = async (input: Record<string, unknown>, token = alice.token) => (await app.ok(STORE, { input: { scope: user(alice), ...input } }, token)).storeAnswer;
const ask = async (q: string, scope: Record<string, unknown>, token: string, e?: number[]) => (await app.ok(ASK, { q, scope, e }, token)).cachedAnswer;
const entries = (baseScope: Scope) => knex()("query_cache as q").join("knowledge_bases as kb", "kb.id", "q.knowledge_base_id").where("kb.scope", baseScope.kind).where((w) => {
  if (baseScope.guildId) w.where("kb.guild_id", baseScope.guildId);
  if (baseScope.userId) w.where("kb.user_id", baseScope.userId);
}).orderBy("q.question").pluck("q.question");
const count = async (query: Knex.QueryBuilder) => Number((await query.count({ n: "*" }))[0].n);
const userScope = (u: TestUser): Scope => ({ kind: KnowledgeScopeKind.USER, guildId: null, userId: u.user.id });

/** A documents row in the scope's knowledge base, written directly: the answer cache only needs it to exist. */
async function insertDocument(scope: Scope, title: string): Promise<string> {
  const base = await ensureKnowledgeBase(knex(), scope);
  const [{ id }] = await knex()("documents")
    .insert({ knowledgeBaseId: base.id, title, language: "english", sizeBytes: 1, contentSha256: "0".repeat(64), chunkCount: 0 })
    .returning("id");
  return id;
}

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
});
afterAll(() => app.dispose());

describe("normalizeQuestion", () => {
  it("folds case, width and spacing and drops trailing ?!. only", () => {
    expect(normalizeQuestion("  What   is\tParley?! ")).toBe("what is parley");
    expect(normalizeQuestion("ＷＨＡＴ is Parley？")).toBe("what is parley");
    expect(normalizeQuestion("Is v1.2 out... ?")).toBe("is v1.2 out");
    expect(normalizeQuestion("¿Qué es Parley?")).toBe("¿qué es parley");
    expect(questionHash("What is Parley?")).toBe(questionHash("what is parley"));
    expect(questionHash("What is Parley?")).toMatch(/^[0-9a-f]{64}$/);
    expect(questionHash("What is Parley?")).not.toBe(questionHash("What is Parley for?"));
  });
});

describe("storeAnswer and cachedAnswer", () => {
  it("serve the same question after normalization, count the hit, and miss other questions", async () => {
    const stored = await store({ question: "What is Parley?", answer: "A GraphQL server.", model: "m1", metadata: { lang: "en" } });
    expect(stored).toMatchObject({ question: "What is Parley?", answer: "A GraphQL server.", model: "m1", metadata: { lang: "en" }, hitCount: 0, lastHitAt: null, sourceDocumentIds: [] });
    const hit = await ask("  what   is parley ", user(alice), alice.token);
    expect(hit).toMatchObject({ match: "EXACT", similarity: null, entry: { id: stored.id, answer: "A GraphQL server.", hitCount: 1 } });
    expect(hit.entry.lastHitAt).not.toBeNull();
    expect((await ask("ＷＨＡＴ IS PARLEY？", user(alice), alice.token)).entry.hitCount).toBe(2);
    expect(await ask("What is Parley for?", user(alice), alice.token)).toBeNull();
    // Bob's own scope is another cache.
    expect(await ask("What is Parley?", user(bob), bob.token)).toBeNull();
    expect(await app.errorCode(ASK, { q: "?!", scope: user(alice) }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("store with the configured TTL by default, or the one given", async () => {
    const byDefault = await store({ question: "default ttl", answer: "a" });
    expect(Date.parse(byDefault.expiresAt) - Date.parse(byDefault.createdAt)).toBe(app.database.config.knowledge.answerCacheTtlSeconds * 1000);
    const short = await store({ question: "short ttl", answer: "a", ttlSeconds: 60 });
    expect(Date.parse(short.expiresAt) - Date.parse(short.createdAt)).toBe(60_000);
    for (const bad of [{ ttlSeconds: 0 }, { ttlSeconds: 365 * 86_400 + 1 }, { question: " ?? " }, { answer: "  " }, { metadata: [1] }, { model: "" }]) {
      const { body } = await app.gql(STORE, { input: { scope: user(alice), question: "q", answer: "a", ...bad } }, alice.token);
      expect([JSON.stringify(bad), body.errors?.[0].extensions?.code]).toEqual([JSON.stringify(bad), "BAD_USER_INPUT"]);
    }
    expect(await entries(userScope(alice))).toEqual(["default ttl", "short ttl"]);
  });

  it("replace the answer stored for the same question: new answer and sources, hits from 0", async () => {
    const doc = await insertDocument(userScope(alice), "old source");
    const first = await store({ question: "How do I log in?", answer: "old", sourceDocumentIds: [doc] });
    await ask("how do i log in", user(alice), alice.token);
    await ask("how do i log in", user(alice), alice.token);
    const second = await store({ question: "how do I log in", answer: "new", ttlSeconds: 120 });
    expect(second).toMatchObject({ id: first.id, question: "how do I log in", answer: "new", hitCount: 0, lastHitAt: null, sourceDocumentIds: [] });
    expect(Date.parse(second.expiresAt) - Date.parse(second.createdAt)).toBe(120_000);
    expect(await entries(userScope(alice))).toEqual(["how do I log in"]);
    expect(await knex()("query_cache_sources").where({ queryCacheId: first.id })).toEqual([]);
  });

  it("with an embedding, serve the most similar question from ANSWER_CACHE_SIMILARITY (0.95) up, and only then", async () => {
    const scope = newGuild();
    const password = await store({ scope, question: "How do I reset my password?", answer: "Settings, then Reset.", embedding: [1, 0, 0, 0] }, bot.token);
    const account = await store({ scope, question: "How do I delete my account?", answer: "Write to support.", embedding: [0, 1, 0, 0] }, bot.token);
    // cos([0.99, 0.1, 0, 0], e0) = 0.99 / sqrt(0.9901) ≈ 0.99493
    const near = await ask("password reset, how?", scope, bot.token, [0.99, 0.1, 0, 0]);
    expect(near).toMatchObject({ match: "SIMILAR", entry: { id: password.id, hitCount: 1 } });
    expect(near.similarity).toBeCloseTo(0.99 / Math.sqrt(0.9901), 6);
    // The nearest of the two wins: cos([0.2, 0.98, 0, 0], e1) ≈ 0.9798.
    expect(await ask("remove my account", scope, bot.token, [0.2, 0.98, 0, 0])).toMatchObject({ match: "SIMILAR", entry: { id: account.id } });
    // cos([0.9, 0.5, 0, 0], e0) ≈ 0.874: below the threshold, a miss, and nothing counted.
    expect(await ask("something else", scope, bot.token, [0.9, 0.5, 0, 0])).toBeNull();
    // An exact match goes first whatever the embedding says.
    expect(await ask("How do I reset my password", scope, bot.token, [0, 0, 0, 1])).toMatchObject({ match: "EXACT", similarity: null, entry: { id: password.id, hitCount: 2 } });
    const counts = await knex()("query_cache").whereIn("id", [password.id, account.id]).orderBy("question").select("hitCount");
    expect(counts).toEqual([{ hitCount: 1 }, { hitCount: 2 }]); // delete my account, reset my password
  });

  it("count every one of 20 concurrent hits", async () => {
    const scope = newGuild();
    const { id } = await store({ scope, question: "busy question", answer: "a", embedding: [0, 0, 1, 0] }, bot.token);
    const exact = await Promise.all(Array.from({ length: 20 }, () => ask("Busy question?", scope, bot.token)));
    expect(exact.map((hit) => hit.entry.hitCount).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const similar = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(`busy ${i}`, scope, bot.token, [0, 0.01, 1, 0])));
    expect(similar.every((hit) => hit.match === "SIMILAR")).toBe(true);
    expect(similar.map((hit) => hit.entry.hitCount).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 21));
    expect((await knex()("query_cache").where({ id }).first("hitCount")).hitCount).toBe(40);
  });

  it("never serve an expired answer, which the sweeper then deletes in batches", async () => {
    const scope = newGuild();
    const live = await store({ scope, question: "still good", answer: "a", embedding: [1, 1, 0, 0] }, bot.token);
    const expired: string[] = [];
    for (const [i, question] of ["gone one", "gone two", "gone three"].entries()) {
      expired.push((await store({ scope, question, answer: "old", embedding: [1, 0, 0, i] }, bot.token)).id);
    }
    await knex()("query_cache").whereIn("id", expired).update({ expiresAt: knex().raw("now() - interval '1 second'") });
    expect(await ask("gone one", scope, bot.token)).toBeNull();
    expect(await ask("something like gone one", scope, bot.token, [1, 0, 0, 0])).toBeNull(); // only the expired ones are that near
    expect(await ask("still good", scope, bot.token)).toMatchObject({ entry: { id: live.id } });
    expect(await knex()("query_cache").whereIn("id", expired).select("hitCount")).toEqual([{ hitCount: 0 }, { hitCount: 0 }, { hitCount: 0 }]);

    const sweeper = new AnswerCacheSweeper(knex(), app.server.log, { batchSize: 2 });
    try {
      expect(await sweeper.sweep()).toBeGreaterThanOrEqual(3); // other tests' expired rows may go too
    } finally {
      await sweeper.dispose();
    }
    expect(await knex()("query_cache").whereIn("id", [...expired, live.id]).pluck("id")).toEqual([live.id]);
    expect(await count(knex()("query_cache").where("expiresAt", "<=", knex().fn.now()))).toBe(0);
  });

  it("a store with a real one-second TTL is served, then not", async () => {
    await store({ question: "brief", answer: "a", ttlSeconds: 1 });
    expect(await ask("brief", user(alice), alice.token)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await ask("brief", user(alice), alice.token)).toBeNull();
  });
});

describe("source documents", () => {
  it("are named by id, sorted, and must exist in knowledge the writer may read (NOT_FOUND, nothing stored)", async () => {
    const [a, b] = [await insertDocument(userScope(alice), "a"), await insertDocument(userScope(alice), "b")];
    const globalDoc = await insertDocument({ kind: KnowledgeScopeKind.GLOBAL, guildId: null, userId: null }, "global");
    const bobs = await insertDocument(userScope(bob), "bob's");
    const stored = await store({ question: "sourced", answer: "a", sourceDocumentIds: [b, a, globalDoc, a] });
    expect(stored.sourceDocumentIds).toEqual([a, b, globalDoc].sort());
    for (const sources of [[a, bobs], ["00000000-0000-4000-8000-000000000000"]]) {
      const { body } = await app.gql(STORE, { input: { scope: user(alice), question: "sourced badly", answer: "a", sourceDocumentIds: sources } }, alice.token);
      expect(body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
      expect(body.errors?.[0].message).not.toContain(a);
    }
    expect(await entries(userScope(alice))).toEqual(["sourced"]);
  });

  it("invalidateAnswers drops every answer built from any of the documents, and only those", async () => {
    const [a, b, c] = [await insertDocument(userScope(alice), "a"), await insertDocument(userScope(alice), "b"), await insertDocument(userScope(alice), "c")];
    await store({ question: "from a", answer: "1", sourceDocumentIds: [a] });
    await store({ question: "from a and b", answer: "2", sourceDocumentIds: [a, b] });
    await store({ question: "from b", answer: "3", sourceDocumentIds: [b] });
    await store({ question: "from c", answer: "4", sourceDocumentIds: [c] });
    await store({ question: "from nothing", answer: "5" });
    expect(await knex().transaction((trx) => invalidateAnswers(trx, [a, a]))).toBe(2);
    expect(await entries(userScope(alice))).toEqual(["from b", "from c", "from nothing"]);
    expect(await knex().transaction((trx) => invalidateAnswers(trx, [b, c]))).toBe(2);
    expect(await entries(userScope(alice))).toEqual(["from nothing"]);
    expect(await knex().transaction((trx) => invalidateAnswers(trx, []))).toBe(0);
    // Rolled back with its transaction, like the document change it belongs to.
    await store({ question: "from c again", answer: "6", sourceDocumentIds: [c] });
    await expect(
      knex().transaction(async (trx) => {
        expect(await invalidateAnswers(trx, [c])).toBe(1);
        throw new Error("the document change failed");
      }),
    ).rejects.toThrow("the document change failed");
    expect(await entries(userScope(alice))).toEqual(["from c again", "from nothing"]);
  });
});

describe("source documents, through the document API", () => {
  const UPSERT = `mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { id } }`;
  const upsert = async (input: Record<string, unknown>) => (await app.ok(UPSERT, { input: { scope: user(alice), ...input } }, alice.token)).upsertDocument.id;

  it("an answer goes when a document it was built from is changed or deleted", async () => {
    const a = await upsert({ title: "A", text: "Parley stores chats." });
    const b = await upsert({ title: "B", text: "Parley serves GraphQL." });
    await store({ question: "from a", answer: "1", sourceDocumentIds: [a] });
    await store({ question: "from b", answer: "2", sourceDocumentIds: [b] });
    await store({ question: "from both", answer: "3", sourceDocumentIds: [a, b] });
    await upsert({ id: a, title: "A", text: "Parley stores chats, and more now." });
    expect(await entries(userScope(alice))).toEqual(["from b"]);
    expect(await app.ok(`mutation($id: UUID!) { deleteDocument(id: $id) }`, { id: b }, alice.token)).toEqual({ deleteDocument: true });
    expect(await entries(userScope(alice))).toEqual([]);
  });
});

describe("embedding dimensions", () => {
  it("are set by the first embedding stored in a knowledge base; another count is BAD_USER_INPUT with nothing stored", async () => {
    const base = () => knex()("knowledge_bases").where({ scope: "user", userId: alice.user.id }).first("dimensions", "embeddingModel");
    await store({ question: "plain", answer: "a" });
    expect(await base()).toEqual({ dimensions: null, embeddingModel: null });
    await store({ question: "four", answer: "a", embedding: [1, 2, 3, 4], embeddingModel: "tiny-embed" });
    expect(await base()).toEqual({ dimensions: 4, embeddingModel: "tiny-embed" });
    const wrong = await app.gql(STORE, { input: { scope: user(alice), question: "three", answer: "a", embedding: [1, 2, 3] } }, alice.token);
    expect(wrong.body.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "embedding", expectedDimensions: 4, dimensions: 3 });
    const otherModel = await app.gql(STORE, { input: { scope: user(alice), question: "other", answer: "a", embedding: [1, 2, 3, 4], embeddingModel: "big-embed" } }, alice.token);
    expect(otherModel.body.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "embeddingModel" });
    for (const embedding of [[], [0, 0, 0, 0]]) {
      expect(await app.errorCode(STORE, { input: { scope: user(alice), question: "bad vector", answer: "a", embedding } }, alice.token)).toBe("BAD_USER_INPUT");
    }
    expect(await app.errorCode(ASK, { q: "four", scope: user(alice), e: [1, 2, 3] }, alice.token)).toBe("BAD_USER_INPUT");
    expect(await entries(userScope(alice))).toEqual(["four", "plain"]);
  });

  it("agree between concurrent first writers: one count wins, the other is refused", async () => {
    const scope = newGuild();
    const results = await Promise.all([
      app.gql(STORE, { input: { scope, question: "three dims", answer: "a", embedding: [1, 2, 3] } }, bot.token),
      app.gql(STORE, { input: { scope, question: "five dims", answer: "a", embedding: [1, 2, 3, 4, 5] } }, bot.token),
    ]);
    const won = results.filter(({ body }) => !body.errors);
    expect(won).toHaveLength(1);
    expect(results.find(({ body }) => body.errors)!.body.errors![0].extensions?.code).toBe("BAD_USER_INPUT");
    const { dimensions } = await knex()("knowledge_bases").where({ scope: "guild", guildId: scope.guildId }).first("dimensions");
    expect(dimensions).toBe(won[0].body.data!.storeAnswer.question === "three dims" ? 3 : 5);
    expect(await entries({ kind: KnowledgeScopeKind.GUILD, guildId: scope.guildId, userId: null })).toEqual([won[0].body.data!.storeAnswer.question]);
  });
});

describe("who reaches which cache", () => {
  it("a member reads and writes their own, reads GLOBAL, and reaches no one else's", async () => {
    const mine = await store({ question: "my secret question", answer: "my secret answer" });
    expect(await app.errorCode(ASK, { q: "my secret question", scope: user(alice) }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(STORE, { input: { scope: user(alice), question: "planted", answer: "x" } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DELETE, { id: mine.id }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(CLEAR, { scope: user(alice) }, bob.token)).toBe("FORBIDDEN");
    expect(await entries(userScope(alice))).toEqual(["my secret question"]);

    expect(await app.errorCode(STORE, { input: { scope: GLOBAL, question: "global by a member", answer: "x" } }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(CLEAR, { scope: GLOBAL }, alice.token)).toBe("FORBIDDEN");
    const global = await store({ scope: GLOBAL, question: `global question ${alice.user.id}`, answer: "for everyone" }, admin.token);
    expect(await ask(`global question ${alice.user.id}`, GLOBAL, bob.token)).toMatchObject({ entry: { id: global.id, answer: "for everyone" } });
    expect(await app.errorCode(DELETE, { id: global.id }, bob.token)).toBe("FORBIDDEN"); // readable, not writable

    expect(await app.ok(DELETE, { id: mine.id }, alice.token)).toEqual({ deleteCachedAnswer: true });
    expect(await app.errorCode(DELETE, { id: mine.id }, alice.token)).toBe("NOT_FOUND");
    expect(await app.ok(DELETE, { id: global.id }, admin.token)).toEqual({ deleteCachedAnswer: true });
  });

  it("a service reaches a guild's cache only with the DISCORD grant; admins clear any scope", async () => {
    const scope = newGuild();
    expect(await app.errorCode(STORE, { input: { scope, question: "guild q", answer: "x" } }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(STORE, { input: { scope, question: "guild q", answer: "x" } }, alice.token)).toBe("FORBIDDEN");
    await store({ scope, question: "guild q", answer: "guild answer" }, bot.token);
    await store({ scope, question: "guild q2", answer: "guild answer 2" }, bot.token);
    expect(await app.errorCode(ASK, { q: "guild q", scope }, stranger.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(ASK, { q: "guild q", scope }, alice.token)).toBe("FORBIDDEN");
    expect(await ask("guild q", scope, bot.token)).toMatchObject({ entry: { answer: "guild answer" } });
    expect(await app.errorCode(CLEAR, { scope }, stranger.token)).toBe("FORBIDDEN");
    // A member's own scope is not the guild service's (alice has no Discord id).
    expect(await app.errorCode(STORE, { input: { scope: user(alice), question: "q", answer: "x" } }, bot.token)).toBe("FORBIDDEN");
    expect(await app.ok(CLEAR, { scope }, admin.token)).toEqual({ clearAnswerCache: 2 });
    expect(await ask("guild q", scope, bot.token)).toBeNull();
    expect(await app.ok(CLEAR, { scope: newGuild() }, bot.token)).toEqual({ clearAnswerCache: 0 });
    const audits = await knex()("audit_logs").where({ action: "answer_cache.clear" }).orderBy("createdAt").select("actorId", "details");
    expect(audits.map((row) => [row.actorId, row.details.deleted])).toEqual([[admin.user.id, 2]]);
  });
});

describe("without pgvector", () => {
  let plain: TestApp;
  beforeAll(async () => {
    plain = await createTestApp();
    // As on a server where the extension was never installed: the vector columns go with it.
    await plain.database.db.knex.raw("drop extension vector cascade");
  });
  afterAll(() => plain?.dispose());

  it("an embedding is FEATURE_UNAVAILABLE naming the extension; answers without one are stored and served", async () => {
    const member = await plain.makeUser(Role.MEMBER);
    const scope = { kind: "USER" };
    const refused = await plain.gql(STORE, { input: { scope, question: "q", answer: "a", embedding: [1, 0] } }, member.token);
    expect(refused.body.errors?.[0].extensions).toMatchObject({ code: "FEATURE_UNAVAILABLE", missing: "vector" });
    expect(await count(plain.database.db.knex("query_cache"))).toBe(0);
    const stored = (await plain.ok(STORE, { input: { scope, question: "What now?", answer: "This." } }, member.token)).storeAnswer;
    expect((await plain.ok(ASK, { q: "what now", scope }, member.token)).cachedAnswer).toMatchObject({ match: "EXACT", entry: { id: stored.id, hitCount: 1 } });
    const similar = await plain.gql(ASK, { q: "what then", scope, e: [1, 0] }, member.token);
    expect(similar.body.errors?.[0].extensions).toMatchObject({ code: "FEATURE_UNAVAILABLE", missing: "vector" });
  });
});
