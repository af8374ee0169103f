/**
 * Relay connections through the HTTP endpoint: Conversation.messages (keyset on seq, forwards and backwards,
 * while messages are being added) and conversations (newest activity first, keyset on updatedAt + id,
 * filters and owner scoping), plus the argument and cursor checks shared by every connection.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";
const MESSAGES_PAGE = `query($id: UUID!, $first: Int, $after: String, $last: Int, $before: String) {
  conversation(id: $id) {
    messages(first: $first, after: $after, last: $last, before: $before) {
      totalCount ${PAGE_INFO} edges { cursor node { id seq content } }
    }
  }
}`;
const CONVERSATIONS_PAGE = `query($first: Int, $after: String, $last: Int, $before: String, $filter: ConversationFilter) {
  conversations(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount ${PAGE_INFO} edges { cursor node { id title status origin updatedAt owner { id } } }
  }
}`;
const CREATE_CONVERSATION = `mutation($input: CreateConversationInput!) { createConversation(input: $input) { id updatedAt } }`;
const ADD_MESSAGE = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq } }`;
const ARCHIVE_CONVERSATION = `mutation($id: UUID!) { archiveConversation(id: $id) { id status } }`;

interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}
interface Connection<N> {
  totalCount: number;
  pageInfo: PageInfo;
  edges: { cursor: string; node: N }[];
}
interface MessageNode {
  id: string;
  seq: number;
  content: string;
}
interface ConversationNode {
  id: string;
  title: string;
  status: string;
  origin: string;
  updatedAt: string;
  owner: { id: string };
}
interface PageArgs {
  first?: number;
  after?: string | null;
  last?: number;
  before?: string | null;
}

let app: TestApp;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER);
  bob = await app.makeUser(Role.MEMBER);
});
afterAll(() => app.dispose());

// ---- helpers ---------------------------------------------------------------------------------------------

/** 1, 2, ... n */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const cursorOf = (keys: unknown[]) => Buffer.from(JSON.stringify(keys)).toString("base64url");

async function newConversation(owner: TestUser, input: Record<string, unknown> = {}): Promise<string> {
  const data = await app.ok<{ createConversation: { id: string } }>(CREATE_CONVERSATION, { input: { title: "chat", ...input } }, owner.token);
  return data.createConversation.id;
}

async function addMessage(user: TestUser, conversationId: string, content: string): Promise<number> {
  const data = await app.ok<{ addMessage: { seq: number } }>(ADD_MESSAGE, { input: { conversationId, content } }, user.token);
  return data.addMessage.seq;
}

/** A conversation of `owner` holding messages "m1" ... "m<count>". */
async function conversationWith(owner: TestUser, count: number): Promise<string> {
  const id = await newConversation(owner);
  for (let i = 1; i <= count; i++) await addMessage(owner, id, `m${i}`);
  return id;
}

async function messagesPage(user: TestUser, conversationId: string, args: PageArgs): Promise<Connection<MessageNode>> {
  const data = await app.ok<{ conversation: { messages: Connection<MessageNode> } }>(MESSAGES_PAGE, { id: conversationId, ...args }, user.token);
  return data.conversation.messages;
}

async function conversationsPage(user: TestUser, args: PageArgs & { filter?: Record<string, unknown> }): Promise<Connection<ConversationNode>> {
  return (await app.ok<{ conversations: Connection<ConversationNode> }>(CONVERSATIONS_PAGE, { ...args }, user.token)).conversations;
}

const seqsOf = (page: Connection<MessageNode>) => page.edges.map((e) => e.node.seq);
const idsOf = (page: Connection<{ id: string }>) => page.edges.map((e) => e.node.id);

/** startCursor/endCursor name the first and last edge, and the page is no bigger than asked. */
function expectConsistentPage<N>(page: Connection<N>, size: number): void {
  expect(page.edges.length).toBeLessThanOrEqual(size);
  expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
  expect(page.pageInfo.endCursor).toBe(page.edges[page.edges.length - 1]?.cursor ?? null);
}

type Fetch<N> = (args: PageArgs) => Promise<Connection<N>>;

