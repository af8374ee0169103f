/**
 * Multiplexed live delivery (src/modules/live/fan-out.ts) over real websockets: subscribers who asked the same
 * and may see the same share one stream (one read and one execution per event, the same bytes to each),
 * subscribers who may see different things are served apart, losing access ends exactly that subscriber, and
 * a subscriber that stops reading neither holds back the others nor loses anything.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { CONVERSATION_EVENTS, RawSubscription } from "../helpers/live";
import { countStatements, type StatementCounter } from "../helpers/statements";

let app: TestApp;
let alice: TestUser;
let admin: TestUser;
let counter: StatementCounter;
const open: RawSubscription[] = [];

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER, "alice");
  admin = await app.makeUser(Role.ADMIN, "admin");
  counter = countStatements(app);
});
afterAll(async () => {
  for (const subscription of open) subscription.close();
  await app.dispose();
});

const WITH_AUTHOR = `subscription($id: UUID!, $after: Int) {
  messageAdded(conversationId: $id, afterSeq: $after) { id seq content author { id displayName } }
}`;

async function subscribe(target: TestApp, token: string, id: string, query = WITH_AUTHOR, after: number | null = 0): Promise<RawSubscription> {
  const subscription = await RawSubscription.open(target.url, token, query, { id, after });
  open.push(subscription);
  return subscription;
}

async function conversationOf(owner: TestUser, title = "fan-out"): Promise<string> {
  const { createConversation } = await app.ok(`mutation($t: String!) { createConversation(input: { title: $t }) { id } }`, { t: title }, owner.token);
  return createConversation.id;
}

async function add(token: string, id: string, content: string, role = "USER", target = app): Promise<number> {
  const { addMessage } = await target.ok(
    `mutation($id: UUID!, $c: String!, $r: MessageRole) { addMessage(input: { conversationId: $id, content: $c, role: $r }) { seq } }`,
    { id, c: content, r: role },
    token,
  );
  return addMessage.seq;
}

/** Waits until the server's groups and members are as expected (groups merge once they are up to date). */
async function settled(target: TestApp, groups: number, members: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const size = target.server.fanOut.size;
    if (size.groups === groups && size.members === members) return;
    if (Date.now() > deadline) throw new Error(`expected ${groups} groups of ${members} members, have ${JSON.stringify(size)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const received = (count: number) => (subscription: RawSubscription) => subscription.payloads.length >= count;

/** The reads live delivery made while `work` ran: selects of messages and users outside any request. */
async function liveReads(work: () => Promise<void>): Promise<string[]> {
  const statements = await counter.background(work);
  return statements.filter((sql) => /^select/i.test(sql) && /from "(messages|users)"/.test(sql));
}

describe("subscribers with the same subscription", () => {
  it("share one group: the same bytes to each, and per event one read of the messages and one of their authors, however many there are", async () => {
    const id = await conversationOf(alice);
    await add(alice.token, id, "first");
    const first = await subscribe(app, alice.token, id);
    await first.until(received(1));
    await settled(app, 1, 1);
    const alone = await liveReads(async () => {
      for (const text of ["a", "b", "c"]) {
        await add(alice.token, id, text);
        await first.until(received(first.payloads.length + 1));
      }
    });

    // Nineteen more tabs of the same user: each catches up on its own, then joins the first one's group.
    const more = await Promise.all(Array.from({ length: 19 }, () => subscribe(app, alice.token, id)));
    await Promise.all(more.map((subscription) => subscription.until(received(4))));
    await settled(app, 1, 20);
    const all = [first, ...more];
    const crowd = await liveReads(async () => {
      for (const [index, text] of ["d", "e", "f"].entries()) {
        await add(alice.token, id, text);
        await Promise.all(all.map((subscription) => subscription.until(received(5 + index))));
      }
    });

    expect(alone).toHaveLength(6); // 3 events × (the new message, its author)
    expect(crowd).toHaveLength(6);
    for (const subscription of all) expect(subscription.payloads).toEqual(first.payloads);
    expect(first.events.map((event) => event.data.messageAdded.content)).toEqual(["first", "a", "b", "c", "d", "e", "f"]);
    expect(first.events[0].data.messageAdded.author).toEqual({ id: alice.user.id, displayName: "alice" });
    for (const subscription of all) subscription.close();
    await settled(app, 0, 0);
  });

  it("groups subscribers whose afterSeq differs once they stand at the same place, and never sends one a message twice", async () => {
    const id = await conversationOf(alice);
    for (const text of ["1", "2", "3"]) await add(alice.token, id, text);
    const subscriptions = await Promise.all([0, 1, 2, 3].map((after) => subscribe(app, alice.token, id, WITH_AUTHOR, after)));
    await Promise.all(subscriptions.map((subscription, after) => subscription.until(received(3 - after))));
    await settled(app, 1, 4);
    await add(alice.token, id, "4");
    await Promise.all(subscriptions.map((subscription, after) => subscription.until(received(4 - after))));
    subscriptions.forEach((subscription, after) =>
      expect(subscription.events.map((event) => event.data.messageAdded.content)).toEqual(["1", "2", "3", "4"].slice(after)),
    );
    for (const subscription of subscriptions) subscription.close();
    await settled(app, 0, 0);
  });
});

describe("conversationEvents", () => {
  it("serves a streamed reply to one group: a tab joining mid-stream catches up with the text so far, then shares every delta", async () => {
    const id = await conversationOf(alice);
    const worker = await app.makeUser(Role.SERVICE, "streamer");
    await app.grant(worker, { conversationId: id });
    const { startMessage } = await app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c: id }, worker.token);
    const append = (index: number, text: string) =>
      app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: startMessage.id, i: index, t: text }, worker.token);

    const tabs = await Promise.all(Array.from({ length: 3 }, () => subscribe(app, alice.token, id, CONVERSATION_EVENTS)));
    await Promise.all(tabs.map((tab) => tab.until(received(1)))); // the reply as it is: no chunk yet
    await append(0, "Once ");
    await append(1, "upon ");
    await Promise.all(tabs.map((tab) => tab.until(received(3))));
    await settled(app, 1, 3);

    const late = await subscribe(app, alice.token, id, CONVERSATION_EVENTS);
    await late.until(received(1));
    expect(late.events[0].data.conversationEvents).toEqual({
      __typename: "MessageAddedEvent",
      message: { id: startMessage.id, seq: 1, status: "STREAMING", content: "Once upon ", chunkCount: 2 },
    });
    await settled(app, 1, 4); // it has sent the same chunks as the others: it joins them

    await append(2, "a time");
    await app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { id } }`, { m: startMessage.id }, worker.token);
    await Promise.all([...tabs, late].map((tab) => tab.until(received(tab === late ? 3 : 5))));
    for (const tab of tabs) expect(tab.payloads).toEqual(tabs[0].payloads);
    expect(late.payloads.slice(1)).toEqual(tabs[0].payloads.slice(3));
    expect(tabs[0].events.map((event) => event.data.conversationEvents.__typename)).toEqual([
      "MessageAddedEvent",
      "MessageDeltaEvent",
      "MessageDeltaEvent",
      "MessageDeltaEvent",
      "MessageUpdatedEvent",
    ]);
    expect(tabs[0].events[4].data.conversationEvents.message.content).toBe("Once upon a time");
    for (const tab of [...tabs, late]) tab.close();
    await settled(app, 0, 0);
  });
});

