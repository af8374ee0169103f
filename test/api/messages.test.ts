/**
 * addMessage, message(id) and deleteConversation through the HTTP endpoint: numbering (seq), validation,
 * access, archived conversations and idempotent retries, including concurrent writers. Every rejected write
 * is checked against the database afterwards: nothing stored, no seq used, no conversation bumped.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const MESSAGE_FIELDS = `id seq role content status requestId metadata toolCalls model promptTokens completionTokens costUsd
  latencyMs createdAt author { id } conversation { id messageCount updatedAt lastMessage { id seq } }`;
const ADD_MESSAGE = `mutation($input: AddMessageInput!) { addMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
const GET_MESSAGE = `query($id: UUID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`;
const CREATE_CONVERSATION = `mutation($input: CreateConversationInput!) { createConversation(input: $input) { id updatedAt } }`;
const GET_CONVERSATION = `query($id: UUID!) {
  conversation(id: $id) {
    id status messageCount updatedAt lastMessage { id seq }
    messages(first: 100) { totalCount edges { node { id seq role content requestId author { id } } } }
  }
}`;
const UPDATE_CONVERSATION = `mutation($id: UUID!, $input: UpdateConversationInput!) { updateConversation(id: $id, input: $input) { id title } }`;
const ARCHIVE_CONVERSATION = `mutation($id: UUID!) { archiveConversation(id: $id) { id status } }`;
const DELETE_CONVERSATION = `mutation($id: UUID!) { deleteConversation(id: $id) }`;

const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface MessageData {
  id: string;
  seq: number;
  role: string;
  content: string;
  status: string;
  requestId: string | null;
  metadata: unknown;
  toolCalls: unknown;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  createdAt: string;
  author: { id: string } | null;
  conversation: { id: string; messageCount: number; updatedAt: string; lastMessage: { id: string; seq: number } | null };
}

interface ConversationData {
  id: string;
  status: string;
  messageCount: number;
  updatedAt: string;
  lastMessage: { id: string; seq: number } | null;
  messages: {
    totalCount: number;
    edges: { node: { id: string; seq: number; role: string; content: string; requestId: string | null; author: { id: string } | null } }[];
  };
}

interface GqlError {
  message: string;
  extensions?: Record<string, any>;
}

let app: TestApp;
let alice: TestUser;
let bob: TestUser;
let service: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER);
  bob = await app.makeUser(Role.MEMBER);
  service = await app.makeUser(Role.SERVICE);
  await app.grant(service, { origin: "web" }); // the AI worker answers every web conversation
});
afterAll(() => app.dispose());

// ---- helpers ---------------------------------------------------------------------------------------------

async function newConversation(owner: TestUser, title = "chat"): Promise<string> {
  const data = await app.ok<{ createConversation: { id: string } }>(CREATE_CONVERSATION, { input: { title } }, owner.token);
  return data.createConversation.id;
}

async function addMessage(user: TestUser, conversationId: string, fields: Record<string, unknown> = {}): Promise<MessageData> {
  const data = await app.ok<{ addMessage: MessageData }>(ADD_MESSAGE, { input: { conversationId, content: "hello", ...fields } }, user.token);
  return data.addMessage;
}

/** Sends addMessage expecting exactly one error and no data; returns that error. */
async function addMessageError(user: TestUser, input: Record<string, unknown>): Promise<GqlError> {
  const { body } = await app.gql(ADD_MESSAGE, { input }, user.token);
  if (body.errors?.length !== 1) throw new Error(`expected one error, got ${JSON.stringify(body)}`);
  expect(body.data?.addMessage ?? null).toBeNull();
  return body.errors[0];
}

async function readConversation(user: TestUser, id: string): Promise<ConversationData> {
  return (await app.ok<{ conversation: ConversationData }>(GET_CONVERSATION, { id }, user.token)).conversation;
}

