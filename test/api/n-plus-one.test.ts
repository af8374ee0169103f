/**
 * N+1 guards: every relation and per-parent field resolves through a per-request DataLoader, so an operation
 * costs a fixed number of SQL statements however many parents it lists. Each guard runs one operation over a
 * few parents and over many, every parent with related rows of its own (so DataLoader's merging of equal keys
 * cannot hide a query per parent), and asserts the exact count for both sizes.
 *
 * Reads run twice: through the read planner (the default: one statement per root field of a hot type, and root
 * fields of one shape share it) and through the resolvers and DataLoaders it falls back to (READ_PLANNER=false,
 * a second server on the same database), so that the fallback stays free of N+1 too.
 *
 * Counts are per HTTP request and include the one statement that looks up the bearer token (AUTH): the key
 * cache is off here (AUTH_CACHE_SECONDS=0), so that the first request of a token costs what every later one
 * does (test/api/auth-cache.test.ts covers the cache). The token's
 * once-a-minute last_used_at write is not awaited by the request, so it could fall into a count or not:
 * beforeAll moves every key's last_used_at into the future, where it is never rewritten.
 */
import { parse, subscribe } from "graphql";
import { Role } from "../../src/modules/user/role.enum";
import { contextFor, type Context } from "../../src/graphql/context";
import { renewLoaders } from "../../src/modules/actor";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";

/** The token lookup of every HTTP request. */
const AUTH = 1;
const FEW = 5;
const MANY = 20;
/** The history page of the benchmark workload. */
const PAGE = 50;

let app: TestApp;
let counter: StatementCounter;
/** The same server with READ_PLANNER=false, on the same database. */
let fallbackApp: TestApp;
let fallback: StatementCounter;
let alice: TestUser;
/** Admins (who may write as anyone): writer i writes as person i, so every message has its own author and sender. */
const writers: TestUser[] = [];
const people: TestUser[] = [];
let service: TestUser;
/** Per size: a member whose inbox holds that many conversations. */
const inboxOwners = new Map<number, TestUser>();

beforeAll(async () => {
  // No sweep may fail the STREAMING messages below while the file runs.
  const env = { STREAM_TIMEOUT_SECONDS: "86400", AUTH_CACHE_SECONDS: "0" };
  app = await createTestApp(env);
  counter = countStatements(app);
  fallbackApp = await createTestApp({ ...env, READ_PLANNER: "false" }, app.database);
  fallback = countStatements(fallbackApp);
  alice = await app.makeUser(Role.MEMBER, "alice");
  service = await app.makeUser(Role.SERVICE, "service");
  for (let i = 0; i < PAGE; i++) {
    writers.push(await app.makeUser(Role.ADMIN, `writer-${i}`));
    people.push(await app.makeUser(Role.MEMBER, `person-${i}`));
  }
  for (const n of [FEW, MANY]) inboxOwners.set(n, await app.makeUser(Role.MEMBER, `inbox-of-${n}`));
  const knex = app.database.db.knex;
  await knex("api_keys").update({ lastUsedAt: knex.raw("now() + interval '1 day'") });
});
afterAll(async () => {
  await fallbackApp.dispose();
  await app.dispose();
});

// ---- helpers ---------------------------------------------------------------------------------------------

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function newConversation(owner: TestUser): Promise<string> {
  return (await app.ok(`mutation { createConversation(input: { title: "chat" }) { id } }`, {}, owner.token)).createConversation.id;
}

/** Writer i adds a message as person i. */
async function say(conversationId: string, i: number): Promise<string> {
  const input = { conversationId, content: `from person-${i}`, actAs: people[i].user.id };
  return (await app.ok(`mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`, { in: input }, writers[i].token)).addMessage.id;
}

async function appendChunk(messageId: string, index: number, text: string, writer: TestUser): Promise<void> {
  const APPEND = `mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`;
  await app.ok(APPEND, { m: messageId, i: index, t: text }, writer.token);
}

/** A conversation of alice's in which writers 0 … n-1 each stream a reply, two chunks ("Hel", "lo") so far. */
async function streamingConversation(n: number): Promise<{ conversationId: string; messageIds: string[] }> {
  const conversationId = await newConversation(alice);
  const messageIds: string[] = [];
  for (const i of range(n)) {
    const START = `mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`;
    const { id } = (await app.ok(START, { c: conversationId }, writers[i].token)).startMessage;
    for (const [index, text] of ["Hel", "lo"].entries()) await appendChunk(id, index, text, writers[i]);
    messageIds.push(id);
  }
  return { conversationId, messageIds };
}

