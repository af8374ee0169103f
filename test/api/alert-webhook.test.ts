/**
 * The alert webhook (issue 14.5) against a real local HTTP receiver: signed JSON POSTs, retries with backoff
 * until a 2xx (each attempt's outcome on the delivery row), giving up after ALERT_WEBHOOK_MAX_ATTEMPTS,
 * timeouts, a restart that carries on with pending deliveries (and alerts raised while no server ran), two
 * servers sharing the outbox without delivering anything twice, and the settings' checks.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHmac, randomUUID } from "node:crypto";
import { loadConfig, type Env } from "../../src/config";
import { Role } from "../../src/modules/user/role.enum";
import { backoffMs } from "../../src/modules/alert/webhook";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { createTestDatabase, type TestDatabase } from "../helpers/db";

const SECRET = "s".repeat(40);
const RAISE = `mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { id createdAt } }`;
const WAIT_MS = 30_000;

/** One request the receiver got, with the delivery row as it was when the request arrived. */
interface Received {
  deliveryId: string;
  signatureValid: boolean;
  body: Record<string, unknown>;
  row: { attempts: number; status: string; lastStatusCode: number | null; lastError: string | null };
}

/** What the receiver answers to attempt `n` (1, 2 …) of an alert of a source; 200 when no plan names it. */
const plans = new Map<string, (n: number) => number | "hang">();
const received: Received[] = [];
let receiver: http.Server;
let database: TestDatabase;
let env: Env;
const apps: TestApp[] = [];
let service: TestUser;

async function start(): Promise<TestApp> {
  const app = await createTestApp(env, database);
  apps.push(app);
  return app;
}

beforeAll(async () => {
  receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const body = JSON.parse(raw) as Record<string, unknown>;
      const deliveryId = String(request.headers["x-parley-delivery"]);
      const expected = `sha256=${createHmac("sha256", SECRET).update(raw).digest("hex")}`;
      const row = await database.db.knex("alert_deliveries").where({ id: deliveryId }).first("attempts", "status", "lastStatusCode", "lastError");
      received.push({ deliveryId, signatureValid: request.headers["x-parley-signature"] === expected, body, row });
      const attempt = received.filter((each) => each.deliveryId === deliveryId).length;
      const answer = plans.get(String(body.source))?.(attempt) ?? 200;
      if (answer === "hang") setTimeout(() => response.end(), 1500);
      else response.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  env = {
    ALERT_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    ALERT_WEBHOOK_SECRET: SECRET,
    ALERT_WEBHOOK_RETRY_BASE_MS: "100",
    ALERT_WEBHOOK_TIMEOUT_MS: "500",
    ALERT_WEBHOOK_MAX_ATTEMPTS: "4",
  };
  database = await createTestDatabase(env);
  service = await (await start()).makeUser(Role.SERVICE);
});
afterAll(async () => {
  for (const app of apps) await app.server.dispose();
  await database.dispose();
  await new Promise((resolve) => receiver.close(resolve));
});

async function raise(app: TestApp, source: string): Promise<string> {
  return (await app.ok<{ raiseAlert: { id: string } }>(RAISE, { input: { severity: "CRITICAL", source, message: "it broke", details: { n: 1 } } }, service.token)).raiseAlert.id;
}

const deliveriesOf = (alertId: string) => database.db.knex("alert_deliveries").where({ alertId }).select("*");
const requestsFor = (alertId: string) => received.filter((each) => each.body.id === alertId);

