import { randomUUID } from "node:crypto";
/**
 * Abuse limits: rate limits per token and per address (persisted in rate_limits and shared by every server
 * on the database, over HTTP and graphql-ws), query depth, complexity and token limits, the cap on
 * operations per websocket, and CORS. After every refusal the server still answers a normal request.
 */
import http from "node:http";
import WebSocket from "ws";
import { createClient, type Client } from "graphql-ws";
import { getIntrospectionQuery, parse, type FormattedExecutionResult, type OperationDefinitionNode } from "graphql";
import { startServer } from "../../src/server/app";
import { queryDepth } from "../../src/server/query-limits";
import { createTestApp, type GraphQLBody, type TestApp, type TestUser } from "../helpers/server";

const VIEWER = "{ viewer { id } }";
const HISTORY = `query($id: UUID!) { conversation(id: $id) { title messageCount messages(last: 50) {
  edges { node { id seq role content createdAt author { id displayName } } } pageInfo { hasPreviousPage startCursor } } } }`;
const INBOX = `{ conversations(first: 20) { totalCount edges { cursor node { id title updatedAt
  owner { id displayName } lastMessage { id role content createdAt author { id displayName } } } } pageInfo { hasNextPage endCursor } } }`;
/** A query `depth` field levels deep: conversation → messages → edges → node → conversation → … → a leaf. */
function deepQuery(depth: number): string {
  const path = ["messages(first: 1)", "edges", "node", "conversation"];
  const fields = Array.from({ length: depth - 2 }, (_, i) => path[i % path.length]);
  const leaf = ({ "messages(first: 1)": "totalCount", edges: "cursor", node: "id", conversation: "id" } as Record<string, string>)[fields[fields.length - 1]];
  return `query($id: UUID!) { conversation(id: $id) { ${fields.reduceRight((inner, field) => `${field} { ${inner} }`, leaf)} } }`;
}
/** `count` aliases of a 100-item connection: cheap to write, expensive to answer. */
const aliasBomb = (count: number, size = "100") =>
  `query${size === "$n" ? "($n: Int)" : ""} { ${Array.from({ length: count }, (_, i) => `c${i}: conversations(first: ${size}) { totalCount }`).join(" ")} }`;

let counter = 0;
const apps: TestApp[] = [];
const clients: Client[] = [];

async function newApp(env: Record<string, string> = {}): Promise<TestApp> {
  const app = await createTestApp(env);
  apps.push(app);
  return app;
}
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await Promise.all(apps.map((app) => app.dispose()));
});

interface Answer {
  status: number;
  headers: Headers;
  body: GraphQLBody;
}

/** POST /graphql through fetch, for the status and headers. */
async function post(app: TestApp, query: string, options: { token?: string; variables?: Record<string, unknown>; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${app.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLBody };
}

/** POST /graphql from another loopback address (Linux routes all of 127.0.0.0/8 to lo). */
function postFrom(app: TestApp, localAddress: string, query: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: app.server.port, path: "/graphql", method: "POST", localAddress, headers: { "content-type": "application/json", authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ query }));
  });
}

const codes = (answer: Answer) => answer.body.errors?.map((error) => error.extensions?.code);

/** Passes when the app still answers an ordinary query for `user`. */
async function expectStillServes(app: TestApp, user: TestUser): Promise<void> {
  const { status, body } = await post(app, VIEWER, { token: user.token });
  expect({ status, body }).toEqual({ status: 200, body: { data: { viewer: { id: user.user.id } } } });
}

interface Ws {
  client: Client;
  /** How many times the client (re)connected: a closed socket would show as a second connection. */
  connections(): number;
}