/** Pages forwards with `first` until hasNextPage is false; returns every page. */
async function walkForward<N>(fetch: Fetch<N>, first: number): Promise<Connection<N>[]> {
  const pages: Connection<N>[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await fetch({ first, after });
    expectConsistentPage(page, first);
    expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
    pages.push(page);
    if (!page.pageInfo.hasNextPage) return pages;
    expect(page.edges).toHaveLength(first);
    after = page.pageInfo.endCursor;
    if (pages.length > 1000) throw new Error("walkForward does not end");
  }
}

/** Pages backwards with `last` until hasPreviousPage is false; returns every page, newest page first. */
async function walkBackward<N>(fetch: Fetch<N>, last: number): Promise<Connection<N>[]> {
  const pages: Connection<N>[] = [];
  let before: string | null = null;
  for (;;) {
    const page = await fetch({ last, before });
    expectConsistentPage(page, last);
    expect(page.pageInfo.hasNextPage).toBe(before !== null);
    pages.push(page);
    if (!page.pageInfo.hasPreviousPage) return pages;
    expect(page.edges).toHaveLength(last);
    before = page.pageInfo.startCursor;
    if (pages.length > 1000) throw new Error("walkBackward does not end");
  }
}

/** The list order of conversations: updatedAt descending, then id descending. */
function newestFirst(a: { id: string; updatedAt: string }, b: { id: string; updatedAt: string }): number {
  const byTime = Date.parse(b.updatedAt) - Date.parse(a.updatedAt);
  return byTime !== 0 ? byTime : b.id < a.id ? -1 : b.id > a.id ? 1 : 0;
}

/** Sets updated_at of conversations directly, so that the list order (and its ties) is known in advance. */
async function setUpdatedAt(times: [id: string, at: string][]): Promise<void> {
  for (const [id, at] of times) await app.database.db.knex("conversations").where({ id }).update({ updatedAt: new Date(at) });
}

// ---- Conversation.messages -------------------------------------------------------------------------------

