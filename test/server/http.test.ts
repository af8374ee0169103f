/**
 * The HTTP surface: health endpoints, the landing page and introspection policy, the token rule, body
 * limits, malformed requests, GET and CSRF rules, request ids, hidden internal errors and graceful shutdown.
 */
import http from "node:http";
import net from "node:net";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type GraphQLBody, type TestApp, type TestUser } from "../helpers/server";

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body, when it is JSON. */
  json?: GraphQLBody & Record<string, unknown>;
  reusedSocket: boolean;
}

/** One request through node's http client, for control over headers, chunking and connection reuse. */
function request(
  port: number,
  options: http.RequestOptions & { body?: string | string[] },
): Promise<RawResponse> {
  const { body, ...rest } = options;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, ...rest }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        let json: RawResponse["json"];
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    for (const chunk of Array.isArray(body) ? body : body === undefined ? [] : [body]) req.write(chunk);
    req.end();
  });
}

const json = (token?: string): Record<string, string> => ({
  "content-type": "application/json",
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

/** Resolves with true when a TCP connection to the port is refused. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

/** Fails when the response shows anything of the server's internals. */
function expectNoInternals(body: unknown): void {
  const text = JSON.stringify(body);
  expect(text).not.toMatch(/at .*\.(ts|js)|\.ts:\d|node_modules|select |insert |update |delete from|relation "|stacktrace/i);
}

const VIEWER = "{ viewer { id role } }";
const INTROSPECTION = "{ __schema { queryType { name } types { name } } }";

let app: TestApp;
let member: TestUser;

beforeAll(async () => {
  app = await createTestApp({ NODE_ENV: "development", MAX_BODY_BYTES: "2048" });
  member = await app.makeUser(Role.MEMBER);
});
afterAll(() => app.dispose());

describe("health endpoints", () => {
  it("GET /healthz answers 200 ok", async () => {
    const response = await request(app.server.port, { path: "/healthz" });
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(response.json).toEqual({ status: "ok" });
  });

  it("GET /readyz answers 200 ready on a migrated database", async () => {
    const response = await request(app.server.port, { path: "/readyz" });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ status: "ready" });
  });

  it("GET /readyz answers 503 while a migration is pending", async () => {
    const pending = await createTestApp();
    try {
      await pending.database.db.knex.migrate.rollback();
      const response = await request(pending.server.port, { path: "/readyz" });
      expect(response.status).toBe(503);
      expect(response.json).toEqual({ status: "unavailable" });
      // /healthz only says the process is up.
      expect((await request(pending.server.port, { path: "/healthz" })).status).toBe(200);
    } finally {
      await pending.dispose();
    }
  });
});

describe("landing page and introspection in development", () => {
  it("serves the Sandbox landing page on GET /graphql for a browser", async () => {
    const response = await request(app.server.port, { path: "/graphql", headers: { accept: "text/html" } });
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/html/);
    expect(response.text).toMatch(/<html/i);
  });

  it("answers an introspection-only query without a token", async () => {
    const { status, body } = await app.gql(INTROSPECTION);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data?.__schema.queryType.name).toBe("Query");
    expect(body.data?.__schema.types.map((type: { name: string }) => type.name)).toEqual(expect.arrayContaining(["Conversation", "Message"]));
  });

  it("refuses any other operation without a token with 401 UNAUTHENTICATED", async () => {
    for (const query of [VIEWER, `{ __schema { queryType { name } } viewer { id } }`, `mutation { recordMetrics(input: []) }`]) {
      const { status, body } = await app.gql(query);
      expect({ query, status, codes: body.errors?.map((error) => error.extensions?.code), data: body.data ?? null }).toEqual({
        query,
        status: 401,
        codes: ["UNAUTHENTICATED"],
        data: null,
      });
    }
  });
});

