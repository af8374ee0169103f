/**
 * messageAdded over a real websocket with the graphql-ws client: catch-up from afterSeq handed over to live
 * messages under concurrent writers (exact sequence), live-only streams, permission checks at subscribe time
 * and when access is lost mid-stream, and clean-up when a client leaves.
 */
import type { Client, FormattedExecutionResult } from "graphql-ws";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { testDbKind } from "../helpers/db";
import { CONVERSATION_EVENTS, wsClient } from "../helpers/live";
import { LISTENER_APPLICATION_NAME } from "../../src/db/notifications";

let app: TestApp;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
const clients: Client[] = [];
type Event = FormattedExecutionResult<Record<string, unknown>, unknown>;

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  admin = await app.makeUser(Role.ADMIN, "admin");
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await app.dispose();
});

const MESSAGE_ADDED = `subscription($id: UUID!, $after: Int) {
  messageAdded(conversationId: $id, afterSeq: $after) { id seq role content author { id } }
}`;

/** Liveness bound for waiting on events (a hang fails with what was received, not a jest timeout). */
const WAIT_MS = 30_000;

function client(token: string): Client {
  const created = wsClient(app.url, token);
  clients.push(created);
  return created;
}

interface Subscription {
  events: Event[];
  /** Resolves once `done(events)` holds or the stream ended; rejects after WAIT_MS. */
  until(done: (events: Event[]) => boolean): Promise<void>;
  ended: () => boolean;
  unsubscribe: () => void;
}

function subscribe(token: string, variables: Record<string, unknown>, query = MESSAGE_ADDED): Subscription {
  const events: Event[] = [];
  let ended = false;
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((listener) => listener());
  const unsubscribe = client(token).subscribe(
    { query, variables },
    {
      next: (value) => {
        events.push(value);
        changed();
      },
      error: (error) => {
        events.push({ errors: Array.isArray(error) ? error : [{ message: String(error) }] } as Event);
        ended = true;
        changed();
      },
      complete: () => {
        ended = true;
        changed();
      },
    },
  );
  return {
    events,
    ended: () => ended,
    unsubscribe,
    until(done) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (done(events) || ended) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`still waiting after ${WAIT_MS} ms; received ${JSON.stringify(events).slice(0, 500)}`));
        }, WAIT_MS);
        listeners.add(check);
        check();
      });
    },
  };
}

const seqs = (events: Event[]) =>
  events.map((event) => (event.data as { messageAdded: { seq: number } } | null)?.messageAdded.seq);

async function conversationOf(owner: TestUser, title = "live"): Promise<string> {
  const { createConversation } = await app.ok(`mutation($t: String!) { createConversation(input: { title: $t }) { id } }`, { t: title }, owner.token);
  return createConversation.id;
}

async function add(owner: TestUser, conversationId: string, content: string) {
  const { addMessage } = await app.ok(
    `mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id seq } }`,
    { id: conversationId, c: content },
    owner.token,
  );
  return addMessage as { id: string; seq: number };
}