/** One root field per id, aliased: `r0: field(id: $id0) selection`, `r1: …`. */
function aliased(field: string, ids: string[], selection: string): { query: string; variables: Record<string, string> } {
  const declarations = ids.map((_, i) => `$id${i}: UUID!`).join(", ");
  const fields = ids.map((_, i) => `r${i}: ${field}(id: $id${i}) ${selection}`).join("\n");
  return { query: `query(${declarations}) {\n${fields}\n}`, variables: Object.fromEntries(ids.map((id, i) => [`id${i}`, id])) };
}

/**
 * Runs `operation` once per size and expects exactly `expected` statements each time; the failure shows the
 * count per size.
 */
async function expectStatements(expected: number, sizes: number[], operation: (n: number) => Promise<string[]>): Promise<void> {
  const counts: Record<number, number> = {};
  for (const n of sizes) counts[n] = (await operation(n)).length;
  expect(counts).toEqual(Object.fromEntries(sizes.map((n) => [n, expected])));
}

// ---- writes ----------------------------------------------------------------------------------------------

describe("statements per write", () => {
  it("addMessage: numbering the message, inserting it and notifying subscribers are one statement", async () => {
    const conversationId = await newConversation(alice);
    const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id seq content } }`;
    for (const seq of [1, 2]) {
      const input = { conversationId, content: `write ${seq}`, requestId: `write-${seq}` };
      const { data, statements } = await counter.run(ADD, { in: input }, alice.token);
      expect(data.addMessage).toMatchObject({ seq, content: `write ${seq}` });
      expect(statements).toHaveLength(AUTH + 1);
    }
    const knex = app.database.db.knex;
    expect(await knex("conversations").where({ id: conversationId }).first("lastSeq", "messageCount")).toEqual({ lastSeq: 2, messageCount: 2 });
  });
});

describe("the benchmark's operations with rate limits on", () => {
  // H, I and W as bench/operations.ts asks them, on a server that counts rate limits (off in the other tests):
  // each is the token, the rate limit and ONE statement for the operation itself.
  const H = `query H($id: UUID!) { conversation(id: $id) { id title messages(last: 50) { edges { node {
    id role content createdAt author { id displayName } } } } } }`;
  const I = `query I { conversations(first: 20) { edges { node { id title updatedAt lastMessage { id role content createdAt } } } } }`;
  const W = `mutation W($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { id } }`;
  let limited: TestApp;
  let limitedCounter: StatementCounter;

  beforeAll(async () => {
    limited = await createTestApp({ AUTH_CACHE_SECONDS: "0", RATE_LIMIT_ENABLED: "true" }, app.database);
    limitedCounter = countStatements(limited);
  });
  afterAll(() => limited.dispose());

  it("H, I and W: the token, the rate limit, and one statement", async () => {
    const conversationId = await newConversation(alice);
    for (const i of range(3)) await say(conversationId, i);
    const runs = {
      H: await limitedCounter.run(H, { id: conversationId }, alice.token),
      I: await limitedCounter.run(I, {}, alice.token),
      W: await limitedCounter.run(W, { c: conversationId, t: "one more" }, alice.token),
    };
    expect(runs.H.data.conversation.messages.edges.map((edge: any) => edge.node.author.displayName)).toEqual(["person-0", "person-1", "person-2"]);
    expect(runs.I.data.conversations.edges.some((edge: any) => edge.node.id === conversationId)).toBe(true);
    expect(runs.W.data.addMessage.id).toEqual(expect.any(String));
    for (const { statements } of Object.values(runs)) {
      expect(statements).toHaveLength(AUTH + 2);
      expect(statements.filter((sql) => sql.includes("rate_limits"))).toHaveLength(1);
    }
  });
});

// ---- queries over HTTP -----------------------------------------------------------------------------------

/**
 * expectStatements through the planner (`planned`) and through the resolvers (`resolvers`): `operation` runs its
 * requests through the counter it is given.
 */
async function expectBoth(
  expected: { planned: number; resolvers: number },
  sizes: number[],
  operation: (n: number, counter: StatementCounter) => Promise<string[]>,
): Promise<void> {
  await expectStatements(expected.planned, sizes, (n) => operation(n, counter));
  await expectStatements(expected.resolvers, sizes, (n) => operation(n, fallback));
}

describe("statements per query", () => {
  /** Per size: a conversation of alice's with that many messages, message i by person i, sent by writer i. */
  const histories = new Map<number, string>();
  /** Per size: conversations of people 0 … n-1, each holding one message of its owner. */
  const owned = new Map<number, { conversationIds: string[]; messageIds: string[] }>();

  beforeAll(async () => {
    for (const n of [FEW, MANY]) {
      // The inbox: conversation i holds two messages of person i.
      for (const i of range(n)) {
        const id = await newConversation(inboxOwners.get(n)!);
        await say(id, i);
        await say(id, i);
      }
      const conversationIds: string[] = [];
      const messageIds: string[] = [];
      for (const i of range(n)) {
        conversationIds.push(await newConversation(people[i]));
        messageIds.push(await say(conversationIds[i], i));
      }
      owned.set(n, { conversationIds, messageIds });
    }
    for (const n of [FEW, PAGE]) {
      const id = await newConversation(alice);
      for (const i of range(n)) await say(id, i);
      histories.set(n, id);
    }
  });

  it("the inbox: conversations, each with its owner and its last message with that message's author", async () => {
    const INBOX = `query($n: Int!) { conversations(first: $n) { edges { node { id title owner { displayName } lastMessage { content author { displayName } } } } } }`;
    // planned: the token, then the page with owners, last messages and their authors, all in one statement;
    // resolvers: the token, the page with the last messages (joined), the owners, the last messages' authors
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 3 }, [FEW, MANY], async (n, counter) => {
      const { data, statements } = await counter.run(INBOX, { n }, inboxOwners.get(n)!.token);
      const authors = data.conversations.edges.map((edge: any) => edge.node.lastMessage.author.displayName);
      expect(authors.sort()).toEqual(range(n).map((i) => `person-${i}`).sort());
      return statements;
    });
  });

  it("the history: the newest messages of a conversation, each with its author", async () => {
    const HISTORY = `query($id: UUID!, $n: Int!) {
      conversation(id: $id) { messages(last: $n) { edges { node { id role content createdAt author { id displayName } } } } }
    }`;
    // the token, then the conversation with its page and the page's authors (the resolvers' field looks ahead too)
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 1 }, [FEW, PAGE], async (n, counter) => {
      const { data, statements } = await counter.run(HISTORY, { id: histories.get(n)!, n }, alice.token);
      expect(data.conversation.messages.edges.map((edge: any) => edge.node.author.displayName)).toEqual(range(n).map((i) => `person-${i}`));
      return statements;
    });
  });

  it("Conversation.owner: one statement for conversations of many owners", async () => {
    // planned: the token, the conversations with their owners (the aliased root fields share one statement);
    // resolvers: the token, the conversations, their owners
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { query, variables } = aliased("conversation", owned.get(n)!.conversationIds, "{ owner { displayName } }");
      const { data, statements } = await counter.run(query, variables, writers[0].token);
      expect(range(n).map((i) => data[`r${i}`].owner.displayName)).toEqual(range(n).map((i) => `person-${i}`));
      return statements;
    });
  });

  it("Conversation.lastMessage in a page of conversations: read in the page's own statement", async () => {
    const LAST = `query($n: Int!) { conversations(first: $n) { edges { node { lastMessage { seq content } } } } }`;
    // the token, the page with the last messages
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 1 }, [FEW, MANY], async (n, counter) => {
      const { data, statements } = await counter.run(LAST, { n }, inboxOwners.get(n)!.token);
      expect(data.conversations.edges.map((edge: any) => edge.node.lastMessage.seq)).toEqual(range(n).map(() => 2));
      return statements;
    });
  });

  it("Conversation.lastMessage of conversations read one by one: one statement for all of them", async () => {
    // planned: the token, the conversations with their last messages; resolvers: the token, the conversations, their last messages
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { query, variables } = aliased("conversation", owned.get(n)!.conversationIds, "{ lastMessage { id } }");
      const { data, statements } = await counter.run(query, variables, writers[0].token);
      expect(range(n).map((i) => data[`r${i}`].lastMessage.id)).toEqual(owned.get(n)!.messageIds);
      return statements;
    });
  });

  it("Conversation.messages: the first page of every conversation of a page in one statement, totalCount from the row", async () => {
    const PAGES = `query($n: Int!) { conversations(first: $n) { edges { node { messages(first: 2) { totalCount edges { node { seq content } } } } } } }`;
    // planned: the token, the page of conversations with their pages; resolvers: the token, the page of conversations, the pages of messages
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { data, statements } = await counter.run(PAGES, { n }, inboxOwners.get(n)!.token);
      for (const edge of data.conversations.edges) {
        expect(edge.node.messages.totalCount).toBe(2);
        expect(edge.node.messages.edges.map((e: any) => e.node.seq)).toEqual([1, 2]);
      }
      expect(data.conversations.edges).toHaveLength(n);
      return statements;
    });
  });

  it.each([
    ["author", "person", 0], // the token, the conversation with its page and the page's authors
    ["sentBy", "writer", 1], // … and, through the resolvers, the senders (the planner reads them in its statement)
  ])("Message.%s: one statement for a page of messages, each by a different user", async (field, name, senders) => {
    const USERS = `query($id: UUID!, $n: Int!) { conversation(id: $id) { messages(first: $n) { edges { node { ${field} { displayName } } } } } }`;
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 1 + senders }, [FEW, PAGE], async (n, counter) => {
      const { data, statements } = await counter.run(USERS, { id: histories.get(n)!, n }, alice.token);
      expect(data.conversation.messages.edges.map((edge: any) => edge.node[field].displayName)).toEqual(range(n).map((i) => `${name}-${i}`));
      return statements;
    });
  });

  it("Message.conversation: one statement for messages of many conversations", async () => {
    // the token, the messages, their conversations (loaded once, for the access check and the field alike);
    // message(id) is not planned, so both servers resolve it the same way
    await expectBoth({ planned: AUTH + 2, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { query, variables } = aliased("message", owned.get(n)!.messageIds, "{ conversation { id } }");
      const { data, statements } = await counter.run(query, variables, writers[0].token);
      expect(range(n).map((i) => data[`r${i}`].conversation.id)).toEqual(owned.get(n)!.conversationIds);
      return statements;
    });
  });

  it("Message.author of messages read one by one: one statement for all of them", async () => {
    // the token, the messages, their conversations (the access check), their authors
    await expectBoth({ planned: AUTH + 3, resolvers: AUTH + 3 }, [FEW, MANY], async (n, counter) => {
      const { query, variables } = aliased("message", owned.get(n)!.messageIds, "{ author { displayName } }");
      const { data, statements } = await counter.run(query, variables, writers[0].token);
      expect(range(n).map((i) => data[`r${i}`].author.displayName)).toEqual(range(n).map((i) => `person-${i}`));
      return statements;
    });
  });

  it("Message.conversation and Conversation.messages totalCount inside a history page cost no statement", async () => {
    const PAGE_WITH_CONVERSATION = `query($id: UUID!, $n: Int!) {
      conversation(id: $id) { messages(first: $n) { totalCount edges { node { conversation { id messageCount } } } } }
    }`;
    // the token, the conversation with its page
    await expectBoth({ planned: AUTH + 1, resolvers: AUTH + 1 }, [FEW, PAGE], async (n, counter) => {
      const { data, statements } = await counter.run(PAGE_WITH_CONVERSATION, { id: histories.get(n)!, n }, alice.token);
      expect(data.conversation.messages.totalCount).toBe(n);
      expect(data.conversation.messages.edges.every((edge: any) => edge.node.conversation.messageCount === n)).toBe(true);
      return statements;
    });
  });

  it("Message.content and chunkCount while STREAMING: the text so far of every message of a page in one statement", async () => {
    const streams = new Map<number, string>();
    for (const n of [FEW, MANY]) streams.set(n, (await streamingConversation(n)).conversationId);
    const STREAMED = `query($id: UUID!, $n: Int!) { conversation(id: $id) { messages(first: $n) { edges { node { status content chunkCount } } } } }`;
    // the token, the conversation with its page, the chunks (streamed text is left to its resolver)
    await expectBoth({ planned: AUTH + 2, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { data, statements } = await counter.run(STREAMED, { id: streams.get(n)!, n }, alice.token);
      const nodes = data.conversation.messages.edges.map((edge: any) => edge.node);
      expect(nodes).toEqual(range(n).map(() => ({ status: "STREAMING", content: "Hello", chunkCount: 2 })));
      return statements;
    });
  });

  it("a service's grants: read once per request, however many granted conversations it reads", async () => {
    const granted = new Map<number, string[]>();
    for (const n of [FEW, MANY]) {
      const ids: string[] = [];
      for (const _ of range(n)) {
        ids.push(await newConversation(alice));
        await app.grant(service, { conversationId: ids[ids.length - 1] });
      }
      granted.set(n, ids);
    }
    // the token, the service's grants, the conversations
    await expectBoth({ planned: AUTH + 2, resolvers: AUTH + 2 }, [FEW, MANY], async (n, counter) => {
      const { query, variables } = aliased("conversation", granted.get(n)!, "{ id }");
      const { data, statements } = await counter.run(query, variables, service.token);
      expect(range(n).map((i) => data[`r${i}`].id)).toEqual(granted.get(n));
      return statements;
    });
  });
});

// ---- subscription events ---------------------------------------------------------------------------------

describe("statements per subscription read", () => {
  /** A context as graphql-ws builds it for a subscription: once, for the subscription's lifetime. */
  function subscriptionContext(user: TestUser): Context {
    const deps = { db: app.database.db, config: app.database.config, log: app.server.log, live: app.server.live };
    return contextFor(deps, { id: user.user.id, role: user.user.role, displayName: user.user.displayName });
  }

  it("gives every event fresh loaders (renewLoaders): nothing read for one event is served to the next", async () => {
    const ctx = subscriptionContext(alice);
    const first = ctx.loaders;
    const load = () => counter.during(async () => void (await ctx.loaders.userById.load(people[0].user.id)));
    expect(await load()).toHaveLength(1);
    expect(await load()).toHaveLength(0); // cached within one event
    renewLoaders(ctx);
    expect(ctx.loaders).not.toBe(first);
    expect(await load()).toHaveLength(1);
  });

  it("conversationEvents: resuming while many messages stream, and their next chunks, cost the same as for one", async () => {
    const EVENTS = `subscription($id: UUID!, $after: Int) {
      conversationEvents(conversationId: $id, afterSeq: $after) {
        ... on MessageUpdatedEvent { message { id status content chunkCount } }
        ... on MessageDeltaEvent { messageId index text }
      }
    }`;
    const reads: Record<number, { resume: number; deltas: number }> = {};
    for (const n of [FEW, MANY]) {
      const { conversationId, messageIds } = await streamingConversation(n);
      let events: AsyncGenerator<any> | undefined;
      const take = async (count: number) => {
        const taken = [];
        for (const _ of range(count)) taken.push((await events!.next()).value);
        return taken;
      };
      let snapshots: any[] = [];
      const resume = await counter.during(async () => {
        const result = await subscribe({
          schema: app.server.schema,
          document: parse(EVENTS),
          variableValues: { id: conversationId, after: n }, // every message is at or before afterSeq: snapshots first
          contextValue: subscriptionContext(alice),
        });
        events = result as AsyncGenerator<any>;
        snapshots = await take(n);
      });
      expect(snapshots.map((event) => event.data.conversationEvents)).toEqual(
        messageIds.map((id) => ({ message: { id, status: "STREAMING", content: "Hello", chunkCount: 2 } })),
      );
      // One more chunk for every message (sent over HTTP, counted for those requests), then the stream's next read.
      for (const [i, id] of messageIds.entries()) await appendChunk(id, 2, "!", writers[i]);
      let deltas: any[] = [];
      const next = await counter.during(async () => void (deltas = await take(n)));
      expect(deltas.map((event) => event.data.conversationEvents)).toEqual(messageIds.map((messageId) => ({ messageId, index: 2, text: "!" })));
      await events!.return(undefined);
      reads[n] = { resume: resume.length, deltas: next.length };
    }
    // resume: the conversation (access check), the STREAMING messages, their text so far;
    // deltas: messages after the cursor, where the streaming ones stand now, their new chunks
    expect(reads).toEqual({ [FEW]: { resume: 3, deltas: 3 }, [MANY]: { resume: 3, deltas: 3 } });
  });
});