function connect(app: TestApp, user: TestUser): Ws {
  let connections = 0;
  const client = createClient({
    url: `${app.url.replace("http", "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
    lazy: false, // one socket for the client's life, so a closed one shows in connections()
    on: { connected: () => void connections++ },
  });
  clients.push(client);
  return { client, connections: () => connections };
}

/**
 * One operation over the socket. Resolves on the server's `complete`, which graphql-ws sends after its
 * onComplete hook, so the operation no longer counts once this resolves; rejects with the error payload.
 */
function run(client: Client, query: string, variables?: Record<string, unknown>): Promise<FormattedExecutionResult> {
  return new Promise((resolve, reject) => {
    let result: FormattedExecutionResult | undefined;
    client.subscribe<Record<string, unknown>, Record<string, unknown>>({ query, variables }, { next: (value) => void (result = value), error: reject, complete: () => resolve(result!) });
  });
}

/** The codes of a rejected ws operation. */
async function wsErrorCodes(operation: Promise<unknown>): Promise<unknown[]> {
  const errors = (await operation.then(
    () => [],
    (error: unknown) => error,
  )) as { extensions?: Record<string, unknown> }[];
  return errors.map((error) => error.extensions?.code);
}

async function makeConversation(app: TestApp, user: TestUser, messages: number): Promise<string> {
  const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "limits" }) { id } }`, {}, user.token);
  for (let i = 1; i <= messages; i++) {
    await app.ok(`mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`, { input: { conversationId: createConversation.id, content: `m${i}` } }, user.token);
  }
  return createConversation.id;
}

const user = (app: TestApp) => app.makeUser(undefined, `limits-${++counter}`);

describe("rate limit per token", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await newApp({ RATE_LIMIT_ENABLED: "true", RATE_LIMIT_MEMBER: "5", RATE_LIMIT_PER_IP: "1000", CORS_ORIGINS: "https://app.example" });
  });

  it("answers the request after the member budget with 429 RATE_LIMITED and Retry-After; other tokens are unaffected", async () => {
    const [alice, bob] = [await user(app), await user(app)];
    for (let i = 1; i <= 5; i++) expect((await post(app, VIEWER, { token: alice.token })).status).toBe(200);

    const refused = await post(app, VIEWER, { token: alice.token, headers: { origin: "https://app.example" } });
    expect(refused.status).toBe(429);
    expect(codes(refused)).toEqual(["RATE_LIMITED"]);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.body.errors?.[0].extensions).toEqual({ code: "RATE_LIMITED", retryAfterSeconds: retryAfter });
    expect(refused.body.data).toBeUndefined();
    // A browser client may read the 429 and its Retry-After.
    expect(refused.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(refused.headers.get("access-control-expose-headers")).toMatch(/retry-after/);

    await expectStillServes(app, bob);
  });

  it("counts in rate_limits, shared by a second server on the same database", async () => {
    const carol = await user(app);
    const keyId = (await app.database.db.knex("api_keys").where({ userId: carol.user.id }).first("id")).id as string;
    for (let i = 1; i <= 3; i++) expect((await post(app, VIEWER, { token: carol.token })).status).toBe(200);
    const row = await app.database.db.knex("rate_limits").where({ key: `key:${keyId}` }).first("points", "expire");
    expect(row?.points).toBe(3);
    expect(Number(row?.expire)).toBeGreaterThan(Date.now());
    expect(await app.database.db.knex("rate_limits").where({ key: "ip:127.0.0.1" }).first("key")).toBeDefined();

    const second = await startServer({ config: app.database.config, db: app.database.db });
    try {
      const secondApp = { ...app, url: `http://127.0.0.1:${second.port}` };
      for (let i = 4; i <= 5; i++) expect((await post(secondApp, VIEWER, { token: carol.token })).status).toBe(200);
      expect((await post(secondApp, VIEWER, { token: carol.token })).status).toBe(429);
      expect((await post(app, VIEWER, { token: carol.token })).status).toBe(429);
    } finally {
      await second.dispose();
    }
  });

  it("counts concurrent requests exactly, with at most one statement per request for address and token together", async () => {
    const frank = await user(app);
    const upserts: string[] = [];
    const count = ({ sql }: { sql: string }) => {
      if (/insert into rate_limits/i.test(sql)) upserts.push(sql);
    };
    const knex = app.database.db.knex;
    knex.on("query", count);
    let statuses: number[];
    try {
      statuses = await Promise.all(Array.from({ length: 12 }, async () => (await post(app, VIEWER, { token: frank.token })).status));
    } finally {
      knex.removeListener("query", count);
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
    // Requests arriving together share a statement; apart, each has one (both keys), never one per key.
    expect(upserts.length).toBeGreaterThanOrEqual(1);
    expect(upserts.length).toBeLessThanOrEqual(12);
  });

  it("limits graphql-ws operations too, keeping the socket open", async () => {
    const [dave, erin] = [await user(app), await user(app)];
    const ws = connect(app, dave);
    for (let i = 1; i <= 5; i++) expect((await run(ws.client, VIEWER)).data).toEqual({ viewer: { id: dave.user.id } });
    const refused = (await run(ws.client, VIEWER).then(() => [], (errors: unknown) => errors)) as GraphQLBody["errors"];
    expect(refused).toHaveLength(1);
    expect(refused![0].extensions).toEqual({ code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) });
    // The HTTP budget is the same budget.
    expect((await post(app, VIEWER, { token: dave.token })).status).toBe(429);
    expect(ws.connections()).toBe(1);
    await expectStillServes(app, erin);
  });
});

