/**
 * searchMessages over real HTTP: the query language (stems, phrases, OR, exclusions), filters, ranking and
 * highlights, what is not searchable (encrypted text, streams in progress), bad input, who finds what, the
 * statements a page of hits costs, that the statement can use the GIN index, and rebuilding that index for
 * another SEARCH_LANGUAGE.
 */
import type { Knex } from "knex";
import { Role } from "../../src/modules/user/role.enum";
import { createTestDatabase, testDbKind, type TestDatabase } from "../helpers/db";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements } from "../helpers/statements";
import { parleyCli } from "../helpers/cli";
import { MESSAGE_SEARCH_INDEX, RANKED_CANDIDATES, reindexMessageSearch, searchVector } from "../../src/modules/search/message-search.service";

const SEARCH = `query($q: String!, $filter: MessageSearchFilter, $first: Int) {
  searchMessages(query: $q, filter: $filter, first: $first) { rank highlight message { id content role conversation { id } } }
}`;
const CREATE = `mutation($input: CreateConversationInput!) { createConversation(input: $input) { id } }`;
const ADD = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`;
/** An encryption key ring (a 32-byte key, base64) for the second server of the encryption case. */
const RING = { MESSAGE_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString("base64")}` };

interface Hit {
  rank: number;
  highlight: string;
  message: { id: string; content: string; role: string; conversation: { id: string } };
}

let app: TestApp;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
/** Alice's web conversation, her API-origin conversation, and Bob's web conversation. */
let aliceWeb: string;
let aliceApi: string;
let bobWeb: string;
/** Message ids by a short name. */
const ids: Record<string, string> = {};

async function conversation(owner: TestUser, origin = "WEB"): Promise<string> {
  return (await app.ok(CREATE, { input: { title: `${owner.user.displayName}'s ${origin}`, origin } }, owner.token)).createConversation.id;
}

async function say(name: string, writer: TestUser, conversationId: string, content: string, role = "USER", on = app): Promise<string> {
  ids[name] = (await on.ok(ADD, { input: { conversationId, content, role } }, writer.token)).addMessage.id;
  return ids[name];
}

async function search(token: string, q: string, filter?: Record<string, unknown>, first?: number): Promise<Hit[]> {
  return (await app.ok(SEARCH, { q, filter, first }, token)).searchMessages;
}

/** The names (keys of `ids`) of the hits, in the order returned. */
async function found(token: string, q: string, filter?: Record<string, unknown>, first?: number): Promise<string[]> {
  const byId = new Map(Object.entries(ids).map(([name, id]) => [id, name]));
  return (await search(token, q, filter, first)).map((hit) => byId.get(hit.message.id) ?? `unnamed ${hit.message.id}`);
}

async function errorOf(token: string, q: string, filter?: Record<string, unknown>, first?: number) {
  const { body } = await app.gql(SEARCH, { q, filter, first }, token);
  expect(body.data?.searchMessages ?? null).toBeNull();
  return { code: body.errors?.[0].extensions?.code, message: body.errors?.[0].message ?? "" };
}

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  admin = await app.makeUser(Role.ADMIN, "admin");
  aliceWeb = await conversation(alice);
  aliceApi = await conversation(alice, "API");
  bobWeb = await conversation(bob);
  await say("runs", alice, aliceWeb, "The dog runs in the park every morning");
  await say("ran", alice, aliceWeb, "She ran to the store before it closed");
  await say("runningShoes", alice, aliceWeb, "New running shoes are on sale this week");
  await say("shoesForRunning", alice, aliceWeb, "I bought shoes for running, not for hiking");
  await say("assistant", admin, aliceWeb, "Reminder: the weekly report runs on Fridays", "ASSISTANT");
  await say("apiTelescope", alice, aliceApi, "The telescope arrived damaged");
  await say("bobTelescope", bob, bobWeb, "My telescope shows Saturn's rings, and the dog runs around it");
});
afterAll(() => app.dispose());