/** What the database holds for a conversation: the counters, its updated_at and its message rows. */
async function stored(conversationId: string) {
  const knex = app.database.db.knex;
  const conversation = await knex("conversations").where({ id: conversationId }).first("lastSeq", "messageCount", "updatedAt");
  const rows = await knex("messages").where({ conversationId }).orderBy("seq").select("id", "seq", "requestId", "content");
  return { conversation: conversation ?? null, rows };
}

/** Message rows in the whole database, or only those with the given ids. */
async function messageRows(ids?: string[]): Promise<number> {
  const query = app.database.db.knex("messages");
  if (ids) query.whereIn("id", ids);
  const [{ count }] = await query.count({ count: "*" });
  return Number(count);
}

/** A conversation of `owner` that already holds `count` messages. */
async function conversationWith(owner: TestUser, count: number): Promise<string> {
  const id = await newConversation(owner);
  for (let i = 1; i <= count; i++) await addMessage(owner, id, { content: `m${i}` });
  return id;
}

// ---- addMessage ------------------------------------------------------------------------------------------

describe("addMessage", () => {
  it("numbers messages 1, 2, 3 and returns every field, its author and its conversation", async () => {
    const conversationId = await newConversation(alice);

    const first = await addMessage(alice, conversationId, { content: "Hello there", requestId: "req-1", metadata: { client: "web", tags: ["a"] } });
    expect(first.id).toMatch(UUID);
    expect(first).toMatchObject({
      seq: 1,
      role: "USER",
      content: "Hello there",
      status: "COMPLETE",
      requestId: "req-1",
      metadata: { client: "web", tags: ["a"] },
      toolCalls: null,
      model: null,
      promptTokens: null,
      completionTokens: null,
      costUsd: null,
      author: { id: alice.user.id },
      conversation: { id: conversationId, messageCount: 1, lastMessage: { id: first.id, seq: 1 } },
    });

    const toolCalls = [{ id: "call_1", type: "function", function: { name: "search", arguments: '{"q":"weather"}' } }];
    const second = await addMessage(service, conversationId, {
      role: "ASSISTANT",
      content: "It is sunny.",
      toolCalls,
      model: "gpt-4o-mini",
      promptTokens: 120,
      completionTokens: 34,
      costUsd: 0.001234,
      latencyMs: 850,
    });
    expect(second).toMatchObject({
      seq: 2,
      role: "ASSISTANT",
      content: "It is sunny.",
      status: "COMPLETE",
      requestId: null,
      metadata: {},
      toolCalls,
      model: "gpt-4o-mini",
      promptTokens: 120,
      completionTokens: 34,
      costUsd: 0.001234,
      latencyMs: 850,
      author: { id: service.user.id },
      conversation: { id: conversationId, messageCount: 2, lastMessage: { id: second.id, seq: 2 } },
    });

    const third = await addMessage(alice, conversationId, { content: "Thanks" });
    expect(third).toMatchObject({ seq: 3, role: "USER", conversation: { messageCount: 3, lastMessage: { id: third.id, seq: 3 } } });
    expect(new Set([first.id, second.id, third.id]).size).toBe(3);

    const conversation = await readConversation(alice, conversationId);
    expect(conversation.messageCount).toBe(3);
    expect(conversation.lastMessage).toEqual({ id: third.id, seq: 3 });
    expect(conversation.messages.edges.map((e) => [e.node.seq, e.node.content, e.node.author?.id])).toEqual([
      [1, "Hello there", alice.user.id],
      [2, "It is sunny.", service.user.id],
      [3, "Thanks", alice.user.id],
    ]);
  });

  it("bumps the conversation's updatedAt to (at least) the new message's time", async () => {
    const conversationId = await newConversation(alice);
    const past = new Date("2020-01-01T00:00:00.000Z");
    await app.database.db.knex("conversations").where({ id: conversationId }).update({ updatedAt: past });
    expect((await readConversation(alice, conversationId)).updatedAt).toBe(past.toISOString());

    const message = await addMessage(alice, conversationId);
    const bumped = message.conversation.updatedAt;
    expect(Date.parse(bumped)).toBeGreaterThan(past.getTime());
    expect(Date.parse(bumped)).toBeGreaterThanOrEqual(Date.parse(message.createdAt));
    expect((await readConversation(alice, conversationId)).updatedAt).toBe(bumped);

    // A later message never moves it backwards.
    const later = await addMessage(alice, conversationId);
    expect(Date.parse(later.conversation.updatedAt)).toBeGreaterThanOrEqual(Date.parse(bumped));
  });

  it("stores a USER message when role is omitted or null", async () => {
    const conversationId = await newConversation(alice);
    const message = await addMessage(alice, conversationId, { content: "no role given" });
    expect(message).toMatchObject({ role: "USER", seq: 1, metadata: {} });
    expect(await addMessage(alice, conversationId, { content: "null role", role: null })).toMatchObject({ role: "USER", seq: 2 });
  });

  it("requires a token", async () => {
    const conversationId = await newConversation(alice);
    const { status, body } = await app.gql(ADD_MESSAGE, { input: { conversationId, content: "hi" } });
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    expect((await stored(conversationId)).rows).toEqual([]);
  });
});