describe("rate limit per address", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await newApp({ RATE_LIMIT_ENABLED: "true", RATE_LIMIT_PER_IP: "4" });
  });

  it("counts every request from an address, with or without a valid token, and not other addresses", async () => {
    const [alice, bob] = [await user(app), await user(app)];
    expect((await post(app, VIEWER, { token: alice.token })).status).toBe(200);
    expect((await post(app, VIEWER, { token: bob.token })).status).toBe(200);
    expect((await post(app, VIEWER, { token: "pk_" + "A".repeat(43) })).status).toBe(401);
    expect((await post(app, "{ __typename }")).status).toBe(200);

    const refused = await post(app, VIEWER, { token: bob.token });
    expect(refused.status).toBe(429);
    expect(codes(refused)).toEqual(["RATE_LIMITED"]);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await post(app, "{ __typename }")).status).toBe(429);

    expect(await postFrom(app, "127.0.0.2", VIEWER, alice.token)).toBe(200);
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

describe("rate limits switched off", () => {
  it("never touches rate_limits", async () => {
    const app = await newApp();
    const alice = await user(app);
    for (let i = 0; i < 3; i++) await expectStillServes(app, alice);
    expect(await app.database.db.knex("rate_limits").count({ n: "*" })).toEqual([{ n: 0 }]);
  });
});