describe("the query language", () => {
  it("matches other forms of a word through english stemming (run, runs, running; not the irregular ran)", async () => {
    expect((await found(alice.token, "running")).sort()).toEqual(["assistant", "runningShoes", "runs", "shoesForRunning"].sort());
    expect((await found(alice.token, "runs")).sort()).toEqual(["assistant", "runningShoes", "runs", "shoesForRunning"].sort());
    expect(await found(alice.token, "ran")).toEqual(["ran"]);
  });

  it("matches a quoted phrase only in that order, unquoted words anywhere", async () => {
    expect(await found(alice.token, '"running shoes"')).toEqual(["runningShoes"]);
    expect((await found(alice.token, "running shoes")).sort()).toEqual(["runningShoes", "shoesForRunning"]);
  });

  it("excludes -words and accepts OR", async () => {
    expect((await found(alice.token, "running -shoes")).sort()).toEqual(["assistant", "runs"]);
    expect((await found(alice.token, "park or store")).sort()).toEqual(["ran", "runs"]);
    expect((await found(alice.token, "telescope OR hiking")).sort()).toEqual(["apiTelescope", "shoesForRunning"]);
  });

  it("answers an empty list for words found nowhere, without an error", async () => {
    expect(await search(alice.token, "xylophone")).toEqual([]);
  });
});

describe("filters", () => {
  it("narrows to one conversation", async () => {
    expect(await found(alice.token, "telescope", { conversationId: aliceApi })).toEqual(["apiTelescope"]);
    expect(await found(alice.token, "telescope", { conversationId: aliceWeb })).toEqual([]);
  });

  it("narrows to a role", async () => {
    expect(await found(alice.token, "running", { role: "ASSISTANT" })).toEqual(["assistant"]);
    expect((await found(alice.token, "running", { role: "USER" })).sort()).toEqual(["runningShoes", "runs", "shoesForRunning"]);
  });

  it("narrows to a time range, from inclusive and to exclusive", async () => {
    const knex = app.database.db.knex;
    const day = (d: number) => new Date(Date.UTC(2026, 0, d));
    await knex("messages").where({ id: ids.runs }).update({ createdAt: day(1) });
    await knex("messages").where({ id: ids.runningShoes }).update({ createdAt: day(2) });
    await knex("messages").where({ id: ids.shoesForRunning }).update({ createdAt: day(3) });
    await knex("messages").where({ id: ids.assistant }).update({ createdAt: day(4) });
    const range = (from?: Date, to?: Date) => found(alice.token, "running", { from: from?.toISOString(), to: to?.toISOString() });
    expect((await range(day(2), day(4))).sort()).toEqual(["runningShoes", "shoesForRunning"]);
    expect((await range(day(3))).sort()).toEqual(["assistant", "shoesForRunning"]);
    expect(await range(undefined, day(2))).toEqual(["runs"]);
    expect((await errorOf(alice.token, "running", { from: day(4).toISOString(), to: day(4).toISOString() })).code).toBe("BAD_USER_INPUT");
  });
});