describe("addMessage roles", () => {
  it.each(["ASSISTANT", "SYSTEM", "TOOL"])("refuses a %s message from a member with FORBIDDEN and stores nothing", async (role) => {
    const conversationId = await conversationWith(alice, 1);
    const before = await stored(conversationId);
    const error = await addMessageError(alice, { conversationId, role, content: "pretending to be the bot" });
    expect(error.extensions?.code).toBe("FORBIDDEN");
    expect(await stored(conversationId)).toEqual(before);
  });

  it("lets a service write an ASSISTANT message with tool calls and empty content", async () => {
    const conversationId = await conversationWith(alice, 1);
    const toolCalls = [{ id: "call_9", type: "function", function: { name: "lookup", arguments: "{}" } }];
    const message = await addMessage(service, conversationId, { role: "ASSISTANT", content: "", toolCalls, model: "m-1" });
    expect(message).toMatchObject({ seq: 2, role: "ASSISTANT", content: "", toolCalls, author: { id: service.user.id } });
    expect(message.conversation.messageCount).toBe(2);
  });

  it("lets a service write SYSTEM and TOOL messages", async () => {
    const conversationId = await newConversation(alice);
    const system = await addMessage(service, conversationId, { role: "SYSTEM", content: "You are helpful." });
    const tool = await addMessage(service, conversationId, { role: "TOOL", content: '{"temp": 21}', metadata: { toolCallId: "call_9" } });
    expect([system.role, system.seq, tool.role, tool.seq]).toEqual(["SYSTEM", 1, "TOOL", 2]);
  });

  it("rejects empty content from a service when there are no tool calls", async () => {
    const conversationId = await conversationWith(alice, 1);
    const before = await stored(conversationId);
    for (const toolCalls of [undefined, []]) {
      const error = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "", toolCalls });
      expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "content" });
    }
    expect(await stored(conversationId)).toEqual(before);
  });
});

