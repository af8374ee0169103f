/**
 * Two Parley server processes on one PostgreSQL (PGlite is one process's embedded database, so jest.config.js
 * runs this file in the postgres project only): a client subscribed on process A receives, in order, the messages written through
 * process B, carried between them by NOTIFY/LISTEN.
 */
import WebSocket from "ws";
import { createClient } from "graphql-ws";
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { createTestDatabase, type TestDatabase } from "../helpers/db";
import { postOperation, startServerProcess, type ServerProcess } from "../helpers/process";
import { RawSubscription } from "../helpers/live";

let database: TestDatabase;
let a: ServerProcess;
let b: ServerProcess;
let token: string;

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { DATABASE_URL: database.url!, RATE_LIMIT_ENABLED: "false" };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  const user = await User.query(database.db.knex).insertAndFetch({ displayName: "alice", role: Role.MEMBER });
  token = (await createApiKey(database.db.knex, user.id, "test")).secret;
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await database?.dispose();
});

const post = (server: ServerProcess, query: string, variables: Record<string, unknown>) => postOperation(server, token, query, variables);

describe("two server processes", () => {
  it("deliver to a subscriber on A, in order, the messages written through B", async () => {
    const { createConversation } = await post(b, `mutation { createConversation(input: { title: "fan-out" }) { id } }`, {});
    const id = createConversation.id as string;
    const client = createClient({
      url: `${a.url.replace("http", "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    const received: { seq: number; content: string }[] = [];
    try {
      const done = new Promise<void>((resolve, reject) => {
        client.subscribe<{ messageAdded: { seq: number; content: string } }>(
          { query: `subscription($id: UUID!) { messageAdded(conversationId: $id, afterSeq: 0) { seq content } }`, variables: { id } },
          {
            next: ({ data, errors }) => {
              if (errors) return reject(new Error(JSON.stringify(errors)));
              received.push(data!.messageAdded);
              if (received.length === 100) resolve();
            },
            error: reject,
            complete: () => resolve(),
          },
        );
      });
      // Two writers on B, racing: the order of seq is the order of commit, and A must show exactly that.
      await Promise.all(
        [0, 1].map(async (writer) => {
          for (let i = 1; i <= 50; i++) {
            await post(b, `mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id } }`, { id, c: `w${writer}-${i}` });
          }
        }),
      );
      await done;
    } finally {
      await client.dispose();
    }
    expect(received.map((message) => message.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const stored = await database.db.knex("messages").where({ conversationId: id }).orderBy("seq").pluck("content");
    expect(received.map((message) => message.content)).toEqual(stored);
  });

  it("serve 1,000 subscribers each on one conversation: all 2,000 receive every message, once and in order, whichever process wrote it", async () => {
    const { createConversation } = await post(a, `mutation { createConversation(input: { title: "crowd" }) { id } }`, {});
    const id = createConversation.id as string;
    // afterSeq 0 on an empty conversation: every message is owed to every subscriber, however late it subscribed.
    const query = `subscription($id: UUID!) { messageAdded(conversationId: $id, afterSeq: 0) { seq content } }`;
    const subscribers: RawSubscription[] = [];
    try {
      // In batches, as browsers would arrive; each server multiplexes its own thousand.
      for (let batch = 0; batch < 20; batch++) {
        subscribers.push(...(await Promise.all(Array.from({ length: 100 }, (_, i) => RawSubscription.open((i % 2 ? a : b).url, token, query, { id })))));
      }
      for (let i = 1; i <= 10; i++) {
        await post(i % 2 ? a : b, `mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id } }`, { id, c: `m${i}` });
      }
      await Promise.all(subscribers.map((subscriber) => subscriber.until((s) => s.payloads.length >= 10, 60_000)));
    } finally {
      for (const subscriber of subscribers) subscriber.close();
    }
    const expected = Array.from({ length: 10 }, (_, i) => ({ seq: i + 1, content: `m${i + 1}` }));
    for (const subscriber of subscribers) expect(subscriber.events.map((event) => event.data.messageAdded)).toEqual(expected);
  }, 120_000);
});
