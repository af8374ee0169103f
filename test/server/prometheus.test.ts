/**
 * GET /metrics (METRICS_ENABLED): scraped after real traffic (HTTP operations that succeed and fail, a refused
 * one, a live subscription that receives a message, a transcript export) and read as Prometheus would read it.
 * Also: off by default, behind METRICS_TOKEN, and on METRICS_PORT instead of the API's port.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { RawSubscription } from "../helpers/live";
import { parseExposition, type Exposition } from "../helpers/prometheus";
import { createTranscript, settled } from "../helpers/transcripts";

let app: TestApp;
let alice: TestUser;
const TOKEN = "scrape-token-0123456789";

beforeAll(async () => {
  app = await createTestApp({ METRICS_ENABLED: "true", METRICS_TOKEN: TOKEN });
  alice = await app.makeUser(Role.MEMBER, "alice");
});
afterAll(() => app.dispose());

async function scrape(url = `${app.url}/metrics`, token: string | undefined = TOKEN): Promise<Exposition> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

/** Scrapes until `done` holds (background work lands a little after the request that caused it). */
async function scrapeUntil(done: (metrics: Exposition) => boolean): Promise<Exposition> {
  for (let attempt = 0; ; attempt++) {
    const metrics = await scrape();
    if (done(metrics) || attempt === 200) return metrics;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("GET /metrics", () => {
  it("counts operations by name and outcome, errors by code, statements per request, live delivery and background jobs", async () => {
    const before = await scrape();

    await app.ok(`query Me { viewer { id } }`, {}, alice.token);
    await app.ok(`query Me { viewer { id } }`, {}, alice.token);
    expect(await app.errorCode(`query Missing($id: UUID!) { conversation(id: $id) { id } }`, { id: "00000000-0000-4000-8000-000000000000" }, alice.token)).toBe("NOT_FOUND");
    const { createConversation } = await app.ok(`mutation Start { createConversation(input: { title: "metrics" }) { id } }`, {}, alice.token);
    const subscription = await RawSubscription.open(app.url, alice.token, `subscription Live($id: UUID!) { messageAdded(conversationId: $id, afterSeq: 0) { seq } }`, {
      id: createConversation.id,
    });
    const say = () => app.ok(`mutation Say($id: UUID!) { addMessage(input: { conversationId: $id, content: "hello" }) { seq } }`, { id: createConversation.id }, alice.token);
    await say();
    await subscription.until((s) => s.payloads.length === 1);
    // Caught up and asleep now: the next message is delivered because of its notification, which is what the lag times.
    const caughtUp = await scrape();
    await say();
    await subscription.until((s) => s.payloads.length === 2);
    const transcript = await createTranscript(app, alice, { conversationId: createConversation.id, format: "JSON" });
    expect((await settled(app, alice, transcript.id)).status).toBe("READY");

    const after = await scrapeUntil((metrics) => metrics.sum("parley_background_jobs_total", { job: "transcript-export", outcome: "ok" }) >= 1);
    const grew = (name: string, labels: Record<string, string>) => after.sum(name, labels) - before.sum(name, labels);
    expect(grew("parley_graphql_operations_total", { transport: "http", type: "query", operation: "Me", outcome: "ok" })).toBe(2);
    expect(grew("parley_graphql_operations_total", { transport: "http", type: "query", operation: "Missing", outcome: "error" })).toBe(1);
    expect(grew("parley_graphql_operations_total", { transport: "http", type: "mutation", operation: "Say", outcome: "ok" })).toBe(2);
    expect(grew("parley_graphql_operations_total", { transport: "websocket", type: "subscription", operation: "Live", outcome: "ok" })).toBe(1);
    expect(grew("parley_graphql_errors_total", { code: "NOT_FOUND" })).toBe(1);
    expect(grew("parley_graphql_operation_duration_seconds_count", { operation: "Me" })).toBe(2);
    expect(after.types.get("parley_graphql_operation_duration_seconds")).toBe("histogram");
    // Every HTTP operation above was at least a token lookup and a statement of its own.
    expect(grew("parley_db_statements_per_request_count", {})).toBeGreaterThanOrEqual(6);
    expect(grew("parley_db_statements_per_request_sum", {})).toBeGreaterThanOrEqual(12);
    expect(after.sum("parley_live_subscribers")).toBe(1);
    expect(after.sum("parley_live_groups")).toBe(1);
    expect(after.sum("parley_websocket_connections")).toBe(1);
    expect(after.sum("parley_live_notify_to_delivery_seconds_count") - caughtUp.sum("parley_live_notify_to_delivery_seconds_count")).toBe(1);
    expect(after.sum("parley_background_jobs_total", { job: "transcript-sweep", outcome: "ok" })).toBeGreaterThanOrEqual(1);
    expect(after.has("parley_db_pool_connections", { state: "used" })).toBe(true);
    expect(after.has("parley_db_pool_connections", { state: "waiting" })).toBe(true);
    expect(after.sum("parley_process_cpu_user_seconds_total")).toBeGreaterThan(0);

    subscription.close();
    await scrapeUntil((metrics) => metrics.sum("parley_websocket_connections") === 0);
    expect((await scrape()).sum("parley_live_subscribers")).toBe(0);
  });

  it("counts websocket operations refused before they ran, with their error codes", async () => {
    const before = await scrape();
    const subscription = await RawSubscription.open(app.url, alice.token, `subscription Bad { messageAdded(conversationId: "nope") { seq } }`, {});
    await subscription.until(() => false);
    const after = await scrape();
    const grew = (name: string, labels: Record<string, string>) => after.sum(name, labels) - before.sum(name, labels);
    // Refused by validation: no operation was picked, so neither its type nor its name is known.
    expect(grew("parley_graphql_operations_total", { transport: "websocket", type: "unknown", operation: "anonymous", outcome: "error" })).toBe(1);
    expect(grew("parley_graphql_errors_total", { code: "GRAPHQL_VALIDATION_FAILED" })).toBe(1);
    subscription.close();
  });

  it("answers 401 without the token, and a wrong one", async () => {
    expect((await fetch(`${app.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${app.url}/metrics`, { headers: { authorization: "Bearer scrape-token-wrong-000000" } })).status).toBe(401);
  });
});

describe("rate-limit refusals", () => {
  it("are counted", async () => {
    const limited = await createTestApp({ METRICS_ENABLED: "true", RATE_LIMIT_ENABLED: "true", RATE_LIMIT_PER_IP: "3" }, app.database);
    try {
      const codes: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) {
        const { body } = await limited.gql(`query { viewer { id } }`, {}, alice.token);
        codes.push(body.errors?.[0]?.extensions?.code as string | undefined);
      }
      const refused = codes.filter((code) => code === "RATE_LIMITED").length;
      expect(refused).toBeGreaterThanOrEqual(2);
      const metrics = await scrape(`${limited.url}/metrics`, undefined);
      expect(metrics.sum("parley_rate_limit_refusals_total")).toBe(refused);
    } finally {
      await limited.dispose();
    }
  });
});

describe("where /metrics is", () => {
  it("is nowhere unless METRICS_ENABLED", async () => {
    const plain = await createTestApp({}, app.database);
    try {
      expect((await fetch(`${plain.url}/metrics`)).status).toBe(404);
    } finally {
      await plain.dispose();
    }
  });

  it("is on METRICS_PORT's listener, and not on the API's, when that is set", async () => {
    const apart = await createTestApp({ METRICS_ENABLED: "true", METRICS_PORT: "0" }, app.database);
    try {
      expect((await fetch(`${apart.url}/metrics`)).status).toBe(404);
      const metrics = await scrape(apart.server.metricsUrl!, undefined);
      expect(metrics.has("parley_db_pool_connections")).toBe(true);
    } finally {
      await apart.dispose();
    }
  });
});