async function until(done: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function settled(alertId: string) {
  await until(async () => (await deliveriesOf(alertId)).some((row) => row.status !== "pending"), `alert ${alertId} to be settled`);
  const rows = await deliveriesOf(alertId);
  expect(rows).toHaveLength(1);
  return rows[0];
}

it("POSTs a signed alert, retries after failures with backoff, and records each attempt's outcome", async () => {
  const [app] = apps;
  const source = `fails-twice-${randomUUID()}`;
  plans.set(source, (n) => (n <= 2 ? 500 : 200));
  const alertId = await raise(app, source);
  const row = await settled(alertId);
  expect(row).toMatchObject({ status: "delivered", attempts: 3, lastStatusCode: 200, lastError: null });
  expect(row.deliveredAt).toBeInstanceOf(Date);

  const requests = requestsFor(alertId);
  expect(requests).toHaveLength(3);
  expect(requests.every((each) => each.deliveryId === row.id && each.signatureValid)).toBe(true);
  expect(requests[0].body).toEqual({ id: alertId, source, severity: "CRITICAL", message: "it broke", details: { n: 1 }, userId: null, createdAt: expect.any(String) });
  // The row as each attempt found it: claimed (attempts counted), with the previous attempt's outcome.
  expect(requests.map((each) => each.row)).toEqual([
    { attempts: 1, status: "pending", lastStatusCode: null, lastError: null },
    { attempts: 2, status: "pending", lastStatusCode: 500, lastError: "HTTP 500" },
    { attempts: 3, status: "pending", lastStatusCode: 500, lastError: "HTTP 500" },
  ]);
});

it("gives up after ALERT_WEBHOOK_MAX_ATTEMPTS, and counts a timeout as a failed attempt", async () => {
  const [app] = apps;
  const failing = `always-fails-${randomUUID()}`;
  plans.set(failing, () => 503);
  const slow = `slow-once-${randomUUID()}`;
  plans.set(slow, (n) => (n === 1 ? "hang" : 204));
  const [failingId, slowId] = [await raise(app, failing), await raise(app, slow)];

  expect(await settled(failingId)).toMatchObject({ status: "failed", attempts: 4, lastStatusCode: 503, lastError: "HTTP 503", deliveredAt: null });
  expect(await settled(slowId)).toMatchObject({ status: "delivered", attempts: 2, lastStatusCode: 204, lastError: null });
  expect(requestsFor(slowId)[1].row).toMatchObject({ attempts: 2, lastError: "No answer within 500 ms" });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // well past the next backoff: nothing more is sent
  expect(requestsFor(failingId)).toHaveLength(4);
});

it("carries on after a restart: pending retries, and alerts raised while no server ran", async () => {
  const before = apps.shift()!;
  const source = `restart-${randomUUID()}`;
  let up = false;
  plans.set(source, () => (up ? 200 : 500));
  const alertId = await raise(before, source);
  await until(() => requestsFor(alertId).length >= 2, "two failed attempts");
  await before.server.dispose();
  const attemptsBefore = requestsFor(alertId).length;

  // Raised (and announced) with no server running: nobody hears the notification.
  const [{ id: whileDown }] = await database.db.knex("system_alerts").insert({ source, severity: "info", message: "while down" }).returning("id");
  up = true;
  await start();
  expect(await settled(alertId)).toMatchObject({ status: "delivered", attempts: attemptsBefore + 1 });
  expect(await settled(whileDown)).toMatchObject({ status: "delivered", attempts: 1 });
  expect(new Set(requestsFor(alertId).map((each) => each.deliveryId)).size).toBe(1);
});

it("never puts an alert raised before the webhook was turned on in the outbox", async () => {
  const source = `old-${randomUUID()}`;
  const [{ id }] = await database.db.knex("system_alerts").insert({ source, severity: "info", message: "old", createdAt: new Date(Date.now() - 3_600_000) }).returning("id");
  await raise(apps[0], `${source}-new`); // a pass runs
  await until(() => received.some((each) => each.body.source === `${source}-new`), "the new alert");
  expect(await deliveriesOf(id)).toEqual([]);
});

it("shares the outbox between servers: every alert gets one delivery row and each attempt is made once", async () => {
  const second = await start();
  const [first] = apps;
  const source = `two-servers-${randomUUID()}`;
  plans.set(source, (n) => (n === 1 ? 500 : 200));
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => raise(i % 2 ? second : first, source)));
  for (const id of ids) expect(await settled(id)).toMatchObject({ status: "delivered", attempts: 2 });
  for (const id of ids) expect(requestsFor(id).map((each) => each.row.attempts)).toEqual([1, 2]);
});

describe("settings", () => {
  it("require a secret of at least 32 bytes with the URL, and an http(s) URL", () => {
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: "https://hooks.example.com/a" })).toThrow(/ALERT_WEBHOOK_SECRET/);
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: "https://hooks.example.com/a", ALERT_WEBHOOK_SECRET: "short" })).toThrow(/32 bytes/);
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: "ftp://hooks", ALERT_WEBHOOK_SECRET: SECRET })).toThrow(/http/);
    expect(loadConfig({ ALERT_WEBHOOK_URL: "https://hooks.example.com/a", ALERT_WEBHOOK_SECRET: SECRET }).alertWebhook).toMatchObject({ timeoutMs: 10_000, retryBaseMs: 1000, maxAttempts: 10 });
    expect(loadConfig({}).alertWebhook).toBeUndefined();
  });

  it("back off 1 s, 2 s, 4 s … capped at 5 minutes", () => {
    expect([1, 2, 3, 4, 9, 10, 20].map((attempts) => backoffMs({ retryBaseMs: 1000 }, attempts))).toEqual([1000, 2000, 4000, 8000, 256_000, 300_000, 300_000]);
  });
});