/** Waits until the server has `count` streams open (a stream registers before it reads anything). */
async function streamsOpen(count: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (app.server.live.size !== count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} open streams, have ${app.server.live.size}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("messageAdded", () => {
  it("delivers every message after afterSeq, then live ones from concurrent writers, in order, without gaps or duplicates", async () => {
    const id = await conversationOf(alice);
    for (let i = 1; i <= 50; i++) await add(alice, id, `before ${i}`);
    const sub = subscribe(alice.token, { id, after: 20 });
    // Three writers race with the catch-up: 150 more messages.
    await Promise.all(
      [0, 1, 2].map(async (writer) => {
        for (let i = 1; i <= 50; i++) await add(alice, id, `writer ${writer} #${i}`);
      }),
    );
    await sub.until((events) => events.length >= 180);
    expect(seqs(sub.events)).toEqual(Array.from({ length: 180 }, (_, i) => 21 + i));
    const stored = await app.database.db.knex("messages").where({ conversationId: id }).where("seq", ">", 20).orderBy("seq").select("id", "content");
    expect(sub.events.map((event) => (event.data as any).messageAdded.id)).toEqual(stored.map((row: { id: string }) => row.id));
    expect(sub.events.map((event) => (event.data as any).messageAdded.content)).toEqual(stored.map((row: { content: string }) => row.content));
    expect((sub.events[0].data as any).messageAdded.author).toEqual({ id: alice.user.id });
    // Nothing more arrives: one more message is the next event, not a repeat.
    await add(alice, id, "last");
    await sub.until((events) => events.length >= 181);
    expect(seqs(sub.events).slice(-1)).toEqual([201]);
    sub.unsubscribe();
  });

  it("without afterSeq delivers only messages stored after subscribing", async () => {
    const id = await conversationOf(alice);
    for (let i = 1; i <= 3; i++) await add(alice, id, `old ${i}`);
    const before = app.server.live.size;
    const sub = subscribe(alice.token, { id });
    await streamsOpen(before + 1);
    await add(alice, id, "new 4");
    await add(alice, id, "new 5");
    await sub.until((events) => events.length >= 2);
    expect(seqs(sub.events)).toEqual([4, 5]);
    sub.unsubscribe();
  });

  it("serves a conversation's subscribers each new message with one shared read, not one per subscriber", async () => {
    const id = await conversationOf(alice);
    await add(alice, id, "first");
    const subs = [...Array.from({ length: 5 }, () => subscribe(alice.token, { id, after: 0 })), ...Array.from({ length: 5 }, () => subscribe(admin.token, { id, after: 0 }))];
    await Promise.all(subs.map((sub) => sub.until((events) => events.length >= 1)));

    const reads: string[] = [];
    const count = ({ sql }: { sql: string }) => {
      if (/from "messages" where "conversation_id" = (\?|\$1) and "seq" > (\?|\$2)/.test(sql)) reads.push(sql);
    };
    const knex = app.database.db.knex;
    knex.on("query", count);
    try {
      for (const [index, text] of ["second", "third", "fourth"].entries()) {
        await add(alice, id, text);
        await Promise.all(subs.map((sub) => sub.until((events) => events.length >= index + 2)));
      }
    } finally {
      knex.removeListener("query", count);
    }
    expect(reads).toHaveLength(3);
    for (const sub of subs) {
      expect(sub.events.map((event) => (event.data as any).messageAdded.content)).toEqual(["first", "second", "third", "fourth"]);
      sub.unsubscribe();
    }
  });

  it("closes the stream and forgets its watcher when the client unsubscribes", async () => {
    const id = await conversationOf(alice);
    const before = app.server.live.size;
    const sub = subscribe(alice.token, { id });
    await streamsOpen(before + 1);
    sub.unsubscribe();
    await streamsOpen(before);
  });

  it.each([
    ["another member's conversation", async () => conversationOf(alice), () => bob, "NOT_FOUND"],
    ["an unknown conversation", async () => "00000000-0000-4000-8000-000000000000", () => alice, "NOT_FOUND"],
  ])("refuses %s with NOT_FOUND and streams nothing", async (_case, target, who, code) => {
    const id = await target();
    const sub = subscribe(who().token, { id, after: 0 });
    await sub.until(() => false);
    expect(sub.events).toHaveLength(1);
    expect(sub.events[0].data ?? null).toBeNull();
    expect(sub.events[0].errors?.[0].extensions?.code).toBe(code);
  });

  it("refuses a negative afterSeq with BAD_USER_INPUT", async () => {
    const id = await conversationOf(alice);
    const sub = subscribe(alice.token, { id, after: -1 });
    await sub.until(() => false);
    expect(sub.events.map((event) => event.errors?.[0].extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  });

  it("ends with NOT_FOUND when the conversation is deleted mid-stream", async () => {
    const id = await conversationOf(alice);
    await add(alice, id, "one");
    const sub = subscribe(alice.token, { id, after: 0 });
    await sub.until((events) => events.length >= 1);
    await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id }, alice.token);
    await sub.until(() => false);
    expect(seqs(sub.events.slice(0, 1))).toEqual([1]);
    expect(sub.events.slice(1).map((event) => event.errors?.[0].extensions?.code)).toEqual(["NOT_FOUND"]);
  });

  it("ends with NOT_FOUND when a service loses its grant mid-stream, and reached only the granted conversation before", async () => {
    const service = await app.makeUser(Role.SERVICE, "worker");
    const id = await conversationOf(alice);
    const { grantService } = await app.ok(
      `mutation($s: UUID!, $c: UUID!) { grantService(input: { serviceId: $s, conversationId: $c }) { id } }`,
      { s: service.user.id, c: id },
      admin.token,
    );
    await add(alice, id, "granted");
    const sub = subscribe(service.token, { id, after: 0 });
    await sub.until((events) => events.length >= 1);
    expect((sub.events[0].data as any).messageAdded.content).toBe("granted");
    await app.ok(`mutation($id: UUID!) { revokeServiceGrant(id: $id) }`, { id: grantService.id }, admin.token);
    await sub.until(() => false);
    expect(sub.events.slice(1).map((event) => event.errors?.[0].extensions?.code)).toEqual(["NOT_FOUND"]);
  });
});

const EVENTS = CONVERSATION_EVENTS;

describe("conversationEvents with streamed replies", () => {
  let worker: TestUser;
  beforeAll(async () => {
    worker = await app.makeUser(Role.SERVICE, "streamer");
  });

  async function streamedConversation() {
    const id = await conversationOf(alice);
    await app.grant(worker, { conversationId: id });
    return id;
  }
  const start = async (id: string) =>
    (await app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id seq } }`, { c: id }, worker.token)).startMessage as {
      id: string;
      seq: number;
    };
  const append = (messageId: string, index: number, text: string) =>
    app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: messageId, i: index, t: text }, worker.token);
  const complete = (messageId: string) => app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { id } }`, { m: messageId }, worker.token);
  const payload = (event: Event) => (event.data as { conversationEvents: Record<string, any> }).conversationEvents;

  it("sends again, as they are now, the replies a resuming client names in streamingSeqs (one ended while it was away)", async () => {
    const id = await streamedConversation();
    const ended = await start(id);
    await append(ended.id, 0, "done ");
    const open = await start(id);
    await append(open.id, 0, "still ");
    await add(alice, id, "a question");
    await complete(ended.id); // while the client was away: it still shows `ended` as streaming
    const sub = subscribe(alice.token, { id, after: 3, streaming: [ended.seq, open.seq] }, EVENTS);
    await sub.until((events) => events.length >= 2);
    expect(sub.events.map(payload)).toEqual([
      { __typename: "MessageUpdatedEvent", message: { id: ended.id, seq: 1, status: "COMPLETE", content: "done ", chunkCount: 1 } },
      { __typename: "MessageUpdatedEvent", message: { id: open.id, seq: 2, status: "STREAMING", content: "still ", chunkCount: 1 } },
    ]);
    const unnamed = subscribe(alice.token, { id, after: 3 }, EVENTS); // without it, only what still streams
    await unnamed.until((events) => events.length >= 1);
    await add(alice, id, "marker");
    await unnamed.until((events) => events.length >= 2);
    expect(unnamed.events.map((event) => payload(event).message.seq)).toEqual([2, 4]);
  });

  it("refuses more streamingSeqs than a page with BAD_USER_INPUT", async () => {
    const id = await streamedConversation();
    const sub = subscribe(alice.token, { id, after: 0, streaming: Array.from({ length: 101 }, (_, i) => i + 1) }, EVENTS);
    await sub.until(() => false);
    expect(sub.events.map((event) => event.errors?.[0].extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  });

  it("sends the new message, then each chunk once as a delta (a retried chunk is not repeated), then the completed message", async () => {
    const id = await streamedConversation();
    const sub = subscribe(alice.token, { id, after: 0 }, EVENTS);
    const message = await start(id);
    await sub.until((events) => events.length >= 1);
    expect(payload(sub.events[0])).toEqual({ __typename: "MessageAddedEvent", message: { id: message.id, seq: 1, status: "STREAMING", content: "", chunkCount: 0 } });
    const chunks = ["Once ", "upon ", "a ", "time", "."];
    for (const [index, text] of chunks.entries()) {
      await append(message.id, index, text);
      if (index === 2) await append(message.id, index, text); // a worker's retry
      await sub.until((events) => events.length >= 2 + index);
    }
    await complete(message.id);
    await sub.until((events) => events.length >= 7);
    expect(sub.events.slice(1, 6).map(payload)).toEqual(
      chunks.map((text, index) => ({ __typename: "MessageDeltaEvent", messageId: message.id, seq: 1, index, text })),
    );
    expect(payload(sub.events[6])).toEqual({
      __typename: "MessageUpdatedEvent",
      message: { id: message.id, seq: 1, status: "COMPLETE", content: chunks.join(""), chunkCount: 5 },
    });
    // Then quiet: the next event is the next message, nothing repeated.
    await add(alice, id, "thanks");
    await sub.until((events) => events.length >= 8);
    expect(payload(sub.events[7])).toMatchObject({ __typename: "MessageAddedEvent", message: { seq: 2, content: "thanks" } });
    sub.unsubscribe();
  });

  it("resuming mid-stream with afterSeq sends the text so far, then only the following deltas", async () => {
    const id = await streamedConversation();
    const message = await start(id);
    await append(message.id, 0, "ab");
    await append(message.id, 1, "cd");
    // The client had received the message (seq 1) and lost its connection.
    const sub = subscribe(alice.token, { id, after: message.seq }, EVENTS);
    await sub.until((events) => events.length >= 1);
    expect(payload(sub.events[0])).toEqual({
      __typename: "MessageUpdatedEvent",
      message: { id: message.id, seq: 1, status: "STREAMING", content: "abcd", chunkCount: 2 },
    });
    await append(message.id, 2, "ef");
    await sub.until((events) => events.length >= 2);
    await complete(message.id);
    await sub.until((events) => events.length >= 3);
    expect(sub.events.slice(1).map(payload)).toEqual([
      { __typename: "MessageDeltaEvent", messageId: message.id, seq: 1, index: 2, text: "ef" },
      { __typename: "MessageUpdatedEvent", message: { id: message.id, seq: 1, status: "COMPLETE", content: "abcdef", chunkCount: 3 } },
    ]);
    sub.unsubscribe();
  });

  it("refuses another member with NOT_FOUND", async () => {
    const id = await streamedConversation();
    const sub = subscribe(bob.token, { id, after: 0 }, EVENTS);
    await sub.until(() => false);
    expect(sub.events.map((event) => event.errors?.[0].extensions?.code)).toEqual(["NOT_FOUND"]);
  });
});

const INBOX = `subscription { conversationsChanged { conversationId deleted conversation { id title status messageCount lastMessage { content } } } }`;

describe("conversationsChanged", () => {
  it("sends each change to the viewer's own conversations as they are now, and deletions, and nothing of other users'", async () => {
    const carol = await app.makeUser(Role.MEMBER, "carol");
    const before = app.server.live.size;
    const sub = subscribe(carol.token, {}, INBOX);
    await streamsOpen(before + 1);
    const change = (index: number) => (sub.events[index].data as { conversationsChanged: Record<string, any> }).conversationsChanged;

    const id = await conversationOf(carol, "first title");
    await sub.until((events) => events.length >= 1);
    expect(change(0)).toEqual({ conversationId: id, deleted: false, conversation: { id, title: "first title", status: "ACTIVE", messageCount: 0, lastMessage: null } });

    await conversationOf(bob, "not carol's"); // another user's: never sent to carol
    await add(carol, id, "hello");
    await sub.until((events) => events.length >= 2);
    expect(change(1).conversation).toMatchObject({ id, messageCount: 1, lastMessage: { content: "hello" } });

    await app.ok(`mutation($id: UUID!) { updateConversation(id: $id, input: { title: "renamed" }) { id } }`, { id }, carol.token);
    await sub.until((events) => events.length >= 3);
    await app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id }, carol.token);
    await sub.until((events) => events.length >= 4);
    await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id }, carol.token);
    await sub.until((events) => events.length >= 5);
    expect([change(2).conversation.title, change(3).conversation.status, change(4)]).toEqual([
      "renamed",
      "ARCHIVED",
      { conversationId: id, deleted: true, conversation: null },
    ]);
    expect(sub.events.every((event) => (event.data as any).conversationsChanged.conversationId === id)).toBe(true);
    sub.unsubscribe();
  });

  it("is not flooded by access changes elsewhere (a key revoked by another user)", async () => {
    const dana = await app.makeUser(Role.MEMBER, "dana");
    await conversationOf(dana, "older");
    const before = app.server.live.size;
    const sub = subscribe(dana.token, {}, INBOX);
    await streamsOpen(before + 1);
    const { createApiKey } = await app.ok(`mutation { createApiKey(name: "spare") { id } }`, {}, bob.token);
    await app.ok(`mutation($id: UUID!) { revokeApiKey(id: $id) { id } }`, { id: createApiKey.id }, bob.token);
    const id = await conversationOf(dana, "newest");
    await sub.until((events) => events.length >= 1);
    expect((sub.events[0].data as any).conversationsChanged.conversationId).toBe(id);
    sub.unsubscribe();
  });
});