describe("subscribers who may see different things", () => {
  const PRIVATE = `subscription($id: UUID!, $after: Int) {
    messageAdded(conversationId: $id, afterSeq: $after) { seq content author { email } discordPost { status } }
  }`;

  it("are served apart: each sees what it may (discordPost, the author's email), and tabs of one viewer still share", async () => {
    const id = await conversationOf(alice);
    const service = await app.makeUser(Role.SERVICE, "worker");
    await app.grant(service, { conversationId: id });
    await app.database.db.knex("users").where({ id: alice.user.id }).update({ email: "alice@example.com" });
    await add(alice.token, id, "hello");
    const [message] = await app.database.db.knex("messages").where({ conversationId: id }).select("id");
    await app.database.db.knex("discord_posts").insert({ messageId: message.id, channelId: "123", status: "posted" });

    const [own, ownAgain, byAdmin, byService, short] = await Promise.all([
      subscribe(app, alice.token, id, PRIVATE),
      subscribe(app, alice.token, id, PRIVATE),
      subscribe(app, admin.token, id, PRIVATE),
      subscribe(app, service.token, id, PRIVATE),
      subscribe(app, alice.token, id, `subscription($id: UUID!, $after: Int) { messageAdded(conversationId: $id, afterSeq: $after) { seq } }`),
    ]);
    await Promise.all([own, ownAgain, byAdmin, byService, short].map((subscription) => subscription.until(received(1))));
    await settled(app, 4, 5);

    const first = (subscription: RawSubscription) => subscription.events[0].data.messageAdded;
    expect(first(own)).toEqual({ seq: 1, content: "hello", author: { email: "alice@example.com" }, discordPost: null });
    expect(ownAgain.payloads).toEqual(own.payloads);
    expect(first(byAdmin)).toEqual({ seq: 1, content: "hello", author: { email: "alice@example.com" }, discordPost: { status: "POSTED" } });
    expect(first(byService)).toEqual({ seq: 1, content: "hello", author: { email: null }, discordPost: null });
    expect(first(short)).toEqual({ seq: 1 });
    for (const subscription of [own, ownAgain, byAdmin, byService, short]) subscription.close();
    await settled(app, 0, 0);
  });
});