describe("production", () => {
  let prod: TestApp;
  let admin: TestUser;

  beforeAll(async () => {
    prod = await createTestApp({ NODE_ENV: "production" });
    admin = await prod.makeUser(Role.ADMIN);
  });
  afterAll(() => prod.dispose());

  it("refuses introspection, even for an admin", async () => {
    const { status, body } = await prod.gql(INTROSPECTION, {}, admin.token);
    expect(status).toBe(400);
    expect(body.data ?? null).toBeNull();
    expect(body.errors?.[0].extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(body.errors?.[0].message).toMatch(/introspection/i);
  });

  it("serves no landing page", async () => {
    const response = await request(prod.server.port, { path: "/graphql", headers: { accept: "text/html" } });
    expect(response.headers["content-type"]).not.toMatch(/text\/html/);
    expect(response.text).not.toMatch(/<html/i);
    expect(response.status).toBeGreaterThanOrEqual(400);
  });

  it("still answers ordinary operations", async () => {
    const data = await prod.ok(VIEWER, {}, admin.token);
    expect(data.viewer).toEqual({ id: admin.user.id, role: "ADMIN" });
  });
});

describe("request bodies", () => {
  const bodyOfSize = (size: number, token?: string) => {
    const base = JSON.stringify({ query: VIEWER, variables: { pad: "" } });
    const body = JSON.stringify({ query: VIEWER, variables: { pad: "x".repeat(size - base.length) } });
    expect(Buffer.byteLength(body)).toBe(size);
    return { method: "POST", path: "/graphql", headers: json(token), body };
  };

  it("accepts a body of exactly MAX_BODY_BYTES", async () => {
    const response = await request(app.server.port, bodyOfSize(2048, member.token));
    expect(response.status).toBe(200);
    expect(response.json?.data).toEqual({ viewer: { id: member.user.id, role: "MEMBER" } });
  });

  it("refuses a body one byte over MAX_BODY_BYTES with 413 PAYLOAD_TOO_LARGE", async () => {
    const response = await request(app.server.port, bodyOfSize(2049, member.token));
    expect(response.status).toBe(413);
    expect(response.json?.errors?.map((error) => error.extensions?.code)).toEqual(["PAYLOAD_TOO_LARGE"]);
  });

  it("refuses a large declared body with 413 and keeps answering on the same connection", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ query: VIEWER, variables: { pad: "x".repeat(256 * 1024) } });
      const refused = await request(app.server.port, { agent, method: "POST", path: "/graphql", headers: json(member.token), body: big });
      expect(refused.status).toBe(413);
      expect(refused.json?.errors?.[0].extensions?.code).toBe("PAYLOAD_TOO_LARGE");
      // The unread rest of the refused body must not be taken for the next request.
      const next = await request(app.server.port, {
        agent,
        method: "POST",
        path: "/graphql",
        headers: json(member.token),
        body: JSON.stringify({ query: VIEWER }),
      });
      expect(next.status).toBe(200);
      expect(next.json?.data).toEqual({ viewer: { id: member.user.id, role: "MEMBER" } });
    } finally {
      agent.destroy();
    }
  });

  it("refuses a chunked body (no content-length) once it passes the limit, and still answers afterwards", async () => {
    const response = await request(app.server.port, {
      method: "POST",
      path: "/graphql",
      headers: { ...json(member.token), "transfer-encoding": "chunked" },
      body: Array.from({ length: 64 }, () => "x".repeat(1000)),
    });
    expect(response.status).toBe(413);
    expect(response.json?.errors?.[0].extensions?.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await app.ok(VIEWER, {}, member.token)).viewer.id).toBe(member.user.id);
  });

  it("answers malformed JSON with 400 BAD_REQUEST", async () => {
    const response = await request(app.server.port, { method: "POST", path: "/graphql", headers: json(member.token), body: '{"query": "{ viewer { id } }"' });
    expect(response.status).toBe(400);
    expect(response.json?.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_REQUEST"]);
    expectNoInternals(response.json);
  });

  it("answers a syntax error in the query with 400 GRAPHQL_PARSE_FAILED", async () => {
    const { status, body } = await app.gql("{ viewer { ", {}, member.token);
    expect(status).toBe(400);
    expect(body.errors?.[0].extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    expectNoInternals(body);
  });
});