describe("ranking and highlights", () => {
  let owner: TestUser;
  let chat: string;
  beforeAll(async () => {
    owner = await app.makeUser(Role.MEMBER, "ranker");
    chat = await conversation(owner);
  });

  it("puts denser matches first, equal ones newest first, and returns at most `first`", async () => {
    await say("once", owner, chat, "The budget meeting moved to Tuesday, bring the slides and the coffee order");
    await say("dense", owner, chat, "budget budget budget: the budget is the budget");
    await say("twiceOld", owner, chat, "Is the budget approved? The budget review is late");
    await say("twiceNew", owner, chat, "Is the budget approved? The budget review is late");
    // Equal texts rank equal; a minute apart, their order cannot hang on a millisecond.
    await app.database.db.knex("messages").where({ id: ids.twiceOld }).update({ createdAt: new Date(Date.now() - 60_000) });
    const hits = await search(owner.token, "budget");
    expect(await found(owner.token, "budget")).toEqual(["dense", "twiceNew", "twiceOld", "once"]);
    expect(hits[0].rank).toBeGreaterThan(hits[1].rank);
    expect(hits[1].rank).toBe(hits[2].rank);
    expect(hits[2].rank).toBeGreaterThan(hits[3].rank);
    expect(hits[3].rank).toBeGreaterThan(0);
    expect(await found(owner.token, "budget", undefined, 2)).toEqual(["dense", "twiceNew"]);
  });

  it("marks the matched words with <b> in short fragments of the text", async () => {
    const filler = Array.from({ length: 60 }, (_, i) => `f${i}`).join(" ");
    await say("long", owner, chat, `${filler} the glacier melted ${filler} glaciers retreat ${filler}`);
    const [hit] = await search(owner.token, "glacier");
    expect(hit.message.id).toBe(ids.long);
    expect(hit.highlight).toContain("<b>glacier</b>");
    expect(hit.highlight).toContain("<b>glaciers</b>");
    expect(hit.highlight).toContain(" … "); // two fragments, the filler between them left out
    expect(hit.highlight.length).toBeLessThan(hit.message.content.length / 3);
    expect(hit.highlight).not.toContain("f30 "); // 30 words from any match, in every stretch of filler
  });

  it(`ranks only the ${RANKED_CANDIDATES} newest matches; a filter reaches older ones`, async () => {
    const member = await app.makeUser(Role.MEMBER, "comet watcher");
    const chat = await conversation(member);
    // Written in SQL: thousands of messages through the API would only slow the test down.
    await app.database.db.knex.raw(
      `insert into messages (conversation_id, seq, author_id, role, content, created_at, updated_at)
       select ?, n, ?, 'user', case when n <= 3 then 'comet comet comet comet, the comet!' else 'a comet ' || n || ' was seen' end, t, t
       from generate_series(1, ?) n, lateral (select case when n <= 3 then timestamptz '2020-01-01' else timestamptz '2026-01-01' end + n * interval '1 second' as t) x`,
      [chat, member.user.id, RANKED_CANDIDATES + 3],
    );
    const contents = async (filter?: Record<string, unknown>) =>
      (await search(member.token, "comet", filter, 3)).map((hit) => hit.message.content);
    // The three densest matches are the three oldest, beyond the newest RANKED_CANDIDATES.
    expect(await contents()).toEqual([RANKED_CANDIDATES + 3, RANKED_CANDIDATES + 2, RANKED_CANDIDATES + 1].map((n) => `a comet ${n} was seen`));
    expect(await contents({ to: "2025-01-01T00:00:00Z" })).toEqual(Array(3).fill("comet comet comet comet, the comet!"));
  });

  it("escapes the text, so that <b> markers are the only markup", async () => {
    await say("html", owner, chat, `Look: quasar <script>alert("x")</script> & <b>bold</b> text`);
    const [hit] = await search(owner.token, "quasar");
    expect(hit.highlight).toContain("<b>quasar</b>");
    expect(hit.highlight).toContain("&lt;script&gt;");
    expect(hit.highlight).toContain("&amp;");
    expect(hit.highlight).toContain("&lt;b&gt;bold");
    expect(hit.highlight).not.toContain("<script>");
    expect(hit.message.content).toContain("<script>"); // the message itself is returned as written
  });
});

describe("what is not searchable", () => {
  it("leaves out encrypted messages, which the database holds only as ciphertext", async () => {
    const encrypting = await createTestApp(RING, app.database);
    try {
      await say("secretLighthouse", alice, aliceWeb, "Meet at the lighthouse at six", "USER", encrypting);
      await say("plainLighthouse", alice, aliceWeb, "The lighthouse keeper waved", "USER");
      const stored = await app.database.db.knex("messages").where({ id: ids.secretLighthouse }).first("content", "keyId");
      expect(stored).toEqual({ content: null, keyId: "k1" });
      expect(await found(alice.token, "lighthouse")).toEqual(["plainLighthouse"]);
      // The server holding the key finds no more: the text is not in the database to search.
      const fromEncrypting = (await encrypting.ok(SEARCH, { q: "lighthouse" }, alice.token)).searchMessages;
      expect(fromEncrypting.map((hit: Hit) => hit.message.id)).toEqual([ids.plainLighthouse]);
    } finally {
      await encrypting.dispose();
    }
  });

  it("finds a streamed reply once it has ended, not while it streams", async () => {
    const { startMessage } = await app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c, role: USER }) { id } }`, { c: aliceWeb }, alice.token);
    ids.streamed = startMessage.id;
    await app.ok(`mutation($m: UUID!) { appendMessageChunk(messageId: $m, index: 0, text: "the aurora was bright") { index } }`, { m: startMessage.id }, alice.token);
    expect(await found(alice.token, "aurora")).toEqual([]);
    await app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { id } }`, { m: startMessage.id }, alice.token);
    expect(await found(alice.token, "aurora")).toEqual(["streamed"]);
  });
});