describe("addMessage input validation", () => {
  let conversationId: string;
  let before: Awaited<ReturnType<typeof stored>>;

  beforeEach(async () => {
    conversationId = await conversationWith(alice, 2);
    before = await stored(conversationId);
  });

  /** Nothing stored, no seq used and the conversation untouched. */
  const expectNothingStored = async () => expect(await stored(conversationId)).toEqual(before);

  it("rejects a malformed conversationId with BAD_USER_INPUT", async () => {
    const rows = await messageRows();
    const error = await addMessageError(alice, { conversationId: "not-a-uuid", content: "hi" });
    expect(error.extensions?.code).toBe("BAD_USER_INPUT");
    expect(await messageRows()).toBe(rows);
  });

  it("returns NOT_FOUND for an unknown conversation and another member's conversation alike", async () => {
    const rows = await messageRows();
    const unknown = await addMessageError(bob, { conversationId: UNKNOWN_ID, content: "hi" });
    const other = await addMessageError(bob, { conversationId, content: "hi", requestId: "bob-1" });
    expect(other).toMatchObject({ message: "Conversation not found", extensions: { code: "NOT_FOUND" } });
    expect(unknown.message).toBe(other.message);
    expect(unknown.extensions).toEqual(other.extensions);
    expect(await messageRows()).toBe(rows);
    await expectNothingStored();
  });

  it.each([
    ["empty", ""],
    ["whitespace-only", "  \n\t "],
  ])("rejects %s content with BAD_USER_INPUT", async (_name, content) => {
    const error = await addMessageError(alice, { conversationId, content });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "content" });
    await expectNothingStored();
  });

  it("rejects USER content over 1000 characters and accepts exactly 1000", async () => {
    const error = await addMessageError(alice, { conversationId, content: "x".repeat(1001) });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "content", maxLength: 1000 });
    await expectNothingStored();

    const message = await addMessage(alice, conversationId, { content: "x".repeat(1000) });
    expect(message.content).toHaveLength(1000);
    expect(message.seq).toBe(3);
  });

  it("counts USER content in characters, not UTF-16 units", async () => {
    const emoji = "😀".repeat(1000); // 1000 code points, 2000 UTF-16 units
    const message = await addMessage(alice, conversationId, { content: emoji });
    expect(message.content).toBe(emoji);
    expect(message.seq).toBe(3);

    const after = await stored(conversationId);
    const error = await addMessageError(alice, { conversationId, content: "😀".repeat(1001) });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", maxLength: 1000 });
    expect(await stored(conversationId)).toEqual(after);
  });

  it("rejects non-user content over the hard maximum of 100000 characters and accepts exactly that many", async () => {
    const error = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "y".repeat(100_001) });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "content", maxLength: 100_000 });
    await expectNothingStored();

    const message = await addMessage(service, conversationId, { role: "ASSISTANT", content: "y".repeat(100_000) });
    expect(message.content).toHaveLength(100_000);
    expect(message.seq).toBe(3);
  });

  it("rejects an unknown role enum with BAD_USER_INPUT", async () => {
    const { status, body } = await app.gql(ADD_MESSAGE, { input: { conversationId, role: "BOT", content: "hi" } }, service.token);
    expect(status).toBe(400);
    expect(body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    await expectNothingStored();
  });

  it.each([
    ["negative promptTokens", { promptTokens: -1 }],
    ["negative completionTokens", { completionTokens: -5 }],
    ["negative costUsd", { costUsd: -0.01 }],
    ["negative latencyMs", { latencyMs: -1 }],
    ["an empty requestId", { requestId: "" }],
    ["a requestId over 255 characters", { requestId: "r".repeat(256) }],
    ["a model name over 200 characters", { model: "m".repeat(201) }],
  ])("rejects %s with BAD_USER_INPUT", async (_name, fields) => {
    const error = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "answer", ...fields });
    expect(error.extensions?.code).toBe("BAD_USER_INPUT");
    await expectNothingStored();
  });

  it.each([
    ["metadata that is an array", { metadata: [1, 2, 3] }],
    ["metadata that is a string", { metadata: "text" }],
    ["toolCalls that are an object", { toolCalls: { name: "x" } }],
    ["a NUL character in metadata", { metadata: { note: "a\u0000b" } }],
  ])("rejects %s with BAD_USER_INPUT", async (_name, fields) => {
    const error = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "answer", ...fields });
    expect(error.extensions?.code).toBe("BAD_USER_INPUT");
    await expectNothingStored();
  });

  it("rejects content with a NUL character with BAD_USER_INPUT", async () => {
    const error = await addMessageError(alice, { conversationId, content: "before\u0000after" });
    expect(error.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "content" });
    await expectNothingStored();
  });

  it("still numbers the next accepted message right after the rejected ones", async () => {
    await addMessageError(alice, { conversationId, content: "" });
    await addMessageError(alice, { conversationId, content: "z".repeat(1001) });
    await addMessageError(alice, { conversationId, role: "ASSISTANT", content: "nope" });
    const message = await addMessage(alice, conversationId, { content: "accepted" });
    expect(message.seq).toBe(3);
    expect(message.conversation.messageCount).toBe(3);
  });
});