describe("routing and methods", () => {
  it("answers an unknown path with 404 NOT_FOUND", async () => {
    for (const path of ["/", "/nope", "/graphql/extra", "/healthz/x"]) {
      const response = await request(app.server.port, { path });
      expect({ path, status: response.status, code: response.json?.errors?.[0].extensions?.code }).toEqual({ path, status: 404, code: "NOT_FOUND" });
    }
  });

  it("answers other methods on /graphql with 405", async () => {
    const response = await request(app.server.port, { method: "PUT", path: "/graphql", headers: json(member.token), body: "{}" });
    expect(response.status).toBe(405);
  });

  it("runs a query sent by GET with the apollo-require-preflight header", async () => {
    const path = `/graphql?query=${encodeURIComponent(VIEWER)}`;
    const response = await request(app.server.port, { path, headers: { authorization: `Bearer ${member.token}`, "apollo-require-preflight": "true" } });
    expect(response.status).toBe(200);
    expect(response.json?.data).toEqual({ viewer: { id: member.user.id, role: "MEMBER" } });
  });

  it("runs a query sent by GET with a JSON content-type", async () => {
    const path = `/graphql?query=${encodeURIComponent("query($n: Int) { metrics(first: $n) { totalCount } }")}&variables=${encodeURIComponent(JSON.stringify({ n: 1 }))}`;
    const service = await app.makeUser(Role.SERVICE);
    const response = await request(app.server.port, { path, headers: json(service.token) });
    expect(response.status).toBe(200);
    expect(response.json?.data).toEqual({ metrics: { totalCount: 0 } });
  });

  it("blocks a simple (CSRF-prone) GET request without a preflight header", async () => {
    const path = `/graphql?query=${encodeURIComponent(VIEWER)}`;
    const response = await request(app.server.port, { path, headers: { authorization: `Bearer ${member.token}` } });
    expect(response.status).toBe(400);
    expect(response.json?.data ?? null).toBeNull();
    expect(response.json?.errors?.[0].message).toMatch(/CSRF/);
  });

  it("blocks a text/plain POST (CSRF-prone) without running it", async () => {
    const response = await request(app.server.port, {
      method: "POST",
      path: "/graphql",
      headers: { "content-type": "text/plain", authorization: `Bearer ${member.token}` },
      body: JSON.stringify({ query: VIEWER }),
    });
    expect(response.status).toBe(400);
    expect(response.json?.data ?? null).toBeNull();
  });

  it("refuses a mutation sent by GET", async () => {
    const service = await app.makeUser(Role.SERVICE);
    const mutation = `mutation { recordMetrics(input: [{ clientBotId: "get-bot", metricType: "t" }]) }`;
    const response = await request(app.server.port, {
      path: `/graphql?query=${encodeURIComponent(mutation)}`,
      headers: { authorization: `Bearer ${service.token}`, "apollo-require-preflight": "true" },
    });
    expect(response.status).toBe(405);
    expect(await app.database.db.knex("metrics").where({ clientBotId: "get-bot" })).toHaveLength(0);
  });
});

describe("request ids", () => {
  it("echoes a well-formed x-request-id", async () => {
    for (const path of ["/healthz", "/graphql", "/nope"]) {
      const response = await request(app.server.port, {
        method: path === "/graphql" ? "POST" : "GET",
        path,
        headers: { ...json(member.token), "x-request-id": "req-123.abc:7" },
        body: path === "/graphql" ? JSON.stringify({ query: VIEWER }) : undefined,
      });
      expect({ path, id: response.headers["x-request-id"] }).toEqual({ path, id: "req-123.abc:7" });
    }
  });

  it("generates a fresh id when none or a malformed one is sent", async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const none = await request(app.server.port, { path: "/healthz" });
    const again = await request(app.server.port, { path: "/healthz" });
    const bad = await request(app.server.port, { path: "/healthz", headers: { "x-request-id": "has spaces <script>" } });
    const long = await request(app.server.port, { path: "/healthz", headers: { "x-request-id": "a".repeat(129) } });
    for (const response of [none, again, bad, long]) expect(response.headers["x-request-id"]).toMatch(uuid);
    expect(none.headers["x-request-id"]).not.toBe(again.headers["x-request-id"]);
  });
});