describe("messageAdded across servers", () => {
  it("delivers, in order, messages written through another server on the same database", async () => {
    const other = await createTestApp({}, app.database);
    try {
      const id = await conversationOf(alice);
      const sub = subscribe(alice.token, { id, after: 0 });
      for (let i = 1; i <= 20; i++) {
        await other.ok(`mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id } }`, { id, c: `via other ${i}` }, alice.token);
      }
      await sub.until((events) => events.length >= 20);
      expect(seqs(sub.events)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      sub.unsubscribe();
    } finally {
      await other.dispose();
    }
  });
});

if (testDbKind() === "postgres") {
  describe("messageAdded when the LISTEN connection drops", () => {
    it("reconnects and delivers what was written meanwhile, once and in order", async () => {
      const id = await conversationOf(alice);
      const sub = subscribe(alice.token, { id, after: 0 });
      await add(alice, id, "before the drop");
      await sub.until((events) => events.length >= 1);
      const knex = app.database.db.knex;
      const [{ pid }] = await knex("pg_stat_activity")
        .where({ application_name: LISTENER_APPLICATION_NAME, datname: knex.raw("current_database()") })
        .select("pid");
      await knex.raw("select pg_terminate_backend(?)", [pid]);
      // Written while nobody listens: their notifications are lost; the reconnect must make up for them.
      for (let i = 1; i <= 10; i++) await add(alice, id, `during ${i}`);
      await sub.until((events) => events.length >= 11);
      await add(alice, id, "after");
      await sub.until((events) => events.length >= 12);
      expect(seqs(sub.events)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      sub.unsubscribe();
    });
  });
}
