/**
 * Parley behind a real PgBouncer in transaction mode (PostgreSQL only: jest.config.js leaves it out of the
 * PGlite project). DATABASE_URL goes through PgBouncer with prepared statements off (PgBouncer 1.18 cannot keep
 * them across transactions); DATABASE_LISTEN_URL goes straight to PostgreSQL, as LISTEN cannot go through a
 * transaction pooler. Many concurrent writers share fewer server connections than they are, and a subscriber
 * receives every message live.
 */
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { LISTENER_APPLICATION_NAME } from "../../src/db/notifications";
import { createTestDatabase, type TestDatabase } from "../helpers/db";
import { postOperation, startServerProcess, type ServerProcess } from "../helpers/process";
import { startPgBouncer, type PgBouncer } from "../helpers/pgbouncer";
import { RawSubscription } from "../helpers/live";

const SERVER_CONNECTIONS = 4;
let database: TestDatabase;
let bouncer: PgBouncer;
let server: ServerProcess;
let token: string;

beforeAll(async () => {
  database = await createTestDatabase();
  bouncer = await startPgBouncer(database.url!, SERVER_CONNECTIONS);
  server = await startServerProcess({
    DATABASE_URL: bouncer.url,
    DATABASE_LISTEN_URL: database.url!,
    DATABASE_PREPARED_STATEMENTS: "false",
    RATE_LIMIT_ENABLED: "false",
  });
  const user = await User.query(database.db.knex).insertAndFetch({ displayName: "alice", role: Role.MEMBER });
  token = (await createApiKey(database.db.knex, user.id, "test")).secret;
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await bouncer?.stop();
  await database?.dispose();
});

const post = (query: string, variables: Record<string, unknown> = {}) => postOperation(server, token, query, variables);

const ADD = `mutation($id: UUID!, $c: String!, $r: String!) { addMessage(input: { conversationId: $id, content: $c, requestId: $r }) { seq } }`;

describe("behind PgBouncer in transaction mode", () => {
  it("stores every write of 40 concurrent clients once (retries too) and delivers each live, in seq order", async () => {
    const { createConversation } = await post(`mutation { createConversation(input: { title: "pooled" }) { id } }`);
    const id = createConversation.id as string;
    const subscriber = await RawSubscription.open(server.url, token, `subscription($id: UUID!) { messageAdded(conversationId: $id, afterSeq: 0) { seq content } }`, { id });
    try {
      const before = Number((await bouncer.admin("SHOW STATS")).find((row) => row.database === new URL(database.url!).pathname.slice(1))?.total_xact_count ?? 0);
      const writes = Array.from({ length: 40 }, (_, i) => post(ADD, { id, c: `m${i}`, r: `request-${i}` }));
      await Promise.all(writes);
      await Promise.all(Array.from({ length: 10 }, (_, i) => post(ADD, { id, c: `m${i}`, r: `request-${i}` }))); // retried: stored already
      await subscriber.until((s) => s.payloads.length >= 40);

      const received = subscriber.events.map((event) => event.data.messageAdded);
      expect(received.map((message: { seq: number }) => message.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const stored = await database.db.knex("messages").where({ conversationId: id }).orderBy("seq").pluck("content");
      expect(stored).toHaveLength(40);
      expect(received.map((message: { content: string }) => message.content)).toEqual(stored);
      expect(new Set(stored).size).toBe(40);

      // The traffic went through PgBouncer, on at most its pool of server connections.
      const stats = (await bouncer.admin("SHOW STATS")).find((row) => row.database === new URL(database.url!).pathname.slice(1));
      expect(Number(stats?.total_xact_count) - before).toBeGreaterThanOrEqual(50);
      const pools = await bouncer.admin("SHOW POOLS");
      for (const pool of pools.filter((row) => row.database !== "pgbouncer")) expect(Number(pool.sv_active) + Number(pool.sv_idle) + Number(pool.sv_used)).toBeLessThanOrEqual(SERVER_CONNECTIONS);
    } finally {
      subscriber.close();
    }
    // ...and the LISTEN connection went straight to PostgreSQL, where it is listening.
    const listeners = await database.db.knex("pg_stat_activity").where({ application_name: LISTENER_APPLICATION_NAME, datname: new URL(database.url!).pathname.slice(1) }).count({ n: "*" });
    expect(Number(listeners[0].n)).toBe(1);
  }, 60_000);
});
