/**
 * A slow database (PostgreSQL only: the statement timeout is the server's): statements that wait on a lock
 * hold a few pool connections while other traffic goes on; they are cancelled after
 * DATABASE_STATEMENT_TIMEOUT_MS with SERVICE_UNAVAILABLE (reason STATEMENT_TIMEOUT, HTTP 503, Retry-After), and
 * store nothing; a request that finds every connection taken waits at most DATABASE_ACQUIRE_TIMEOUT_MS.
 * Exports and migrations run on the maintenance pool, which has no statement timeout.
 */
import knexFactory, { type Knex } from "knex";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let alice: TestUser;
let locker: Knex;

beforeAll(async () => {
  // The acquire bound is far below the statement timeout, so which of the two ends a request is never close.
  app = await createTestApp({ DATABASE_STATEMENT_TIMEOUT_MS: "4000", DATABASE_POOL_MAX: "4", DATABASE_ACQUIRE_TIMEOUT_MS: "300" });
  alice = await app.makeUser(Role.MEMBER);
  locker = knexFactory({ client: "pg", connection: app.database.url! });
});
afterAll(async () => {
  await locker?.destroy();
  await app?.dispose();
});

const ADD = `mutation($c: UUID!, $text: String!, $r: String) { addMessage(input: { conversationId: $c, content: $text, requestId: $r }) { seq } }`;
const HISTORY = `query($c: UUID!) { conversation(id: $c) { messageCount messages(last: 10) { edges { node { seq content } } } } }`;

async function conversation(title: string): Promise<string> {
  return (await app.ok(`mutation($t: String!) { createConversation(input: { title: $t }) { id } }`, { t: title }, alice.token)).createConversation.id;
}

async function post(query: string, variables: Record<string, unknown>) {
  const response = await fetch(`${app.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { data?: any; errors?: any[] } };
}

/** Backends of the test's database waiting on a lock (the API's statements blocked by `locker`). */
async function waitingOnLocks(): Promise<number> {
  const { rows } = await locker.raw("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
  return rows[0].n;
}

async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

/** Holds the conversation's row lock (as a long transaction elsewhere would) until the returned function is called. */
async function holdRowLock(conversationId: string): Promise<() => Promise<void>> {
  const trx = await locker.transaction();
  await trx("conversations").where({ id: conversationId }).forUpdate().first("id");
  return async () => void (await trx.rollback());
}

describe("a slow database", () => {
  it("cancels statements past DATABASE_STATEMENT_TIMEOUT_MS with 503 STATEMENT_TIMEOUT while other traffic goes on, and they store nothing", async () => {
    const [slow, normal] = [await conversation("slow"), await conversation("normal")];
    const release = await holdRowLock(slow);
    try {
      const blocked = [1, 2, 3].map((i) => post(ADD, { c: slow, text: `blocked ${i}`, r: `blocked-${i}` }));
      expect(await eventually(async () => (await waitingOnLocks()) === 3)).toBe(true);

      // Three of the four connections are held by statements that cannot finish; everyone else goes on.
      for (let i = 1; i <= 10; i++) {
        expect((await app.ok(ADD, { c: normal, text: `normal ${i}` }, alice.token)).addMessage.seq).toBe(i);
        expect((await app.ok(HISTORY, { c: normal }, alice.token)).conversation.messageCount).toBe(i);
      }
      expect(await waitingOnLocks()).toBe(3); // still waiting: the traffic above did not wait for them

      for (const answer of await Promise.all(blocked)) {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe("5");
        expect(answer.body.errors).toEqual([
          expect.objectContaining({
            message: "The database took too long to answer (statement timeout); try again",
            extensions: { code: "SERVICE_UNAVAILABLE", reason: "STATEMENT_TIMEOUT", retryAfterSeconds: 5 },
          }),
        ]);
      }
    } finally {
      await release();
    }
    // Nothing of the cancelled writes was stored; the same request again goes through, once.
    expect(await app.database.db.knex("messages").where({ conversationId: slow }).count({ n: "*" })).toEqual([{ n: 0 }]);
    expect((await app.ok(ADD, { c: slow, text: "blocked 1", r: "blocked-1" }, alice.token)).addMessage.seq).toBe(1);
    expect((await app.ok(ADD, { c: slow, text: "blocked 1", r: "blocked-1" }, alice.token)).addMessage.seq).toBe(1);
  });

  it("answers 503 after DATABASE_ACQUIRE_TIMEOUT_MS, not a hang, when every pool connection is taken", async () => {
    const slow = await conversation("pool");
    const release = await holdRowLock(slow);
    let blocked: Promise<unknown>[] = [];
    try {
      blocked = [1, 2, 3, 4].map((i) => post(ADD, { c: slow, text: `blocked ${i}` }));
      expect(await eventually(async () => (await waitingOnLocks()) === 4)).toBe(true);
      const answer = await post(`query { viewer { id } }`, {});
      expect({ status: answer.status, retryAfter: answer.retryAfter, error: answer.body.errors?.[0] }).toEqual({
        status: 503,
        retryAfter: "5",
        error: expect.objectContaining({ extensions: { code: "SERVICE_UNAVAILABLE", reason: "DATABASE_UNAVAILABLE", retryAfterSeconds: 5 } }),
      });
    } finally {
      await release();
      await Promise.all(blocked);
    }
  });

  it("runs maintenance work (exports, migrations) without the statement timeout", async () => {
    const { db } = app.database;
    expect((await db.knex.raw("show statement_timeout")).rows[0].statement_timeout).toBe("4s");
    expect((await db.maintenance.raw("show statement_timeout")).rows[0].statement_timeout).toBe("0");
  });
});