describe("Conversation.messages", () => {
  let conversationId: string;
  const fetch: Fetch<MessageNode> = (args) => messagesPage(alice, conversationId, args);

  beforeAll(async () => {
    conversationId = await conversationWith(alice, 53);
  });

  it("pages forwards over 53 messages in pages of 10 with no duplicates or gaps", async () => {
    const pages = await walkForward(fetch, 10);
    expect(pages.map((p) => p.edges.length)).toEqual([10, 10, 10, 10, 10, 3]);
    expect(pages.map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, true, true, true, false]);
    expect(pages.map((p) => p.totalCount)).toEqual([53, 53, 53, 53, 53, 53]);
    const nodes = pages.flatMap((p) => p.edges.map((e) => e.node));
    expect(nodes.map((n) => n.seq)).toEqual(range(1, 53));
    expect(nodes.map((n) => n.content)).toEqual(range(1, 53).map((i) => `m${i}`));
    expect(new Set(nodes.map((n) => n.id)).size).toBe(53);
  });

  it("reports hasNextPage exactly when messages remain", async () => {
    expect((await fetch({ first: 52 })).pageInfo.hasNextPage).toBe(true);
    const all = await fetch({ first: 53 });
    expect(seqsOf(all)).toEqual(range(1, 53));
    expect(all.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    const beyond = await fetch({ first: 10, after: all.pageInfo.endCursor });
    expect(beyond.edges).toEqual([]);
    expect(beyond.pageInfo).toMatchObject({ hasNextPage: false, startCursor: null, endCursor: null });
  });

  it("returns the newest 50 in chronological order for last: 50", async () => {
    const page = await fetch({ last: 50 });
    expect(seqsOf(page)).toEqual(range(4, 53));
    expect(page.edges.map((e) => e.node.content)).toEqual(range(4, 53).map((i) => `m${i}`));
    expect(page.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    expect(page.totalCount).toBe(53);
  });

  it("pages backwards with last: 10 covering every message once", async () => {
    const pages = await walkBackward(fetch, 10);
    expect(pages.map(seqsOf)).toEqual([range(44, 53), range(34, 43), range(24, 33), range(14, 23), range(4, 13), range(1, 3)]);
    expect(pages.map((p) => p.pageInfo.hasPreviousPage)).toEqual([true, true, true, true, true, false]);
    const ids = [...pages].reverse().flatMap(idsOf);
    expect(new Set(ids).size).toBe(53);
  });

  it("treats cursors as exclusive bounds in both directions", async () => {
    const first = await fetch({ first: 20 });
    const at20 = first.edges[19];
    expect(at20.node.seq).toBe(20);
    expect(seqsOf(await fetch({ first: 5, after: at20.cursor }))).toEqual(range(21, 25));
    expect(seqsOf(await fetch({ last: 5, before: at20.cursor }))).toEqual(range(15, 19));
    const backward = await fetch({ last: 50, before: at20.cursor });
    expect(seqsOf(backward)).toEqual(range(1, 19));
    expect(backward.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: true });
  });

  it("returns no edges for first: 0 but still counts the messages and says there are more", async () => {
    const page = await fetch({ first: 0 });
    expect(page.edges).toEqual([]);
    expect(page.pageInfo).toMatchObject({ startCursor: null, endCursor: null, hasNextPage: true });
    expect(page.totalCount).toBe(53);
  });

  it("accepts the maximum page size of 100", async () => {
    expect(seqsOf(await fetch({ first: 100 }))).toEqual(range(1, 53));
    expect(seqsOf(await fetch({ last: 100 }))).toEqual(range(1, 53));
  });

  it.each<[string, PageArgs]>([
    ["first and last together", { first: 5, last: 5 }],
    ["after and before together", { after: cursorOf([1]), before: cursorOf([9]) }],
    ["first with before", { first: 5, before: cursorOf([9]) }],
    ["last with after", { last: 5, after: cursorOf([1]) }],
    ["a negative first", { first: -1 }],
    ["a negative last", { last: -3 }],
    ["first above 100", { first: 101 }],
    ["last above 100", { last: 1000 }],
  ])("rejects %s with BAD_USER_INPUT", async (_name, args) => {
    expect(await app.errorCode(MESSAGES_PAGE, { id: conversationId, ...args }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it.each<[string, string]>([
    ["a random string", "not a cursor!"],
    ["an empty string", ""],
    ["base64 of something that is not JSON", Buffer.from("seq=5").toString("base64url")],
    ["a JSON object", cursorOf({ seq: 5 } as unknown as unknown[])],
    ["an empty key list", cursorOf([])],
    ["a non-integer seq", cursorOf([1.5])],
    ["a string seq", cursorOf(["5"])],
    ["a conversations cursor", cursorOf(["2026-01-01T00:00:00.000Z", "00000000-0000-4000-8000-000000000000"])],
    ["an overlong cursor", "A".repeat(600)],
  ])("rejects %s as a cursor with BAD_USER_INPUT", async (_name, cursor) => {
    expect(await app.errorCode(MESSAGES_PAGE, { id: conversationId, first: 5, after: cursor }, alice.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(MESSAGES_PAGE, { id: conversationId, last: 5, before: cursor }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("returns NOT_FOUND for another member's conversation instead of its messages", async () => {
    expect(await app.errorCode(MESSAGES_PAGE, { id: conversationId, first: 5 }, bob.token)).toBe("NOT_FOUND");
  });

  // conversation(id) reads the page its one `messages` field asks for in its own statement (look-ahead); every
  // way of writing that selection must answer exactly what the field alone (no look-ahead) answers.
  describe("read together with the conversation", () => {
    const NODE = "totalCount pageInfo { hasPreviousPage hasNextPage } edges { cursor node { id seq content } }";
    /** @include stops the look-ahead, so this is the field resolving on its own. */
    const PLAIN = `query($id: UUID!, $last: Int, $before: String) { conversation(id: $id) { id messages(last: $last, before: $before) @include(if: true) { ${NODE} } } }`;
    const written = {
      "a fragment spread": `query($id: UUID!, $last: Int, $before: String) { conversation(id: $id) { id ...M } }
        fragment M on Conversation { messages(last: $last, before: $before) { ${NODE} } }`,
      "an inline fragment": `query($id: UUID!, $last: Int, $before: String) { conversation(id: $id) { id ... on Conversation { messages(last: $last, before: $before) { ${NODE} } } } }`,
      "an alias": `query($id: UUID!, $last: Int, $before: String) { conversation(id: $id) { id messages: messages(last: $last, before: $before) { ${NODE} } } }`,
      "literal arguments": `query($id: UUID!) { conversation(id: $id) { id messages(last: 7, before: "${cursorOf([40])}") { ${NODE} } } }`,
    };

    it.each(Object.entries(written))("answers through %s as the field alone does", async (_name, query) => {
      const variables = { id: conversationId, last: 7, before: cursorOf([40]) };
      const expected = await app.ok(PLAIN, variables, alice.token);
      expect(expected.conversation.messages.edges.map((e: { node: MessageNode }) => e.node.seq)).toEqual(range(33, 39));
      expect(await app.ok(query, variables, alice.token)).toEqual(expected);
    });

    it("answers two pages of one conversation in one operation", async () => {
      const TWO = `query($id: UUID!) { conversation(id: $id) { old: messages(first: 2) { edges { node { seq } } } new: messages(last: 2) { edges { node { seq } } } } }`;
      const { conversation } = await app.ok(TWO, { id: conversationId }, alice.token);
      expect(conversation.old.edges.map((e: { node: MessageNode }) => e.node.seq)).toEqual([1, 2]);
      expect(conversation.new.edges.map((e: { node: MessageNode }) => e.node.seq)).toEqual([52, 53]);
    });

    it("reports bad paging arguments at the messages field, not at the conversation", async () => {
      const { data, errors } = (await app.gql(MESSAGES_PAGE, { id: conversationId, first: 5, after: "not a cursor!" }, alice.token)).body;
      expect(errors?.map((e) => [e.extensions?.code, e.path])).toEqual([["BAD_USER_INPUT", ["conversation", "messages"]]]);
      expect(data).toBeNull(); // messages and conversation are non-null, so the error empties the whole answer
    });

    it("gives a conversation without messages an empty page", async () => {
      const empty = await newConversation(alice);
      expect(await messagesPage(alice, empty, { last: 50 })).toEqual({
        totalCount: 0,
        pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
        edges: [],
      });
    });

    it("reads a granted service the page, and an ungranted one NOT_FOUND", async () => {
      const granted = await app.makeUser(Role.SERVICE);
      const other = await app.makeUser(Role.SERVICE);
      await app.grant(granted, { conversationId });
      expect(seqsOf(await messagesPage(granted, conversationId, { last: 3 }))).toEqual([51, 52, 53]);
      expect(await app.errorCode(MESSAGES_PAGE, { id: conversationId, last: 3 }, other.token)).toBe("NOT_FOUND");
    });
  });
});

describe("Conversation.messages while messages are being added", () => {
  it("sees every message exactly once, in order, including the new ones", async () => {
    const conversationId = await conversationWith(alice, 30);
    let written = 30;
    const addOne = async () => {
      const seq = await addMessage(alice, conversationId, `m${written + 1}`);
      written = seq;
    };

    const seen: number[] = [];
    let after: string | null = null;
    const addingRounds = 6;
    for (let round = 0; ; round++) {
      // While writes are going on, one is in flight during the page fetch and one more follows it.
      const [page]: [Connection<MessageNode>, void] = await Promise.all([
        messagesPage(alice, conversationId, { first: 5, after }),
        round < addingRounds ? addOne() : undefined,
      ]);
      if (round < addingRounds) await addOne();
      expectConsistentPage(page, 5);
      seen.push(...seqsOf(page));
      after = page.pageInfo.endCursor ?? after;
      // Only a fetch that started after the last write may end the walk.
      if (!page.pageInfo.hasNextPage && round >= addingRounds) break;
      if (round > 100) throw new Error("the walk does not end");
    }

    expect(written).toBe(30 + 2 * addingRounds);
    expect(seen).toEqual(range(1, written));
    const final = await messagesPage(alice, conversationId, { last: 100 });
    expect(final.totalCount).toBe(written);
    expect(final.edges.map((e) => e.node.content)).toEqual(range(1, written).map((i) => `m${i}`));
  });

  it("resumes after the last seen cursor once new messages arrive", async () => {
    const conversationId = await conversationWith(alice, 4);
    const end = await messagesPage(alice, conversationId, { first: 10 });
    expect(end.pageInfo.hasNextPage).toBe(false);
    expect(seqsOf(end)).toEqual([1, 2, 3, 4]);

    await addMessage(alice, conversationId, "m5");
    await addMessage(alice, conversationId, "m6");
    const resumed = await messagesPage(alice, conversationId, { first: 10, after: end.pageInfo.endCursor });
    expect(resumed.edges.map((e) => [e.node.seq, e.node.content])).toEqual([
      [5, "m5"],
      [6, "m6"],
    ]);
    expect(resumed.pageInfo.hasNextPage).toBe(false);
    expect(resumed.totalCount).toBe(6);
  });
});

// ---- conversations ---------------------------------------------------------------------------------------

describe("conversations", () => {
  it("lists the most recently active first and moves a conversation to the front when a message is added", async () => {
    const owner = await app.makeUser(Role.MEMBER);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await newConversation(owner, { title: `c${i}` }));
    // Known, distinct activity times: c0 is the oldest, c4 the newest.
    await setUpdatedAt(ids.map((id, i) => [id, `2024-01-01T00:0${i}:00.000Z`]));

    const before = await conversationsPage(owner, { first: 10 });
    expect(before.edges.map((e) => e.node.title)).toEqual(["c4", "c3", "c2", "c1", "c0"]);
    expect(before.edges[0].node.updatedAt).toBe("2024-01-01T00:04:00.000Z");

    await addMessage(owner, ids[0], "wake up");
    const after = await conversationsPage(owner, { first: 10 });
    expect(after.edges.map((e) => e.node.title)).toEqual(["c0", "c4", "c3", "c2", "c1"]);
    expect(after.totalCount).toBe(5);
  });

  describe("paging over 25 conversations", () => {
    let owner: TestUser;
    let expected: { id: string; updatedAt: string }[];
    const fetch: Fetch<ConversationNode> = (args) => conversationsPage(owner, args);

    beforeAll(async () => {
      owner = await app.makeUser(Role.MEMBER);
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) ids.push(await newConversation(owner, { title: `p${i}` }));
      // Only three distinct times, so most neighbours tie on updatedAt and the id decides their order.
      const times = ["2025-03-01T10:00:00.000Z", "2025-03-01T10:00:00.001Z", "2025-03-02T08:30:00.000Z"];
      await setUpdatedAt(ids.map((id, i) => [id, times[i % 3]]));
      expected = ids.map((id, i) => ({ id, updatedAt: times[i % 3] })).sort(newestFirst);
    });

    it("lists them by updatedAt descending, then id descending", async () => {
      const page = await fetch({ first: 100 });
      expect(page.edges.map((e) => ({ id: e.node.id, updatedAt: e.node.updatedAt }))).toEqual(expected);
      expect(page.totalCount).toBe(25);
      expect(page.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    });

    it.each([1, 7, 10, 24, 25])("pages forwards with first: %i without duplicates or gaps", async (size) => {
      const pages = await walkForward(fetch, size);
      expect(pages.flatMap(idsOf)).toEqual(expected.map((c) => c.id));
      expect(pages.every((p) => p.totalCount === 25)).toBe(true);
      expect(pages[pages.length - 1].pageInfo.hasNextPage).toBe(false);
    });

    it.each([1, 10, 25])("pages backwards with last: %i without duplicates or gaps", async (size) => {
      const pages = await walkBackward(fetch, size);
      expect([...pages].reverse().flatMap(idsOf)).toEqual(expected.map((c) => c.id));
      expect(pages.every((p) => p.totalCount === 25)).toBe(true);
    });

    it("treats a cursor as an exclusive bound in both directions", async () => {
      const all = await fetch({ first: 25 });
      const at = all.edges[12].cursor;
      expect(idsOf(await fetch({ first: 3, after: at }))).toEqual(expected.slice(13, 16).map((c) => c.id));
      expect(idsOf(await fetch({ last: 3, before: at }))).toEqual(expected.slice(9, 12).map((c) => c.id));
    });

    it("shows another member none of them", async () => {
      const page = await conversationsPage(bob, { first: 100 });
      const theirs = new Set(expected.map((c) => c.id));
      expect(page.edges.filter((e) => theirs.has(e.node.id))).toEqual([]);
      expect(page.edges.every((e) => e.node.owner.id === bob.user.id)).toBe(true);
    });

    it("shows an admin passing ownerId exactly that user's conversations", async () => {
      const admin = await app.makeUser(Role.ADMIN);
      const page = await conversationsPage(admin, { first: 100, filter: { ownerId: owner.user.id } });
      expect(idsOf(page)).toEqual(expected.map((c) => c.id));
      expect(page.totalCount).toBe(25);
      expect(page.edges.every((e) => e.node.owner.id === owner.user.id)).toBe(true);
      // Without ownerId an admin lists their own, of which there are none.
      const own = await conversationsPage(admin, { first: 100 });
      expect(own).toMatchObject({ totalCount: 0, edges: [] });
    });

    it("lets a member pass their own id as ownerId", async () => {
      const page = await conversationsPage(owner, { first: 100, filter: { ownerId: owner.user.id } });
      expect(idsOf(page)).toEqual(expected.map((c) => c.id));
    });

    it.each([Role.MEMBER, Role.SERVICE])("refuses a %s passing another user's ownerId with FORBIDDEN", async (role) => {
      const viewer = role === Role.MEMBER ? bob : await app.makeUser(role);
      const { body } = await app.gql(CONVERSATIONS_PAGE, { first: 10, filter: { ownerId: owner.user.id } }, viewer.token);
      expect(body.data).toBeNull();
      expect(body.errors?.map((e) => e.extensions?.code)).toEqual(["FORBIDDEN"]);
    });
  });

  describe("filters", () => {
    let owner: TestUser;
    let archived: string[];
    let active: string[];

    beforeAll(async () => {
      owner = await app.makeUser(Role.MEMBER);
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await newConversation(owner, { title: `f${i}`, origin: i < 2 ? "API" : "WEB" }));
      archived = [ids[1], ids[4], ids[6]];
      for (const id of archived) await app.ok(ARCHIVE_CONVERSATION, { id }, owner.token);
      active = ids.filter((id) => !archived.includes(id));
    });

    const sorted = (nodes: ConversationNode[]) => [...nodes].sort(newestFirst);

    it("lists only ARCHIVED conversations when filtered by that status, with a matching totalCount", async () => {
      const page = await conversationsPage(owner, { first: 100, filter: { status: "ARCHIVED" } });
      expect(new Set(idsOf(page))).toEqual(new Set(archived));
      expect(page.edges).toHaveLength(3);
      expect(page.edges.every((e) => e.node.status === "ARCHIVED")).toBe(true);
      expect(page.totalCount).toBe(3);
      const nodes = page.edges.map((e) => e.node);
      expect(nodes).toEqual(sorted(nodes));
    });

    it("pages through a filtered list without leaving the filter", async () => {
      const pages = await walkForward((args) => conversationsPage(owner, { ...args, filter: { status: "ACTIVE" } }), 2);
      const ids = pages.flatMap(idsOf);
      expect(ids).toHaveLength(4);
      expect(new Set(ids)).toEqual(new Set(active));
      expect(pages.every((p) => p.totalCount === 4)).toBe(true);
    });

    it("filters by origin and combines filters", async () => {
      const api = await conversationsPage(owner, { first: 100, filter: { origin: "API" } });
      expect(api.edges.map((e) => e.node.title).sort()).toEqual(["f0", "f1"]);
      const apiArchived = await conversationsPage(owner, { first: 100, filter: { origin: "API", status: "ARCHIVED" } });
      expect(apiArchived.edges.map((e) => e.node.title)).toEqual(["f1"]);
      expect(apiArchived.totalCount).toBe(1);
    });

    it("counts every conversation without a filter", async () => {
      const page = await conversationsPage(owner, { first: 1 });
      expect(page.totalCount).toBe(7);
      expect(page.pageInfo.hasNextPage).toBe(true);
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ["a random cursor", { first: 5, after: "garbage" }],
    ["a messages cursor", { first: 5, after: cursorOf([5]) }],
    ["a cursor with a malformed time", { first: 5, after: cursorOf(["yesterday", "00000000-0000-4000-8000-000000000000"]) }],
    ["a cursor with a malformed id", { last: 5, before: cursorOf(["2026-01-01T00:00:00.000Z", "1; drop table users"]) }],
    ["first and last together", { first: 5, last: 5 }],
    ["a negative first", { first: -1 }],
    ["first above 100", { first: 101 }],
    ["an unknown status", { first: 5, filter: { status: "DELETED" } }],
  ])("rejects %s with BAD_USER_INPUT", async (_name, args) => {
    expect(await app.errorCode(CONVERSATIONS_PAGE, args, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("returns no edges for first: 0", async () => {
    const owner = await app.makeUser(Role.MEMBER);
    await newConversation(owner);
    await newConversation(owner);
    const page = await conversationsPage(owner, { first: 0 });
    expect(page.edges).toEqual([]);
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(page.totalCount).toBe(2);
  });
});