describe.each(["development", "production"])("unexpected errors in %s", (nodeEnv) => {
  let broken: TestApp;
  let service: TestUser;

  beforeAll(async () => {
    // No key cache: the token must be looked up while the table is gone.
    broken = await createTestApp({ NODE_ENV: nodeEnv, AUTH_CACHE_SECONDS: "0" });
    service = await broken.makeUser(Role.SERVICE);
    // A table the resolvers rely on disappears: every query of it fails inside the database driver.
    await broken.database.db.knex.raw("drop table metrics");
  });
  afterAll(() => broken.dispose());

  it("answers a failing query with INTERNAL_SERVER_ERROR and no SQL or stack", async () => {
    const { body } = await broken.gql("{ metrics(first: 5) { totalCount edges { node { id } } } }", {}, service.token);
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]).toMatchObject({ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } });
    expect(Object.keys(body.errors?.[0].extensions ?? {})).toEqual(["code"]);
    expectNoInternals(body);
  });

  it("answers a failing mutation with INTERNAL_SERVER_ERROR and no SQL or stack", async () => {
    const { body } = await broken.gql(`mutation { recordMetrics(input: [{ clientBotId: "b", metricType: "t" }]) }`, {}, service.token);
    expect(body.errors?.[0]).toMatchObject({ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } });
    expectNoInternals(body);
  });

  it("hides a failure while authenticating the token", async () => {
    await broken.database.db.knex.raw("alter table api_keys rename to api_keys_gone");
    try {
      const { status, body } = await broken.gql(VIEWER, {}, service.token);
      expect(status).toBeGreaterThanOrEqual(500);
      expect(body.errors?.[0]).toMatchObject({ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } });
      expectNoInternals(body);
    } finally {
      await broken.database.db.knex.raw("alter table api_keys_gone rename to api_keys");
    }
    // Other operations keep working.
    expect((await broken.ok(VIEWER, {}, service.token)).viewer.id).toBe(service.user.id);
  });

  it("shows no stack trace on ordinary client errors", async () => {
    const { body } = await broken.gql("{ viewer { nope } }", {}, service.token);
    expect(body.errors?.[0].extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expectNoInternals(body);
  });
});

describe("graceful shutdown", () => {
  it("finishes a request that is in flight when dispose() starts, then refuses new connections", async () => {
    const closing = await createTestApp();
    try {
      const user = await closing.makeUser(Role.MEMBER);
      const { port, httpServer } = closing.server;
      const body = JSON.stringify({ query: VIEWER });
      const half = Math.floor(body.length / 2);

      // Send the headers and half of the body; the server has the request but cannot run it yet.
      const arrived = new Promise<void>((resolve) => httpServer.once("request", () => resolve()));
      let finishBody!: () => void;
      const response = new Promise<RawResponse>((resolve, reject) => {
        const req = http.request(
          { host: "127.0.0.1", port, method: "POST", path: "/graphql", agent: false, headers: { ...json(user.token), "content-length": Buffer.byteLength(body) } },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (text += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text), reusedSocket: false }));
          },
        );
        req.on("error", reject);
        req.write(body.slice(0, half));
        finishBody = () => req.end(body.slice(half));
      });
      await arrived;

      const disposed = closing.server.dispose();
      let disposeDone = false;
      void disposed.then(() => (disposeDone = true));
      // Wait (bounded) until the server has stopped listening.
      for (let i = 0; i < 1000 && httpServer.listening; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(httpServer.listening).toBe(false);
      expect(await refusesConnections(port)).toBe(true);
      // Shutdown waits for the request in flight.
      expect(disposeDone).toBe(false);

      finishBody();
      const answered = await response;
      expect(answered.status).toBe(200);
      expect(answered.json?.data).toEqual({ viewer: { id: user.user.id, role: "MEMBER" } });
      await disposed;
      expect(await refusesConnections(port)).toBe(true);
    } finally {
      await closing.dispose();
    }
  });

  it("dispose() can be called twice", async () => {
    const twice = await createTestApp();
    await Promise.all([twice.server.dispose(), twice.server.dispose()]);
    expect(await refusesConnections(twice.server.port)).toBe(true);
    await twice.dispose();
  });
});