describe("bad input", () => {
  it.each([
    ["an empty query", ""],
    ["a blank query", "   \t "],
    ["stop words only", "the and of"],
    ["punctuation only", "!!! ??? ..."],
    ["exclusions only", "-running"],
    ["an OR with an exclusion", "running or -shoes"],
    ["a NUL character", "run\u0000ning"],
    ["a query over 1,000 characters", "running ".repeat(130)],
  ])("refuses %s with BAD_USER_INPUT", async (_case, q) => {
    const { code, message } = await errorOf(alice.token, q);
    expect(code).toBe("BAD_USER_INPUT");
    expect(message).toMatch(/query/);
  });

  it("says why a query of stop words finds nothing", async () => {
    expect((await errorOf(alice.token, "the and of")).message).toMatch(/no words to search for/);
  });

  it("bounds first by MAX_PAGE_SIZE", async () => {
    expect((await errorOf(alice.token, "running", undefined, 101)).code).toBe("BAD_USER_INPUT");
    expect((await errorOf(alice.token, "running", undefined, 0)).code).toBe("BAD_USER_INPUT");
    expect(await search(alice.token, "running", undefined, 100)).toHaveLength(4);
  });

  it("refuses an anonymous caller", async () => {
    const { body } = await app.gql(SEARCH, { q: "running" });
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
  });
});

describe("who finds what", () => {
  it("a member finds only their own messages, by query or by naming another's conversation", async () => {
    expect(await found(bob.token, "telescope")).toEqual(["bobTelescope"]);
    expect(await found(bob.token, "running")).toEqual(["bobTelescope"]);
    expect(await found(alice.token, "saturn")).toEqual([]);
    // Another member's conversation answers exactly as conversation(id) and an unknown id do.
    const outsider = await errorOf(bob.token, "telescope", { conversationId: aliceApi });
    const unknown = await errorOf(bob.token, "telescope", { conversationId: "00000000-0000-4000-8000-000000000000" });
    const direct = await app.gql(`query($id: UUID!) { conversation(id: $id) { id } }`, { id: aliceApi }, bob.token);
    expect(outsider).toEqual({ code: "NOT_FOUND", message: direct.body.errors?.[0].message });
    expect(unknown).toEqual(outsider);
  });

  it("a service finds nothing without grants, then exactly what it was granted", async () => {
    const worker = await app.makeUser(Role.SERVICE, "search worker");
    expect(await found(worker.token, "telescope")).toEqual([]);
    expect((await errorOf(worker.token, "telescope", { conversationId: aliceApi })).code).toBe("NOT_FOUND");

    await app.grant(worker, { conversationId: aliceApi });
    expect(await found(worker.token, "telescope")).toEqual(["apiTelescope"]);
    expect(await found(worker.token, "telescope", { conversationId: aliceApi })).toEqual(["apiTelescope"]);
    expect((await errorOf(worker.token, "telescope", { conversationId: bobWeb })).code).toBe("NOT_FOUND");

    const webWorker = await app.makeUser(Role.SERVICE, "web worker");
    await app.grant(webWorker, { origin: "web" });
    expect((await found(webWorker.token, "telescope")).sort()).toEqual(["bobTelescope"]); // aliceApi is not WEB
    expect((await found(webWorker.token, "dog")).sort()).toEqual(["bobTelescope", "runs"]);
    expect((await errorOf(webWorker.token, "telescope", { conversationId: aliceApi })).code).toBe("NOT_FOUND");
  });

  it("an admin finds everyone's", async () => {
    expect((await found(admin.token, "telescope")).sort()).toEqual(["apiTelescope", "bobTelescope"]);
    expect(await found(admin.token, "telescope", { conversationId: bobWeb })).toEqual(["bobTelescope"]);
  });
});