describe("archived conversations", () => {
  it("refuses writes with CONFLICT (reason CONVERSATION_ARCHIVED) but can still be read", async () => {
    const conversationId = await conversationWith(alice, 2);
    const archived = await app.ok(ARCHIVE_CONVERSATION, { id: conversationId }, alice.token);
    expect(archived.archiveConversation).toEqual({ id: conversationId, status: "ARCHIVED" });
    const before = await stored(conversationId);

    const byOwner = await addMessageError(alice, { conversationId, content: "too late", requestId: "late-1" });
    expect(byOwner.extensions).toMatchObject({ code: "CONFLICT", reason: "CONVERSATION_ARCHIVED" });
    const byService = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "too late" });
    expect(byService.extensions).toMatchObject({ code: "CONFLICT", reason: "CONVERSATION_ARCHIVED" });

    const { body } = await app.gql(UPDATE_CONVERSATION, { id: conversationId, input: { title: "renamed" } }, alice.token);
    expect(body.errors?.[0].extensions).toMatchObject({ code: "CONFLICT", reason: "CONVERSATION_ARCHIVED" });

    expect(await stored(conversationId)).toEqual(before);
    const conversation = await readConversation(alice, conversationId);
    expect(conversation).toMatchObject({ status: "ARCHIVED", messageCount: 2, lastMessage: { seq: 2 } });
    expect(conversation.messages.edges.map((e) => e.node.content)).toEqual(["m1", "m2"]);
    const message = await app.ok(GET_MESSAGE, { id: conversation.messages.edges[0].node.id }, alice.token);
    expect(message.message).toMatchObject({ seq: 1, content: "m1" });
  });

  it("answers NOT_FOUND, not CONFLICT, to another member writing into an archived conversation", async () => {
    const conversationId = await conversationWith(alice, 1);
    await app.ok(ARCHIVE_CONVERSATION, { id: conversationId }, alice.token);
    const error = await addMessageError(bob, { conversationId, content: "hi" });
    expect(error.extensions?.code).toBe("NOT_FOUND");
  });
});

// ---- idempotency -----------------------------------------------------------------------------------------

