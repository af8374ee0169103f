import WebSocket from "ws";
import { createClient, type Client } from "graphql-ws";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { testDbKind } from "../helpers/db";
import { LISTENER_APPLICATION_NAME } from "../../src/db/notifications";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { Role } from "../../src/modules/user/role.enum";

let app: TestApp;
let alice: TestUser;
const clients: Client[] = [];

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser();
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await app.dispose();
});

/** `lazy`: the socket opens with the first operation and closes (1000) after the last one completes. */
function connect(authorization?: string, on: TestApp = app, lazy = true) {
  const closed = new Promise<number>((resolve) => {
    const client = createClient({
      url: `${on.url.replace("http", "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: authorization ? { authorization } : {},
      retryAttempts: 0,
      lazy,
      onNonLazyError: () => undefined, // the close is observed through on.closed
      on: { closed: (event) => resolve((event as { code: number }).code) },
    });
    clients.push(client);
  });
  return { client: clients[clients.length - 1], closed };
}

async function first(client: Client, query: string) {
  for await (const result of client.iterate({ query })) return result;
  throw new Error("no result");
}

describe("graphql-ws on /graphql", () => {
  it("runs operations as the user of the connection_init token", async () => {
    const { client } = connect(`Bearer ${alice.token}`);
    const result = await first(client, "{ viewer { id } }");
    expect(result.data).toEqual({ viewer: { id: alice.user.id } });
  });

  it.each([
    ["no token", () => undefined],
    ["a forged token", () => "Bearer pk_" + "A".repeat(43)],
    ["a token without Bearer", () => alice.token],
  ])("closes the connection with 4403 for %s", async (_case, authorization) => {
    const { client, closed } = connect(authorization());
    await expect(first(client, "{ viewer { id } }")).rejects.toBeDefined();
    expect(await closed).toBe(4403);
  });

  it("closes with 1013 Try Again Later, not 4403, when the token could not be checked for a reason not the token's", async () => {
    // A server of its own: none of its pooled connections has the key lookup prepared yet, which a renamed
    // column would not break. The lookup then fails as a bug would (undefined column), not as an outage.
    const other = await createTestApp();
    try {
      const bob = await other.makeUser();
      const knex = other.database.db.knex;
      await knex.raw("alter table api_keys rename column key_hash to key_hash_away");
      let code: number;
      try {
        const { client, closed } = connect(`Bearer ${bob.token}`, other);
        await expect(first(client, "{ viewer { id } }")).rejects.toBeDefined();
        code = await closed;
      } finally {
        await knex.raw("alter table api_keys rename column key_hash_away to key_hash");
      }
      // Retryable: a client asks again (4403 would tell it the key is dead), and now gets in.
      expect(code).toBe(1013);
      const { client } = connect(`Bearer ${bob.token}`, other);
      expect((await first(client, "{ viewer { id } }")).data).toEqual({ viewer: { id: bob.user.id } });
    } finally {
      await other.dispose();
    }
  });
});

/** A socket that stays open, connected with `token`; resolves once an operation ran on it. */
async function connected(token: string, on: TestApp = app) {
  const connection = connect(`Bearer ${token}`, on, false);
  expect((await first(connection.client, "{ viewer { id } }")).errors).toBeUndefined();
  return connection;
}

/** The close code, or "still open" when the socket is not closed within `ms` (a liveness bound, not a speed test). */
function closeCode(closed: Promise<number>, ms = 10_000): Promise<number | "still open"> {
  let timer: NodeJS.Timeout;
  const open = new Promise<"still open">((resolve) => (timer = setTimeout(() => resolve("still open"), ms)));
  return Promise.race([closed, open]).finally(() => clearTimeout(timer));
}

/** A second API key of `user`, so that one key can revoke the other. */
async function secondKey(user: TestUser, on: TestApp = app): Promise<{ id: string; token: string }> {
  const { key, secret } = await createApiKey(on.database.db.knex, user.user.id, "second");
  return { id: key.id, token: secret };
}

const REVOKE = "mutation ($id: UUID!) { revokeApiKey(id: $id) { id revokedAt } }";

describe("losing access closes open websockets", () => {
  let admin: TestUser;
  beforeAll(async () => {
    admin = await app.makeUser(Role.ADMIN);
  });

  it("closes the socket of a revoked key with 4403, and leaves the same user's other keys connected", async () => {
    const bob = await app.makeUser();
    const doomed = await secondKey(bob);
    const revoked = await connected(doomed.token);
    const kept = await connected(bob.token);
    await app.ok(REVOKE, { id: doomed.id }, bob.token);
    expect(await closeCode(revoked.closed)).toBe(4403);
    expect((await first(kept.client, "{ viewer { id } }")).data).toEqual({ viewer: { id: bob.user.id } });
  });

  it("closes every socket of a deactivated user, and of a user whose role changed", async () => {
    const carol = await app.makeUser();
    const dave = await app.makeUser(Role.SERVICE);
    const carolSocket = await connected(carol.token);
    const daveSocket = await connected(dave.token);
    await app.ok("mutation ($id: UUID!) { deactivateUser(id: $id) { id } }", { id: carol.user.id }, admin.token);
    await app.ok("mutation ($id: UUID!) { setUserRole(id: $id, role: MEMBER) { id } }", { id: dave.user.id }, admin.token);
    expect(await closeCode(carolSocket.closed)).toBe(4403);
    expect(await closeCode(daveSocket.closed)).toBe(4403);
    // The reconnect (with the same key) runs with the new role.
    const again = connect(`Bearer ${dave.token}`);
    expect((await first(again.client, "{ viewer { role } }")).data).toEqual({ viewer: { role: "MEMBER" } });
  });

  it("refuses the next operation of a key revoked without a notification (checked per operation)", async () => {
    const erin = await app.makeUser();
    const socket = await connected(erin.token);
    // Straight in the table: no notification is sent, so only the per-operation check can notice.
    await app.database.db.knex("api_keys").where("user_id", erin.user.id).update({ revoked_at: new Date() });
    const result = await first(socket.client, "{ viewer { id } }").catch((error: unknown) => error);
    expect(JSON.stringify(result)).toContain("UNAUTHENTICATED");
    expect(await closeCode(socket.closed)).toBe(4403);
  });

  it("closes a socket on one server when the key is revoked through another server on the same database", async () => {
    const other = await createTestApp({}, app.database);
    try {
      const frank = await app.makeUser();
      const doomed = await secondKey(frank);
      const socket = await connected(doomed.token, app);
      await other.ok(REVOKE, { id: doomed.id }, frank.token);
      expect(await closeCode(socket.closed)).toBe(4403);
    } finally {
      await other.dispose();
    }
  });
});

if (testDbKind() === "postgres") {
  describe("the LISTEN connection", () => {
    const listenerPids = async (on: TestApp): Promise<number[]> =>
      (
        await on.database.db.knex("pg_stat_activity")
          .where({ application_name: LISTENER_APPLICATION_NAME, datname: on.database.db.knex.raw("current_database()") })
          .select("pid")
      ).map((row: { pid: number }) => row.pid);

    it("reconnects after its backend is killed, re-checks every socket for changes it missed, and hears later ones", async () => {
      const own = await createTestApp();
      try {
        const grace = await own.makeUser();
        const missed = await connected(grace.token, own);
        const later = await secondKey(grace, own);
        const laterSocket = await connected(later.token, own);
        const [pid] = await listenerPids(own);
        expect(pid).toBeDefined();
        await own.database.db.knex.raw("select pg_terminate_backend(?)", [pid]);
        // Revoked while nobody listens (and without any notification at all): only the re-check can see it.
        await own.database.db.knex("api_keys").where("user_id", grace.user.id).whereNot("id", later.id).update({ revoked_at: new Date() });
        expect(await closeCode(missed.closed)).toBe(4403);
        expect(await listenerPids(own)).toHaveLength(1);
        expect((await listenerPids(own))[0]).not.toBe(pid);
        // The new connection listens: a revocation through the API closes the other socket.
        await own.ok(REVOKE, { id: later.id }, later.token);
        expect(await closeCode(laterSocket.closed)).toBe(4403);
      } finally {
        await own.dispose();
      }
    });
  });
}