describe("access lost mid-stream", () => {
  it("ends exactly the subscriber whose grant was revoked; its group goes on for the others", async () => {
    const id = await conversationOf(alice);
    const [kept, revoked] = [await app.makeUser(Role.SERVICE, "kept"), await app.makeUser(Role.SERVICE, "revoked")];
    await app.grant(kept, { conversationId: id });
    const { grantService } = await app.ok(
      `mutation($s: UUID!, $c: UUID!) { grantService(input: { serviceId: $s, conversationId: $c }) { id } }`,
      { s: revoked.user.id, c: id },
      admin.token,
    );
    await add(alice.token, id, "before");
    const [a, b, owner] = await Promise.all([subscribe(app, kept.token, id), subscribe(app, revoked.token, id), subscribe(app, alice.token, id)]);
    await Promise.all([a, b, owner].map((subscription) => subscription.until(received(1))));
    await settled(app, 2, 3); // the two services share one group (same role, nothing personal asked); alice has hers

    await app.ok(`mutation($id: UUID!) { revokeServiceGrant(id: $id) }`, { id: grantService.id }, admin.token);
    await b.until(() => false);
    expect(b.ended).toBe("complete");
    expect(b.events.slice(1).map((event) => event.errors?.[0].extensions?.code)).toEqual(["NOT_FOUND"]);

    await add(alice.token, id, "after");
    await Promise.all([a, owner].map((subscription) => subscription.until(received(2))));
    expect(a.events.map((event) => event.data.messageAdded.content)).toEqual(["before", "after"]);
    expect(owner.payloads).toEqual(a.payloads);
    expect(b.payloads).toHaveLength(2); // "before", then the error: nothing after
    expect(a.ended).toBeUndefined();
    for (const subscription of [a, owner]) subscription.close();
    await settled(app, 0, 0);
  });
});

describe("a subscriber that stops reading", () => {
  let slowApp: TestApp;
  beforeAll(async () => {
    // A small allowance, so the paused client's backlog passes it soon after the kernel's buffers are full.
    slowApp = await createTestApp({ LIVE_MAX_BUFFERED_BYTES: "1024" }, app.database);
  });
  afterAll(() => slowApp.dispose());

  it("holds back nobody, is sent nothing more while its connection is full, and later gets every message once, in order", async () => {
    const id = await conversationOf(alice);
    const fast = await Promise.all(Array.from({ length: 3 }, () => subscribe(slowApp, admin.token, id, WITH_AUTHOR, null)));
    const slow = await subscribe(slowApp, admin.token, id, WITH_AUTHOR, null);
    await settled(slowApp, 1, 4);
    slow.pause(true);
    const big = "x".repeat(90_000);
    const COUNT = 120; // about 11 MB to each subscriber: more than loopback's socket buffers hold
    for (let i = 0; i < COUNT; i++) await add(admin.token, id, `${i} ${big}`, "ASSISTANT", slowApp);
    await Promise.all(fast.map((subscription) => subscription.until(received(COUNT), 60_000)));
    const split = slowApp.server.fanOut.size;
    expect(slow.payloads.length).toBeLessThan(COUNT);
    expect(split.groups).toBe(2); // the slow one left the group when its connection filled up

    slow.pause(false);
    await slow.until(received(COUNT), 60_000);
    const order = (subscription: RawSubscription) => subscription.events.map((event) => Number(event.data.messageAdded.content.split(" ")[0]));
    expect(order(slow)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    for (const subscription of fast) expect(order(subscription)).toEqual(order(slow));

    // Caught up, it rejoins the others.
    await add(admin.token, id, "last", "ASSISTANT", slowApp);
    await settled(slowApp, 1, 4);
    for (const subscription of [...fast, slow]) subscription.close();
    await settled(slowApp, 0, 0);
  }, 120_000);
});