describe("addMessage idempotency", () => {
  it("returns the original message for a retry with the same requestId and stores nothing new", async () => {
    const conversationId = await conversationWith(alice, 1);
    const original = await addMessage(alice, conversationId, { content: "once", requestId: "client-42", metadata: { n: 1 } });
    expect(original.seq).toBe(2);
    const before = await stored(conversationId);

    const retry = await addMessage(alice, conversationId, { content: "once", requestId: "client-42", metadata: { n: 1 } });
    expect(retry).toMatchObject({ id: original.id, seq: 2, content: "once", requestId: "client-42", createdAt: original.createdAt });
    expect(retry.conversation.messageCount).toBe(2);
    expect(await stored(conversationId)).toEqual(before);

    // The retry used no seq: the next new message follows directly.
    const next = await addMessage(alice, conversationId, { content: "next", requestId: "client-43" });
    expect(next.seq).toBe(3);
  });

  it("returns the original message to a retry that arrives after the conversation was archived", async () => {
    const conversationId = await newConversation(alice);
    const original = await addMessage(alice, conversationId, { content: "sent before archiving", requestId: "late-retry" });
    await app.ok(ARCHIVE_CONVERSATION, { id: conversationId }, alice.token);
    const retry = await addMessage(alice, conversationId, { content: "sent before archiving", requestId: "late-retry" });
    expect(retry).toMatchObject({ id: original.id, seq: 1 });
    const otherContent = await addMessageError(alice, { conversationId, content: "changed", requestId: "late-retry" });
    expect(otherContent.extensions?.code).toBe("CONFLICT");
    const newRequest = await addMessageError(alice, { conversationId, content: "new", requestId: "fresh" });
    expect(newRequest.extensions).toMatchObject({ code: "CONFLICT", reason: "CONVERSATION_ARCHIVED" });
  });

  it("answers CONFLICT to the same requestId with different content or role", async () => {
    const conversationId = await newConversation(alice);
    const original = await addMessage(alice, conversationId, { content: "first text", requestId: "dup" });
    const before = await stored(conversationId);

    const otherContent = await addMessageError(alice, { conversationId, content: "second text", requestId: "dup" });
    expect(otherContent.extensions?.code).toBe("CONFLICT");
    const otherRole = await addMessageError(service, { conversationId, role: "ASSISTANT", content: "first text", requestId: "dup" });
    expect(otherRole.extensions?.code).toBe("CONFLICT");

    expect(await stored(conversationId)).toEqual(before);
    expect(before.rows).toEqual([{ id: original.id, seq: 1, requestId: "dup", content: "first text" }]);
  });

  it("treats the same requestId in another conversation as a different message", async () => {
    const one = await newConversation(alice);
    const two = await newConversation(alice);
    const a = await addMessage(alice, one, { content: "same", requestId: "shared-key" });
    const b = await addMessage(alice, two, { content: "same", requestId: "shared-key" });
    expect(b.id).not.toBe(a.id);
    expect([a.seq, a.conversation.id, b.seq, b.conversation.id]).toEqual([1, one, 1, two]);
    expect((await stored(one)).rows).toHaveLength(1);
    expect((await stored(two)).rows).toHaveLength(1);
  });

  it("does not reveal another member's message through a reused requestId", async () => {
    const conversationId = await newConversation(alice);
    await addMessage(alice, conversationId, { content: "private", requestId: "guessable" });
    const before = await stored(conversationId);
    const error = await addMessageError(bob, { conversationId, content: "private", requestId: "guessable" });
    expect(error).toMatchObject({ message: "Conversation not found", extensions: { code: "NOT_FOUND" } });
    expect(await stored(conversationId)).toEqual(before);
  });

  it("stores exactly one message for 20 concurrent duplicates and returns it to all of them", async () => {
    const conversationId = await conversationWith(alice, 1);
    const input = { content: "racing", requestId: "concurrent-key" };
    const results = await Promise.all(Array.from({ length: 20 }, () => addMessage(alice, conversationId, input)));

    const ids = new Set(results.map((m) => m.id));
    expect(ids.size).toBe(1);
    expect(new Set(results.map((m) => m.seq))).toEqual(new Set([2]));

    const rows = await app.database.db.knex("messages").where({ conversationId, requestId: "concurrent-key" }).select("id", "seq");
    expect(rows).toEqual([{ id: results[0].id, seq: 2 }]);
    const { conversation, rows: all } = await stored(conversationId);
    expect(all).toHaveLength(2);
    expect(conversation).toMatchObject({ lastSeq: 2, messageCount: 2 });
    expect((await readConversation(alice, conversationId)).messageCount).toBe(2);
  });
});

// ---- concurrent writers ----------------------------------------------------------------------------------