describe("cost", () => {
  it("costs the same statements for 5 hits as for 20, authors and conversations included", async () => {
    const counted = await createTestApp({ AUTH_CACHE_SECONDS: "0" }, app.database);
    try {
      const counter = countStatements(counted);
      const searcher = await counted.makeUser(Role.ADMIN, "counting admin");
      for (let i = 0; i < 20; i++) {
        const member = await counted.makeUser(Role.MEMBER, `nebula person ${i}`);
        const chat = (await counted.ok(CREATE, { input: { title: `nebula chat ${i}` } }, member.token)).createConversation.id;
        await counted.ok(ADD, { input: { conversationId: chat, content: `nebula number ${i}` } }, member.token);
      }
      const knex = counted.database.db.knex;
      // The once-a-minute last_used_at write is not awaited: moved out of reach, it cannot fall into a count.
      await knex("api_keys").update({ lastUsedAt: knex.raw("now() + interval '1 day'") });
      const QUERY = `query($first: Int) { searchMessages(query: "nebula", first: $first) { highlight message { content author { displayName } conversation { title } } } }`;
      const few = await counter.run(QUERY, { first: 5 }, searcher.token);
      const many = await counter.run(QUERY, { first: 20 }, searcher.token);
      expect(few.data.searchMessages).toHaveLength(5);
      expect(many.data.searchMessages).toHaveLength(20);
      const names = new Set(many.data.searchMessages.map((hit: any) => `${hit.message.author.displayName}|${hit.message.conversation.title}`));
      expect(names.size).toBe(20); // 20 authors and 20 conversations: no loader merging hides a query per hit
      // The key, the search, the authors, the conversations.
      expect(many.statements).toHaveLength(4);
      expect(few.statements).toHaveLength(4);
    } finally {
      await counted.dispose();
    }
  });
});

/** The search statement an operation issued, with its bindings, as the test's own knex saw it go out. */
async function searchStatement(on: TestApp, token: string, q: string): Promise<{ sql: string; bindings: unknown[] }> {
  const seen: { sql: string; bindings: unknown[] }[] = [];
  const listener = (query: { sql: string; bindings: unknown[] }) => {
    if (/ts_rank_cd/.test(query.sql)) seen.push(query);
  };
  on.database.db.knex.on("query", listener);
  try {
    await on.ok(SEARCH, { q }, token);
  } finally {
    on.database.db.knex.off("query", listener);
  }
  expect(seen).toHaveLength(1);
  return seen[0];
}

/**
 * The plan of `statement` when PostgreSQL may read tables neither sequentially nor through a whole other index
 * (a plain index scan with a filter stands in for a sequential one): only an index that matches a condition
 * keeps the plan off the disabled paths. GIN is read by bitmap scans only.
 */
async function planWithoutSeqScan(knex: Knex, statement: { sql: string; bindings: unknown[] }): Promise<string> {
  return knex.transaction(async (trx) => {
    for (const path of ["seqscan", "indexscan", "indexonlyscan"]) await trx.raw(`set local enable_${path} = off`);
    const { rows } = await trx.raw(`explain ${statement.sql.replace(/\$\d+/g, "?")}`, statement.bindings as Knex.RawBinding[]);
    return rows.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n");
  });
}

