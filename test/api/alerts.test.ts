/**
 * Alerts (issue 14.5): raiseAlert by services and admins (whom an alert may name), input checks, who sees
 * which alert in `alerts` and over alertRaised on a real websocket (a member never another member's), the
 * ledger's way of announcing alerts (alertRaisedSql), and acknowledge/resolve: admins only, idempotent, audited.
 */
import { randomUUID } from "node:crypto";
import type { Client, FormattedExecutionResult } from "graphql-ws";
import { Role } from "../../src/modules/user/role.enum";
import { alertRaisedSql } from "../../src/modules/live/live.hub";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { wsClient } from "../helpers/live";

const ALERT = `id source severity message details userId budgetId raisedBy acknowledgedAt acknowledgedBy resolvedAt resolvedBy createdAt`;
const RAISE = `mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { ${ALERT} } }`;
const ACKNOWLEDGE = `mutation($id: UUID!) { acknowledgeAlert(id: $id) { ${ALERT} } }`;
const RESOLVE = `mutation($id: UUID!) { resolveAlert(id: $id) { ${ALERT} } }`;
const ALERTS = `query($filter: AlertFilter, $first: Int, $after: String) {
  alerts(filter: $filter, first: $first, after: $after) { totalCount edges { cursor node { ${ALERT} } } pageInfo { hasNextPage endCursor } }
}`;
const ALERT_RAISED = `subscription { alertRaised { id source severity message userId } }`;

interface Alert {
  id: string;
  source: string;
  severity: string;
  message: string;
  details: Record<string, unknown>;
  userId: string | null;
  raisedBy: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  createdAt: string;
}

let app: TestApp;
let admin: TestUser;
let service: TestUser;
let alice: TestUser;
let bob: TestUser;
const clients: Client[] = [];

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN);
  service = await app.makeUser(Role.SERVICE);
  alice = await app.makeUser(Role.MEMBER);
  bob = await app.makeUser(Role.MEMBER);
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await app.dispose();
});

/** A source no other test uses, so that each test filters out the others' alerts. */
const freshSource = () => `test-${randomUUID()}`;

async function raise(input: Record<string, unknown>, token = service.token): Promise<Alert> {
  return (await app.ok<{ raiseAlert: Alert }>(RAISE, { input: { severity: "WARNING", message: "disk almost full", ...input } }, token)).raiseAlert;
}

async function raiseError(input: Record<string, unknown>, token = service.token) {
  const { body } = await app.gql(RAISE, { input: { severity: "WARNING", source: "checks", message: "m", ...input } }, token);
  expect(body.errors).toHaveLength(1);
  return body.errors![0].extensions ?? {};
}