describe("seq under concurrent writers", () => {
  it("hands out 1..100 without gaps or duplicates to 5 parallel writers of 20 messages each", async () => {
    const conversationId = await newConversation(alice);
    const writers: TestUser[] = [alice, alice, service, service, await app.makeUser(Role.ADMIN)];
    const written = await Promise.all(
      writers.map(async (writer, w) => {
        const mine: MessageData[] = [];
        for (let i = 0; i < 20; i++) {
          const role = writer === alice ? "USER" : "ASSISTANT";
          mine.push(await addMessage(writer, conversationId, { role, content: `w${w}-${i}`, requestId: `w${w}-${i}` }));
        }
        return mine;
      }),
    );

    const seqs = written.flat().map((m) => m.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    // Each writer waited for its previous message, so its own messages are numbered in its order.
    for (const mine of written) {
      const own = mine.map((m) => m.seq);
      expect(own).toEqual([...own].sort((a, b) => a - b));
    }

    const conversation = await readConversation(alice, conversationId);
    expect(conversation.messageCount).toBe(100);
    expect(conversation.messages.totalCount).toBe(100);
    expect(conversation.messages.edges.map((e) => e.node.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const bySeq = new Map(written.flat().map((m) => [m.seq, m]));
    for (const { node } of conversation.messages.edges) {
      expect(node).toMatchObject({ id: bySeq.get(node.seq)!.id, content: bySeq.get(node.seq)!.content });
    }
    expect(conversation.lastMessage).toEqual({ id: bySeq.get(100)!.id, seq: 100 });
    expect((await stored(conversationId)).conversation).toMatchObject({ lastSeq: 100, messageCount: 100 });
  });
});

// ---- message(id) -----------------------------------------------------------------------------------------

describe("message", () => {
  let conversationId: string;
  let message: MessageData;

  beforeAll(async () => {
    conversationId = await conversationWith(alice, 1);
    message = await addMessage(alice, conversationId, { content: "read me", metadata: { k: "v" } });
  });

  it("is readable by the owner, with its conversation and author", async () => {
    const { message: read } = await app.ok<{ message: MessageData }>(GET_MESSAGE, { id: message.id }, alice.token);
    expect(read).toMatchObject({
      id: message.id,
      seq: 2,
      role: "USER",
      content: "read me",
      metadata: { k: "v" },
      createdAt: message.createdAt,
      author: { id: alice.user.id },
      conversation: { id: conversationId, messageCount: 2, lastMessage: { id: message.id, seq: 2 } },
    });
  });

  it("is readable by a service", async () => {
    const { message: read } = await app.ok<{ message: MessageData }>(GET_MESSAGE, { id: message.id }, service.token);
    expect(read).toMatchObject({ id: message.id, content: "read me", conversation: { id: conversationId } });
  });

  it("returns NOT_FOUND for another member's message, the same as for an unknown id", async () => {
    const other = await app.gql(GET_MESSAGE, { id: message.id }, bob.token);
    const unknown = await app.gql(GET_MESSAGE, { id: UNKNOWN_ID }, bob.token);
    expect(other.body.data).toBeNull();
    expect(other.body.errors?.[0]).toMatchObject({ message: "Message not found", extensions: { code: "NOT_FOUND" } });
    expect(unknown.body.errors?.[0]).toEqual(other.body.errors?.[0]);
  });

  it("rejects a malformed id with BAD_USER_INPUT", async () => {
    expect(await app.errorCode(GET_MESSAGE, { id: "12345" }, alice.token)).toBe("BAD_USER_INPUT");
  });
});

// ---- deleteConversation ----------------------------------------------------------------------------------

describe("deleteConversation", () => {
  it("deletes the conversation with its messages; deleting again is NOT_FOUND", async () => {
    const conversationId = await conversationWith(alice, 3);
    const keep = await conversationWith(alice, 2);
    const messageIds = (await stored(conversationId)).rows.map((r) => r.id);
    expect(messageIds).toHaveLength(3);

    expect(await app.ok(DELETE_CONVERSATION, { id: conversationId }, alice.token)).toEqual({ deleteConversation: true });
    expect(await stored(conversationId)).toEqual({ conversation: null, rows: [] });
    expect(await messageRows(messageIds)).toBe(0);
    expect((await stored(keep)).rows).toHaveLength(2);

    expect(await app.errorCode(DELETE_CONVERSATION, { id: conversationId }, alice.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(GET_CONVERSATION, { id: conversationId }, alice.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(GET_MESSAGE, { id: messageIds[0] }, alice.token)).toBe("NOT_FOUND");
    expect((await addMessageError(alice, { conversationId, content: "hello?" })).extensions?.code).toBe("NOT_FOUND");
  });

  it("returns NOT_FOUND to another member and removes nothing", async () => {
    const conversationId = await conversationWith(alice, 2);
    const before = await stored(conversationId);
    const { body } = await app.gql(DELETE_CONVERSATION, { id: conversationId }, bob.token);
    expect(body.errors?.[0]).toMatchObject({ message: "Conversation not found", extensions: { code: "NOT_FOUND" } });
    expect(await stored(conversationId)).toEqual(before);
    expect((await readConversation(alice, conversationId)).messageCount).toBe(2);
  });
});