/** The planner's statistics on the indexed expression: without them it guesses every word's frequency. */
async function statisticsDefinitions(knex: Knex): Promise<string[]> {
  const { rows } = await knex.raw("select pg_get_statisticsobjdef(oid) as definition from pg_statistic_ext where stxrelid = 'messages'::regclass");
  return rows.map((row: { definition: string }) => row.definition);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The search's condition answered by the GIN index. Its name alone is not enough: the index can also be read
 * whole, for its `content is not null` predicate only, in place of a sequential scan.
 */
const searchThroughIndex = (language: string) =>
  new RegExp(`Bitmap Index Scan on ${MESSAGE_SEARCH_INDEX} .*\\n\\s*Index Cond: \\(${escapeRegExp(searchVector(language))} @@ `);

async function indexDefinitions(knex: Knex): Promise<{ name: string; definition: string; valid: boolean }[]> {
  const { rows } = await knex.raw(
    `select c.relname as name, pg_get_indexdef(i.indexrelid) as definition, i.indisvalid as valid
       from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid = 'messages'::regclass and pg_get_indexdef(i.indexrelid) like '%to_tsvector%'`,
  );
  return rows;
}

describe("the index", () => {
  it("is defined on exactly the expression the search states, and the search statement can use it", async () => {
    expect(await indexDefinitions(app.database.db.knex)).toEqual([
      {
        name: MESSAGE_SEARCH_INDEX,
        definition: `CREATE INDEX ${MESSAGE_SEARCH_INDEX} ON public.messages USING gin (${searchVector("english")}) WHERE (content IS NOT NULL)`,
        valid: true,
      },
    ]);
    expect(await statisticsDefinitions(app.database.db.knex)).toEqual([`CREATE STATISTICS public.messages_content_search_stats ON ${searchVector("english")} FROM messages`]);
    const statement = await searchStatement(app, admin.token, "telescope");
    const plan = await planWithoutSeqScan(app.database.db.knex, statement);
    expect(plan).toMatch(searchThroughIndex("english"));
  });
});

describe("reindex-message-search", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.dispose());

  it("rebuilds the index for another SEARCH_LANGUAGE, which searches then use", async () => {
    if (testDbKind() === "postgres") {
      // As operators run it: a process of its own, beside the running database.
      const result = await parleyCli(["reindex-message-search"], { DATABASE_URL: database.url!, SEARCH_LANGUAGE: "simple" });
      expect(result).toMatchObject({ code: 0 });
      expect(result.stdout).toContain(`Rebuilt the message search index for "simple" (it was for "english")`);
    } else {
      // The in-memory PGlite of this test cannot be opened by another process.
      expect(await reindexMessageSearch(database.db.maintenance, "simple")).toEqual({ previous: "english", current: "simple" });
    }
    expect(await indexDefinitions(database.db.knex)).toEqual([
      {
        name: MESSAGE_SEARCH_INDEX,
        definition: `CREATE INDEX ${MESSAGE_SEARCH_INDEX} ON public.messages USING gin (${searchVector("simple")}) WHERE (content IS NOT NULL)`,
        valid: true,
      },
    ]);
    expect(await statisticsDefinitions(database.db.knex)).toEqual([`CREATE STATISTICS public.messages_content_search_stats ON ${searchVector("simple")} FROM messages`]);

    const simple = await createTestApp({ SEARCH_LANGUAGE: "simple" }, database);
    try {
      const carol = await simple.makeUser(Role.MEMBER, "carol");
      const root = await simple.makeUser(Role.ADMIN, "root");
      const chat = (await simple.ok(CREATE, { input: { title: "simple" } }, carol.token)).createConversation.id;
      for (const content of ["running late", "she runs", "the end"]) await simple.ok(ADD, { input: { conversationId: chat, content } }, carol.token);
      // No stemming, and no stop words, in the simple configuration.
      const hits = async (q: string) => (await simple.ok(SEARCH, { q }, carol.token)).searchMessages.map((hit: Hit) => hit.message.content);
      expect(await hits("running")).toEqual(["running late"]);
      expect(await hits("the")).toEqual(["the end"]);
      const plan = await planWithoutSeqScan(database.db.knex, await searchStatement(simple, root.token, "running"));
      expect(plan).toMatch(searchThroughIndex("simple"));
    } finally {
      await simple.dispose();
    }
  });
});