async function alerts(token: string, filter: Record<string, unknown>, page: { first?: number; after?: string } = {}) {
  return (await app.ok<{ alerts: { totalCount: number; edges: { cursor: string; node: Alert }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(
    ALERTS,
    { filter, ...page },
    token,
  )).alerts;
}

const ids = (connection: { edges: { node: Alert }[] }) => connection.edges.map((edge) => edge.node.id);

describe("raiseAlert", () => {
  it("stores what a service raises, by whom, and returns it", async () => {
    const source = freshSource();
    const alert = await raise({ source: `  ${source} `, severity: "CRITICAL", message: "queue stuck", details: { queue: "embeddings", depth: 12 } });
    expect(alert).toMatchObject({ source, severity: "CRITICAL", message: "queue stuck", details: { queue: "embeddings", depth: 12 }, userId: null, raisedBy: service.user.id });
    expect(alert).toMatchObject({ acknowledgedAt: null, resolvedAt: null, budgetId: null });
  });

  it("is for services and admins: members are FORBIDDEN, anonymous callers UNAUTHENTICATED", async () => {
    expect((await raiseError({}, alice.token)).code).toBe("FORBIDDEN");
    expect((await raiseError({}, "")).code).toBe("UNAUTHENTICATED");
    expect((await raise({ source: freshSource() }, admin.token)).raisedBy).toBe(admin.user.id);
  });

  it("names a user only within the raiser's rights: admins anyone, services themselves", async () => {
    expect((await raise({ source: freshSource(), userId: alice.user.id }, admin.token)).userId).toBe(alice.user.id);
    expect((await raise({ source: freshSource(), userId: service.user.id })).userId).toBe(service.user.id);
    expect((await raiseError({ userId: alice.user.id })).code).toBe("FORBIDDEN");
    expect(await raiseError({ userId: randomUUID() }, admin.token)).toMatchObject({ code: "BAD_USER_INPUT", field: "userId" });
  });

  it("refuses bad input with BAD_USER_INPUT naming the field", async () => {
    for (const [input, field] of [
      [{ source: "   " }, "source"],
      [{ source: "s".repeat(101) }, "source"],
      [{ source: "a\u0000b" }, "source"],
      [{ message: "" }, "message"],
      [{ message: "m".repeat(2001) }, "message"],
      [{ details: [1, 2] }, "details"],
      [{ details: "text" }, "details"],
      [{ details: { deep: "x\u0000" } }, "details"],
    ] as const) {
      expect(await raiseError(input)).toMatchObject({ code: "BAD_USER_INPUT", field });
    }
    // The longest accepted, counted in characters (code points), not bytes.
    expect((await raise({ source: "é".repeat(100), message: "😀".repeat(2000) })).source).toHaveLength(100);
    const { status } = await app.gql(RAISE, { input: { severity: "LOUD", source: "s", message: "m" } }, service.token);
    expect(status).toBe(400);
  });
});

describe("alerts", () => {
  it("shows admins every alert and anyone else only the alerts about them", async () => {
    const source = freshSource();
    const forAlice = await raise({ source, userId: alice.user.id }, admin.token);
    const forBob = await raise({ source, userId: bob.user.id }, admin.token);
    const nobodys = await raise({ source });
    const own = await raise({ source, userId: service.user.id });
    expect(ids(await alerts(admin.token, { source }))).toEqual([own.id, nobodys.id, forBob.id, forAlice.id]);
    expect(ids(await alerts(alice.token, { source }))).toEqual([forAlice.id]);
    expect(ids(await alerts(bob.token, { source }))).toEqual([forBob.id]);
    expect(ids(await alerts(service.token, { source }))).toEqual([own.id]);
    expect((await alerts(alice.token, {})).edges.every((edge) => edge.node.userId === alice.user.id)).toBe(true);
  });

  it("filters by severity, state and time, and pages newest first", async () => {
    const source = freshSource();
    const raised: Alert[] = [];
    for (const severity of ["INFO", "WARNING", "CRITICAL", "WARNING", "INFO"]) raised.push(await raise({ source, severity }));
    await app.ok(ACKNOWLEDGE, { id: raised[1].id }, admin.token);
    await app.ok(RESOLVE, { id: raised[2].id }, admin.token);
    const newestFirst = raised.map((alert) => alert.id).reverse();
    expect(ids(await alerts(admin.token, { source, severity: "WARNING" }))).toEqual([raised[3].id, raised[1].id]);
    expect(ids(await alerts(admin.token, { source, acknowledged: true }))).toEqual([raised[2].id, raised[1].id]);
    expect(ids(await alerts(admin.token, { source, resolved: false }))).toEqual(newestFirst.filter((id) => id !== raised[2].id));
    expect(ids(await alerts(admin.token, { source, resolved: true, acknowledged: true }))).toEqual([raised[2].id]);
    expect(ids(await alerts(admin.token, { source, from: raised[4].createdAt }))).toContain(raised[4].id);
    expect(ids(await alerts(admin.token, { source, from: raised[4].createdAt }))).not.toContain(raised[0].id);
    expect(ids(await alerts(admin.token, { source, to: raised[0].createdAt }))).toEqual([]);

    const first = await alerts(admin.token, { source }, { first: 2 });
    expect(first).toMatchObject({ totalCount: 5, pageInfo: { hasNextPage: true } });
    const second = await alerts(admin.token, { source }, { first: 2, after: first.pageInfo.endCursor! });
    const third = await alerts(admin.token, { source }, { first: 2, after: second.pageInfo.endCursor! });
    expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(newestFirst);
    expect(third.pageInfo.hasNextPage).toBe(false);
  });
});

describe("acknowledgeAlert and resolveAlert", () => {
  const auditRows = (id: string) => app.database.db.knex("audit_logs").where({ targetType: "system_alert", targetId: id }).orderBy("createdAt").select("action", "actorId");

  it("are for admins only: services and members are FORBIDDEN, and nothing changes", async () => {
    const alert = await raise({ source: freshSource(), userId: service.user.id });
    for (const token of [service.token, alice.token]) {
      expect(await app.errorCode(ACKNOWLEDGE, { id: alert.id }, token)).toBe("FORBIDDEN");
      expect(await app.errorCode(RESOLVE, { id: alert.id }, token)).toBe("FORBIDDEN");
    }
    expect((await alerts(admin.token, { source: alert.source })).edges[0].node).toMatchObject({ acknowledgedAt: null, resolvedAt: null });
    expect(await auditRows(alert.id)).toEqual([]);
    expect(await app.errorCode(ACKNOWLEDGE, { id: randomUUID() }, admin.token)).toBe("NOT_FOUND");
  });

  it("are idempotent: a second call (by anyone) returns the first one's answer and audits once", async () => {
    const other = await app.makeUser(Role.ADMIN);
    const alert = await raise({ source: freshSource() });
    const acknowledged = (await app.ok<{ acknowledgeAlert: Alert }>(ACKNOWLEDGE, { id: alert.id }, admin.token)).acknowledgeAlert;
    expect(acknowledged).toMatchObject({ acknowledgedBy: admin.user.id, resolvedAt: null });
    expect(acknowledged.acknowledgedAt).not.toBeNull();
    expect((await app.ok<{ acknowledgeAlert: Alert }>(ACKNOWLEDGE, { id: alert.id }, other.token)).acknowledgeAlert).toEqual(acknowledged);

    const resolved = (await app.ok<{ resolveAlert: Alert }>(RESOLVE, { id: alert.id }, other.token)).resolveAlert;
    expect(resolved).toMatchObject({ acknowledgedAt: acknowledged.acknowledgedAt, acknowledgedBy: admin.user.id, resolvedBy: other.user.id });
    expect((await app.ok<{ resolveAlert: Alert }>(RESOLVE, { id: alert.id }, admin.token)).resolveAlert).toEqual(resolved);
    expect(await auditRows(alert.id)).toEqual([
      { action: "alert.acknowledge", actorId: admin.user.id },
      { action: "alert.resolve", actorId: other.user.id },
    ]);
  });

  it("resolving an alert nobody acknowledged acknowledges it too", async () => {
    const alert = await raise({ source: freshSource() });
    const resolved = (await app.ok<{ resolveAlert: Alert }>(RESOLVE, { id: alert.id }, admin.token)).resolveAlert;
    expect(resolved).toMatchObject({ acknowledgedBy: admin.user.id, resolvedBy: admin.user.id, acknowledgedAt: resolved.resolvedAt });
  });
});

describe("alertRaised", () => {
  type Event = FormattedExecutionResult<{ alertRaised: Alert }, unknown>;
  const WAIT_MS = 30_000;

  /** Subscribes `token` to alertRaised; `received` are its events so far, `ended` once it errored or completed. */
  async function watch(token: string) {
    const events: Event[] = [];
    let ended = false;
    const client = wsClient(app.url, token);
    clients.push(client);
    const before = app.server.live.size;
    client.subscribe<{ alertRaised: Alert }>(
      { query: ALERT_RAISED },
      {
        next: (event) => void events.push(event),
        error: (error) => {
          events.push({ errors: Array.isArray(error) ? error : [{ message: String(error) }] } as Event);
          ended = true;
        },
        complete: () => void (ended = true),
      },
    );
    await until(() => app.server.live.size > before || ended, "the stream to open");
    return { events, ended: () => ended, sources: () => events.map((event) => event.data?.alertRaised.source) };
  }

  async function until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("sends admins every alert, members and services only theirs, and never another member's", async () => {
    const [toAdmin, toAlice, toBob, toService] = await Promise.all([watch(admin.token), watch(alice.token), watch(bob.token), watch(service.token)]);
    const source = freshSource();
    const raised = [
      await raise({ source: `${source}-alice`, userId: alice.user.id }, admin.token),
      await raise({ source: `${source}-nobody` }),
      await raise({ source: `${source}-service`, userId: service.user.id }),
      await raise({ source: `${source}-alice-2`, userId: alice.user.id }, admin.token),
    ];
    await until(() => toAdmin.events.length >= 4 && toAlice.events.length >= 2 && toService.events.length >= 1, "the alerts");
    // A last alert for bob, sent after the others: once it arrives, anything else for bob would have too.
    const last = await raise({ source: `${source}-bob`, userId: bob.user.id }, admin.token);
    await until(() => toBob.events.length >= 1 && toAdmin.events.length >= 5, "bob's alert");
    expect(toAdmin.events.map((event) => event.data?.alertRaised.id)).toEqual([...raised, last].map((alert) => alert.id));
    expect(toAlice.sources()).toEqual([`${source}-alice`, `${source}-alice-2`]);
    expect(toService.sources()).toEqual([`${source}-service`]);
    expect(toBob.sources()).toEqual([`${source}-bob`]);
    expect(toAlice.events.concat(toBob.events).every((event) => !event.errors)).toBe(true);
  });

  it("sends an alert the ledger inserts in SQL and announces with alertRaisedSql", async () => {
    const toAlice = await watch(alice.token);
    const source = freshSource();
    await app.database.db.knex.raw(
      `with a as (insert into system_alerts (source, severity, message, user_id, dedupe_key) values (?, 'warning', 'budget 80%', ?, ?) returning id, user_id)
       select ${alertRaisedSql("a")} from a`,
      [source, alice.user.id, `test:${source}`],
    );
    await until(() => toAlice.events.length >= 1, "the ledger's alert");
    expect(toAlice.events[0].data?.alertRaised).toMatchObject({ source, severity: "WARNING", userId: alice.user.id });
  });

  it("refuses an anonymous websocket", async () => {
    const client = wsClient(app.url, "", { connectionParams: {} });
    clients.push(client);
    const result = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: ALERT_RAISED }, { next: resolve, error: resolve, complete: () => resolve("completed") }),
    );
    expect((result as { code?: number }).code).toBe(4403); // the server takes no anonymous websocket at all
  });
});