describe("query shape limits (default settings)", () => {
  let app: TestApp;
  let alice: TestUser;
  let conversationId: string;
  beforeAll(async () => {
    app = await newApp();
    alice = await user(app);
    conversationId = await makeConversation(app, alice, 3);
  });

  it("answers the history and inbox queries", async () => {
    const { conversation } = await app.ok(HISTORY, { id: conversationId }, alice.token);
    expect(conversation.messages.edges.map((edge: { node: { content: string } }) => edge.node.content)).toEqual(["m1", "m2", "m3"]);
    expect(conversation.messages.edges[0].node.author).toEqual({ id: alice.user.id, displayName: alice.user.displayName });
    const { conversations } = await app.ok(INBOX, {}, alice.token);
    expect(conversations.edges[0].node).toMatchObject({ id: conversationId, owner: { id: alice.user.id }, lastMessage: { content: "m3" } });
  });

  it("answers the standard introspection query (its ofType chain is deeper than the depth limit)", async () => {
    const { status, body } = await post(app, getIntrospectionQuery());
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
  });

  it("accepts a query exactly at the depth limit and refuses one level more with 400 QUERY_TOO_DEEP", async () => {
    expect((await post(app, deepQuery(12), { token: alice.token, variables: { id: conversationId } })).body.errors).toBeUndefined();
    const refused = await post(app, deepQuery(13), { token: alice.token, variables: { id: conversationId } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]).toMatchObject({
      message: "Query depth 13 exceeds the maximum depth of 12",
      extensions: { code: "QUERY_TOO_DEEP", depth: 13, maxDepth: 12 },
    });
    await expectStillServes(app, alice);
  });

  it("counts depth through fragments and inline fragments", async () => {
    const query = `query($id: UUID!) { conversation(id: $id) { ...C } }
      fragment C on Conversation { messages { edges { node { ... on Message { conversation { ...D } } } } } }
      fragment D on Conversation { messages { edges { node { conversation { messages { edges { node { id } } } } } } } }`;
    const refused = await post(app, query, { token: alice.token, variables: { id: conversationId } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0].extensions).toMatchObject({ code: "QUERY_TOO_DEEP", depth: 13 });
  });

  it("refuses a wide alias bomb and nested 100-item connections with 400 QUERY_TOO_COMPLEX", async () => {
    const bomb = await post(app, aliasBomb(60), { token: alice.token });
    expect(bomb.status).toBe(400);
    expect(bomb.body.errors?.[0]).toMatchObject({
      message: "Query complexity is 6060, above the maximum complexity of 5000",
      extensions: { code: "QUERY_TOO_COMPLEX", complexity: 6060, maxComplexity: 5000 },
    });

    const nested = `{ conversations(first: 100) { edges { node { messages(first: 100) { edges { node { id content } } } } } } }`;
    const refused = await post(app, nested, { token: alice.token });
    expect(refused.status).toBe(400);
    expect(codes(refused)).toEqual(["QUERY_TOO_COMPLEX"]);
    await expectStillServes(app, alice);
  });

  it("takes page sizes from variables, and the default page size when none is given", async () => {
    expect(codes(await post(app, aliasBomb(60, "$n"), { token: alice.token, variables: { n: 100 } }))).toEqual(["QUERY_TOO_COMPLEX"]);
    expect((await post(app, aliasBomb(60, "$n"), { token: alice.token, variables: { n: 1 } })).body.errors).toBeUndefined();
    // No first/last: DEFAULT_PAGE_SIZE (50) items each, 60 × 51 + … is 3060, under the limit; 100 aliases are not.
    const unpaged = (count: number) => `{ ${Array.from({ length: count }, (_, i) => `c${i}: conversations { totalCount }`).join(" ")} }`;
    expect((await post(app, unpaged(60), { token: alice.token })).body.errors).toBeUndefined();
    expect(codes(await post(app, unpaged(100), { token: alice.token }))).toEqual(["QUERY_TOO_COMPLEX"]);
  });

  it("estimates a document again for other page sizes or @include conditions, whatever it estimated for the same document before", async () => {
    // Estimates are remembered per document and page-size/condition variables (query-limits.ts): a small page
    // first must not let a big one through afterwards, nor the other way round.
    const paged = `query($n: Int!, $id: UUID!, $deep: Boolean!) { ${Array.from({ length: 60 }, (_, i) => `c${i}: conversations(first: $n) { edges { node { id } } }`).join(" ")}
      conversation(id: $id) @include(if: $deep) { messages(first: 100) { edges { node { conversation { messages(first: 10) { edges { node { id } } } } } } } } }`;
    const ask = (n: number, deep = false) => post(app, paged, { token: alice.token, variables: { n, id: conversationId, deep } });
    for (const round of [1, 2]) {
      expect({ round, errors: (await ask(1)).body.errors }).toEqual({ round, errors: undefined });
      expect({ round, codes: codes(await ask(100)) }).toEqual({ round, codes: ["QUERY_TOO_COMPLEX"] });
    }
    // 60 pages of 20 fit; with the conversation's 100 messages (each with 10 more) on top they do not. Another id does not matter.
    expect((await ask(20)).body.errors).toBeUndefined();
    expect((await post(app, paged, { token: alice.token, variables: { n: 20, id: randomUUID(), deep: false } })).body.errors).toBeUndefined();
    expect(codes(await ask(20, true))).toEqual(["QUERY_TOO_COMPLEX"]);
    expect((await ask(20)).body.errors).toBeUndefined();
  });

  it("refuses fragments that expand past what can be estimated", async () => {
    const levels = 16;
    const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i + 1} on User { ...F${i} ...F${i} }`).join(" ");
    const query = `{ viewer { ...F${levels} } } fragment F0 on User { id } ${fragments}`;
    const refused = await post(app, query, { token: alice.token });
    expect(refused.status).toBe(400);
    expect(codes(refused)).toEqual(["QUERY_TOO_COMPLEX"]);
    await expectStillServes(app, alice);
  });

  it("refuses a document of more than MAX_QUERY_TOKENS tokens before parsing it", async () => {
    const refused = await post(app, `{ viewer { ${"id ".repeat(5000)} } }`, { token: alice.token });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/5000 tokens/), extensions: { code: "GRAPHQL_PARSE_FAILED" } });
    await expectStillServes(app, alice);
  });

  it("runs at most MAX_MUTATIONS_PER_OPERATION aliased mutations in one operation, and refuses more with 400 TOO_MANY_MUTATIONS", async () => {
    const creates = (count: number) =>
      `mutation { ${Array.from({ length: count }, (_, i) => `c${i}: createConversation(input: { title: "alias ${i}" }) { id }`).join(" ")} }`;
    const stored = async () => Number((await app.database.db.knex("conversations").where({ ownerId: alice.user.id }).count({ n: "*" }))[0].n);
    const before = await stored();
    expect((await post(app, creates(10), { token: alice.token })).body.errors).toBeUndefined();
    expect(await stored()).toBe(before + 10);
    // Through a fragment too: 11 root fields in all.
    const refused = await post(app, `${creates(9).slice(0, -2)} ...M } fragment M on Mutation { a: createConversation(input: {}) { id } b: createConversation(input: {}) { id } }`, { token: alice.token });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]).toMatchObject({
      message: "This operation runs 11 mutations; at most 10 may run in one operation",
      extensions: { code: "TOO_MANY_MUTATIONS", count: 11, max: 10 },
    });
    expect(await stored()).toBe(before + 10);
  });

  it("applies the same limits to graphql-ws operations", async () => {
    const { client } = connect(app, alice);
    expect(await wsErrorCodes(run(client, deepQuery(13), { id: conversationId }))).toEqual(["QUERY_TOO_DEEP"]);
    expect(await wsErrorCodes(run(client, aliasBomb(60)))).toEqual(["QUERY_TOO_COMPLEX"]);
    const mutations = `mutation { ${Array.from({ length: 11 }, (_, i) => `c${i}: createConversation(input: {}) { id }`).join(" ")} }`;
    expect(await wsErrorCodes(run(client, mutations))).toEqual(["TOO_MANY_MUTATIONS"]);
    const tokens = await run(client, `{ viewer { ${"id ".repeat(5000)} } }`).then(() => [], (errors: { message: string }[]) => errors);
    expect(tokens.map((error) => error.message)).toEqual([expect.stringMatching(/5000 tokens/)]);
    expect((await run(client, HISTORY, { id: conversationId })).errors).toBeUndefined();
    expect((await run(client, INBOX)).errors).toBeUndefined();
  });
});

describe("queryDepth", () => {
  const depthOf = (source: string) => {
    const document = parse(source);
    return queryDepth(document, document.definitions[0] as OperationDefinitionNode);
  };

  it("counts field levels, not fragments", () => {
    expect(depthOf("{ a }")).toBe(1);
    expect(depthOf("{ a { b { c } } d }")).toBe(3);
    expect(depthOf("{ a { ... on T { b { ...F } } } } fragment F on T { c { d } }")).toBe(4);
  });

  it("stops at fragment cycles (which validation refuses anyway)", () => {
    expect(depthOf("{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { ...F } }")).toBe(3);
  });
});

describe("operations per websocket", () => {
  let app: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    app = await newApp({ MAX_SUBSCRIPTIONS_PER_CONNECTION: "2" });
    alice = await user(app);
  });

  it("refuses the operation over the cap with TOO_MANY_SUBSCRIPTIONS, keeps the socket, and frees slots on completion", async () => {
    const ws = connect(app, alice);
    // Completed operations give their slot back: three in a row fit under a cap of two.
    for (let i = 0; i < 3; i++) expect((await run(ws.client, VIEWER)).data).toEqual({ viewer: { id: alice.user.id } });

    // Hold two operations open: they wait on a lock (PostgreSQL) or on the only connection (PGlite) until
    // commit. graphql-ws handles one socket's messages in order and the slot is taken before anything is
    // awaited, so the third operation finds both slots taken. It needs no database: were it admitted, it would
    // answer at once and fail the test rather than hang it.
    const held = "{ conversations(first: 1) { totalCount } }";
    const trx = await app.database.db.knex.transaction();
    let holding: Promise<FormattedExecutionResult>[] = [];
    try {
      await trx.raw("lock table conversations in access exclusive mode");
      holding = [run(ws.client, held), run(ws.client, held)];
      expect(await wsErrorCodes(run(ws.client, "{ __typename }"))).toEqual(["TOO_MANY_SUBSCRIPTIONS"]);
    } finally {
      await trx.commit();
    }
    expect(await Promise.all(holding)).toEqual([
      { data: { conversations: { totalCount: 0 } } },
      { data: { conversations: { totalCount: 0 } } },
    ]);

    // Both slots are free again, on the same socket.
    expect(await Promise.all([run(ws.client, held), run(ws.client, held)])).toEqual([
      { data: { conversations: { totalCount: 0 } } },
      { data: { conversations: { totalCount: 0 } } },
    ]);
    expect(ws.connections()).toBe(1);
  });
});

describe("CORS", () => {
  let app: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    app = await newApp({ CORS_ORIGINS: "https://app.example, https://admin.example" });
    alice = await user(app);
  });

  const preflight = (target: TestApp, origin: string) =>
    fetch(`${target.url}/graphql`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
  const corsHeaders = (headers: Headers) => Object.fromEntries([...headers].filter(([name]) => name.startsWith("access-control-")));

  it("answers a preflight from an allowed origin with 204 and the allowed methods and headers", async () => {
    const response = await preflight(app, "https://admin.example");
    expect(response.status).toBe(204);
    expect(corsHeaders(response.headers)).toEqual({
      "access-control-allow-origin": "https://admin.example",
      "access-control-allow-methods": "GET, POST",
      "access-control-allow-headers": "authorization, content-type, apollo-require-preflight, x-request-id",
      "access-control-max-age": "600",
    });
    expect(response.headers.get("vary")).toMatch(/origin/i);
  });

  it("gives a preflight from another origin no CORS headers", async () => {
    const response = await preflight(app, "https://evil.example");
    expect(response.status).toBe(204);
    expect(corsHeaders(response.headers)).toEqual({});
  });

  it("marks actual requests from an allowed origin, exposing x-request-id and retry-after, and no others", async () => {
    const allowed = await post(app, VIEWER, { token: alice.token, headers: { origin: "https://app.example" } });
    expect(allowed.status).toBe(200);
    expect(corsHeaders(allowed.headers)).toEqual({
      "access-control-allow-origin": "https://app.example",
      "access-control-expose-headers": "x-request-id, retry-after",
    });
    const other = await post(app, VIEWER, { token: alice.token, headers: { origin: "https://evil.example" } });
    expect(corsHeaders(other.headers)).toEqual({});
  });

  it("keeps Apollo's CSRF prevention for requests a browser sends without a preflight", async () => {
    const response = await fetch(`${app.url}/graphql`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "text/plain", authorization: `Bearer ${alice.token}` },
      body: JSON.stringify({ query: VIEWER }),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/Cross-Site Request Forgery/);
    await expectStillServes(app, alice);
  });

  it("allows any origin with CORS_ORIGINS=*, and none by default", async () => {
    const any = await newApp({ CORS_ORIGINS: "*" });
    expect((await preflight(any, "https://anywhere.example")).headers.get("access-control-allow-origin")).toBe("https://anywhere.example");
    const none = await newApp();
    expect(corsHeaders((await preflight(none, "https://app.example")).headers)).toEqual({});
  });
});
