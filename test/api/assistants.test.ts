/**
 * Assistants: named presets with a version history, pinned by conversations and named by assistant messages.
 * A pin and an attribution keep naming the version they named when the assistant changes later.
 */
import { randomBytes } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";
import { DEMO_ASSISTANT_IDS, seedAssistants } from "../../seeds/demo/assistants";

/** The token lookup of every HTTP request (the key cache is off here, as in n-plus-one.test.ts). */
const AUTH = 1;

let app: TestApp;
let counter: StatementCounter;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
let worker: TestUser; // a service granted the WEB origin: it answers in members' web conversations

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_forecast",
    description: "The weather forecast for a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] },
  },
};

const VERSION_FIELDS = "id version model systemPrompt parameters tools knowledgeScope { kind guildId userId } assistant { id name }";
const ASSISTANT_FIELDS = `id name description shared isActive currentVersionNumber owner { id } currentVersion { ${VERSION_FIELDS} } versions { ${VERSION_FIELDS} }`;
const CREATE = `mutation($in: CreateAssistantInput!) { createAssistant(input: $in) { ${ASSISTANT_FIELDS} } }`;
const UPDATE = `mutation($id: UUID!, $in: UpdateAssistantInput!) { updateAssistant(id: $id, input: $in) { ${ASSISTANT_FIELDS} } }`;
const GET = `query($id: UUID!) { assistant(id: $id) { ${ASSISTANT_FIELDS} } }`;
const LIST = `query($f: AssistantsFilter) { assistants(filter: $f, first: 100) { totalCount edges { node { id name } } } }`;
const PIN = `mutation($c: UUID!, $a: UUID!, $v: Int) { pinAssistant(conversationId: $c, assistantId: $a, version: $v) { id assistant { id version model assistant { id name } } } }`;
const UNPIN = `mutation($c: UUID!) { unpinAssistant(conversationId: $c) { id assistant { id } } }`;
const PINNED = `query($c: UUID!) { conversation(id: $c) { assistant { id version model assistant { id name } } } }`;
const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id role assistant { id version assistant { name } } } }`;
const START = `mutation($in: StartMessageInput!) { startMessage(input: $in) { id assistant { id version } } }`;
const ACTIVE = `mutation($id: UUID!, $a: Boolean!) { setAssistantActive(id: $id, active: $a) { isActive } }`;
const DELETE = `mutation($id: UUID!) { deleteAssistant(id: $id) }`;

let names = 0;
/** A new assistant of `owner`'s (shared when `shared`), with overrides of the input. */
async function makeAssistant(owner: TestUser, input: Record<string, unknown> = {}): Promise<{ id: string; versionId: string }> {
  const { createAssistant } = await app.ok(CREATE, { in: { name: `assistant ${++names}`, model: "gpt-4o-mini", ...input } }, owner.token);
  return { id: createAssistant.id, versionId: createAssistant.currentVersion.id };
}

async function newConversation(owner: TestUser, title = "chat"): Promise<string> {
  return (await app.ok(`mutation($t: String!) { createConversation(input: { title: $t }) { id } }`, { t: title }, owner.token)).createConversation.id;
}

async function assistantCount(): Promise<number> {
  const row = await app.database.db.knex("assistants").count({ n: "*" }).first();
  return Number(row!.n);
}

beforeAll(async () => {
  app = await createTestApp({ AUTH_CACHE_SECONDS: "0" });
  counter = countStatements(app);
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(worker, { origin: "web" });
});
afterAll(() => app.dispose());

describe("versions", () => {
  it("createAssistant writes version 1; updateAssistant writes version 2 and leaves version 1 as it was", async () => {
    const input = {
      name: "Trip planner",
      description: "Plans weekends",
      model: "gpt-4o-mini",
      systemPrompt: "You plan trips.",
      parameters: { temperature: 0.2 },
      tools: [WEATHER_TOOL],
      knowledgeScope: { kind: "USER" },
    };
    const { createAssistant: created } = await app.ok(CREATE, { in: input }, alice.token);
    const v1 = {
      version: 1,
      model: "gpt-4o-mini",
      systemPrompt: "You plan trips.",
      parameters: { temperature: 0.2 },
      tools: [WEATHER_TOOL],
      knowledgeScope: { kind: "USER", guildId: null, userId: alice.user.id },
      assistant: { id: created.id, name: "Trip planner" },
    };
    expect(created).toMatchObject({ name: "Trip planner", shared: false, isActive: true, currentVersionNumber: 1, owner: { id: alice.user.id } });
    expect(created.versions).toEqual([{ ...v1, id: created.currentVersion.id }]);

    const { updateAssistant } = await app.ok(UPDATE, { id: created.id, in: { model: "claude-3-haiku", parameters: { temperature: 0.7 } } }, alice.token);
    expect(updateAssistant.currentVersionNumber).toBe(2);
    const { assistant } = await app.ok(GET, { id: created.id }, alice.token);
    expect(assistant.versions.map((v: any) => v.version)).toEqual([1, 2]);
    expect(assistant.versions[0]).toEqual({ ...v1, id: created.currentVersion.id }); // untouched
    // What was not given is carried over from version 1.
    expect(assistant.currentVersion).toMatchObject({ version: 2, model: "claude-3-haiku", parameters: { temperature: 0.7 }, systemPrompt: "You plan trips.", tools: [WEATHER_TOOL] });
    expect(assistant.currentVersion.id).not.toBe(created.currentVersion.id);

    // An explicit null clears the prompt (version 3); a rename changes the assistant only.
    await app.ok(UPDATE, { id: created.id, in: { systemPrompt: null } }, alice.token);
    const { updateAssistant: renamed } = await app.ok(UPDATE, { id: created.id, in: { name: "Weekend planner" } }, alice.token);
    expect(renamed).toMatchObject({ name: "Weekend planner", currentVersionNumber: 3, currentVersion: { version: 3, systemPrompt: null, model: "claude-3-haiku" } });
    expect(renamed.versions.map((v: any) => v.systemPrompt)).toEqual(["You plan trips.", "You plan trips.", null]);
  });

  it("concurrent updates each get a version of their own", async () => {
    const { id } = await makeAssistant(alice);
    const results = await Promise.all([1, 2, 3, 4].map((i) => app.ok(UPDATE, { id, in: { model: `model-${i}` } }, alice.token)));
    expect(results.map((r) => r.updateAssistant.currentVersion.version).sort()).toEqual([2, 3, 4, 5]);
    const { assistant } = await app.ok(GET, { id }, alice.token);
    expect(assistant.versions.map((v: any) => v.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it("names are unique per owner (ignoring case), not across owners", async () => {
    await makeAssistant(alice, { name: "Echo" });
    expect(await app.errorCode(CREATE, { in: { name: "echo", model: "m" } }, alice.token)).toBe("CONFLICT");
    await makeAssistant(bob, { name: "Echo" });
  });
});

describe("pins", () => {
  it("a conversation pinned to version 1 still says version 1 after the assistant changes", async () => {
    const { id, versionId } = await makeAssistant(alice, { name: "Pinned one", model: "model-a" });
    const conversationId = await newConversation(alice);
    const { pinAssistant } = await app.ok(PIN, { c: conversationId, a: id }, alice.token);
    expect(pinAssistant.assistant).toEqual({ id: versionId, version: 1, model: "model-a", assistant: { id, name: "Pinned one" } });
    await app.ok(UPDATE, { id, in: { model: "model-b", name: "Renamed" } }, alice.token);
    const { conversation } = await app.ok(PINNED, { c: conversationId }, alice.token);
    expect(conversation.assistant).toEqual({ id: versionId, version: 1, model: "model-a", assistant: { id, name: "Renamed" } });

    // Pinning again takes the current version; an explicit version an older one.
    expect((await app.ok(PIN, { c: conversationId, a: id }, alice.token)).pinAssistant.assistant).toMatchObject({ version: 2, model: "model-b" });
    expect((await app.ok(PIN, { c: conversationId, a: id, v: 1 }, alice.token)).pinAssistant.assistant).toMatchObject({ version: 1 });
    expect(await app.errorCode(PIN, { c: conversationId, a: id, v: 3 }, alice.token)).toBe("BAD_USER_INPUT");
    expect((await app.ok(UNPIN, { c: conversationId }, alice.token)).unpinAssistant.assistant).toBeNull();
    expect((await app.ok(PINNED, { c: conversationId }, alice.token)).conversation.assistant).toBeNull();
  });

  it("an inactive assistant cannot be pinned; a conversation that pinned it keeps its pin", async () => {
    const { id, versionId } = await makeAssistant(alice);
    const pinned = await newConversation(alice);
    await app.ok(PIN, { c: pinned, a: id }, alice.token);
    expect((await app.ok(ACTIVE, { id, a: false }, alice.token)).setAssistantActive.isActive).toBe(false);
    const other = await newConversation(alice);
    const { body } = await app.gql(PIN, { c: other, a: id }, alice.token);
    expect(body.errors?.[0].extensions).toMatchObject({ code: "CONFLICT", reason: "ASSISTANT_INACTIVE" });
    expect((await app.ok(PINNED, { c: other }, alice.token)).conversation.assistant).toBeNull();
    expect((await app.ok(PINNED, { c: pinned }, alice.token)).conversation.assistant.id).toBe(versionId);
    // Inactive ones leave the list unless asked for, and stay readable by id.
    const listed = async (filter: object) => (await app.ok(LIST, { f: filter }, alice.token)).assistants.edges.map((e: any) => e.node.id);
    expect(await listed({})).not.toContain(id);
    expect(await listed({ includeInactive: true })).toContain(id);
    expect((await app.ok(GET, { id }, alice.token)).assistant.isActive).toBe(false);
  });

  it("an archived conversation cannot be pinned", async () => {
    const { id } = await makeAssistant(alice);
    const conversationId = await newConversation(alice);
    await app.ok(`mutation($c: UUID!) { archiveConversation(id: $c) { id } }`, { c: conversationId }, alice.token);
    expect(await app.errorCode(PIN, { c: conversationId, a: id }, alice.token)).toBe("CONFLICT");
  });

  it("a shared assistant goes into anyone's conversation; a private one only into its owner's", async () => {
    const shared = await makeAssistant(admin, { shared: true });
    const conversationId = await newConversation(bob);
    expect((await app.ok(PIN, { c: conversationId, a: shared.id }, bob.token)).pinAssistant.assistant.id).toBe(shared.versionId);
    // Admins see Alice's private assistant, but it goes into Alice's conversations only.
    const alicesOwn = await makeAssistant(alice);
    expect(await app.errorCode(PIN, { c: conversationId, a: alicesOwn.id }, admin.token)).toBe("FORBIDDEN");
    expect((await app.ok(PIN, { c: await newConversation(alice), a: alicesOwn.id }, admin.token)).pinAssistant.assistant.id).toBe(alicesOwn.versionId);
    // The owner of a private assistant (here a service) may pin it into a conversation it serves.
    const workersOwn = await makeAssistant(worker);
    expect((await app.ok(PIN, { c: conversationId, a: workersOwn.id }, worker.token)).pinAssistant.assistant.id).toBe(workersOwn.versionId);
  });
});

describe("attribution", () => {
  let assistantId: string;
  let v1: string;
  let v2: string;
  let conversationId: string;

  beforeAll(async () => {
    ({ id: assistantId, versionId: v1 } = await makeAssistant(alice, { name: "Alice's helper" }));
    conversationId = await newConversation(alice);
    await app.ok(PIN, { c: conversationId, a: assistantId }, alice.token);
    v2 = (await app.ok(UPDATE, { id: assistantId, in: { model: "newer" } }, alice.token)).updateAssistant.currentVersion.id;
  });

  it("an assistant message without assistantVersionId is attributed to the conversation's pin (version 1, not the newer 2)", async () => {
    const { addMessage } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "hello" } }, worker.token);
    expect(addMessage.assistant).toEqual({ id: v1, version: 1, assistant: { name: "Alice's helper" } });
    const { startMessage } = await app.ok(START, { in: { conversationId } }, worker.token);
    expect(startMessage.assistant).toEqual({ id: v1, version: 1 });
    // Other roles are not attributed, pin or not.
    const { addMessage: user } = await app.ok(ADD, { in: { conversationId, content: "thanks" } }, alice.token);
    expect(user.assistant).toBeNull();
    const { addMessage: tool } = await app.ok(ADD, { in: { conversationId, role: "TOOL", content: "{}" } }, worker.token);
    expect(tool.assistant).toBeNull();
    // Read back, not only as written.
    const { message } = await app.ok(`query($id: UUID!) { message(id: $id) { assistant { id } } }`, { id: addMessage.id }, alice.token);
    expect(message.assistant).toEqual({ id: v1 });
  });

  it("an explicit assistantVersionId wins over the pin: a shared assistant's, or the pinned one of a private assistant", async () => {
    const shared = await makeAssistant(admin, { shared: true, name: "Shared helper" });
    const { addMessage } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "hi", assistantVersionId: shared.versionId } }, worker.token);
    expect(addMessage.assistant).toEqual({ id: shared.versionId, version: 1, assistant: { name: "Shared helper" } });
    const { startMessage } = await app.ok(START, { in: { conversationId, assistantVersionId: shared.versionId } }, worker.token);
    expect(startMessage.assistant).toEqual({ id: shared.versionId, version: 1 });
    // The worker cannot see Alice's private assistant, but may name the version her conversation pins.
    const pinned = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "as pinned", assistantVersionId: v1 } }, worker.token);
    expect(pinned.addMessage.assistant.id).toBe(v1);
  });

  it("a conversation without a pin leaves assistant messages unattributed unless they name a version", async () => {
    const plain = await newConversation(alice);
    const { addMessage } = await app.ok(ADD, { in: { conversationId: plain, role: "ASSISTANT", content: "hello" } }, worker.token);
    expect(addMessage.assistant).toBeNull();
  });

  it("refuses assistantVersionId on USER, SYSTEM and TOOL messages, and versions the writer cannot see; nothing is stored", async () => {
    const count = async () => (await app.ok(`query($c: UUID!) { conversation(id: $c) { messageCount } }`, { c: conversationId }, alice.token)).conversation.messageCount;
    const before = await count();
    expect(await app.errorCode(ADD, { in: { conversationId, content: "me", assistantVersionId: v1 } }, alice.token)).toBe("BAD_USER_INPUT");
    for (const role of ["USER", "SYSTEM", "TOOL"]) {
      expect(await app.errorCode(ADD, { in: { conversationId, role, content: "x", assistantVersionId: v1 } }, worker.token)).toBe("BAD_USER_INPUT");
    }
    expect(await app.errorCode(START, { in: { conversationId, role: "USER", assistantVersionId: v1 } }, worker.token)).toBe("BAD_USER_INPUT");
    // Version 2 of Alice's private assistant is not the pin: to the worker it does not exist.
    expect(await app.errorCode(ADD, { in: { conversationId, role: "ASSISTANT", content: "x", assistantVersionId: v2 } }, worker.token)).toBe("NOT_FOUND");
    const unknown = "00000000-0000-4000-8000-000000000000";
    expect(await app.errorCode(ADD, { in: { conversationId, role: "ASSISTANT", content: "x", assistantVersionId: unknown } }, worker.token)).toBe("NOT_FOUND");
    expect(await count()).toBe(before);
  });

  it("attributes on the encrypted write path (a transaction) as on the one-statement path", async () => {
    const key = randomBytes(32).toString("base64");
    const encrypted = await createTestApp({ MESSAGE_ENCRYPTION_KEYS: `k1:${key}` }, app.database);
    try {
      const ADD_HERE = `mutation($in: AddMessageInput!) { addMessage(input: $in) { content assistant { id } } }`;
      const { addMessage } = await encrypted.ok(ADD_HERE, { in: { conversationId, role: "ASSISTANT", content: "secret reply" } }, worker.token);
      expect(addMessage).toEqual({ content: "secret reply", assistant: { id: v1 } });
      const row = await app.database.db.knex("messages").where({ conversationId }).orderBy("seq", "desc").first("content", "assistantVersionId");
      expect(row).toEqual({ content: null, assistantVersionId: v1 }); // stored encrypted, and attributed
    } finally {
      await encrypted.server.dispose();
    }
  });

  it("keeps addMessage one statement, with the same text with a pin and without (one prepared statement)", async () => {
    const unpinned = await newConversation(alice);
    const write = (c: string) => counter.run(`mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`, { in: { conversationId: c, role: "ASSISTANT", content: "reply" } }, admin.token);
    const withPin = await write(conversationId);
    const withoutPin = await write(unpinned);
    expect(withPin.statements).toHaveLength(AUTH + 1);
    expect(withoutPin.statements).toHaveLength(AUTH + 1);
    expect(withPin.statements[AUTH]).toBe(withoutPin.statements[AUTH]);
    const knex = app.database.db.knex;
    expect(await knex("messages").where({ id: withPin.data.addMessage.id }).first("assistantVersionId")).toEqual({ assistantVersionId: v1 });
    expect(await knex("messages").where({ id: withoutPin.data.addMessage.id }).first("assistantVersionId")).toEqual({ assistantVersionId: null });
  });
});

describe("bad input", () => {
  const refused = async (input: Record<string, unknown>, code = "BAD_USER_INPUT", user = alice) => {
    const before = await assistantCount();
    expect(await app.errorCode(CREATE, { in: { name: `bad ${++names}`, model: "m", ...input } }, user.token)).toBe(code);
    expect(await assistantCount()).toBe(before);
  };

  it("tools must be function tools whose parameters are an object schema", async () => {
    const tool = (fn: Record<string, unknown>) => ({ type: "function", function: { name: "f", ...fn } });
    await refused({ tools: [tool({ parameters: { type: "string" } })] });
    await refused({ tools: [tool({ parameters: "city" })] });
    await refused({ tools: [tool({ parameters: { type: "object", properties: { city: "string" } } })] });
    await refused({ tools: [tool({ parameters: { type: "object", properties: { city: { type: "string" } }, required: ["country"] } })] });
    await refused({ tools: [tool({ name: "has spaces" })] });
    await refused({ tools: [tool({}), tool({})] }); // the same name twice
    await refused({ tools: [{ type: "retrieval" }] });
    await refused({ tools: [{ type: "function", function: { name: "f" }, extra: 1 }] });
    await refused({ tools: ["get_forecast"] });
    // The good ones pass, parameters or not.
    await makeAssistant(alice, { tools: [WEATHER_TOOL, tool({ name: "no_arguments" })] });
  });

  it("parameters must be an object with well-known values in range", async () => {
    await refused({ parameters: { temperature: 5 } });
    await refused({ parameters: { max_tokens: 1.5 } });
    await refused({ parameters: [1, 2] });
    await refused({ name: "   " });
    await refused({ model: "" });
  });

  it("the knowledge scope must exist and be readable by the creator", async () => {
    await refused({ knowledgeScope: { kind: "GLOBAL", guildId: "123" } });
    await refused({ knowledgeScope: { kind: "GUILD" } });
    await refused({ knowledgeScope: { kind: "USER", userId: bob.user.id } }, "FORBIDDEN"); // another member's knowledge
    await refused({ knowledgeScope: { kind: "GUILD", guildId: "123" } }, "FORBIDDEN"); // guilds are the bot's and admins'
    await refused({ knowledgeScope: { kind: "USER", userId: "00000000-0000-4000-8000-000000000000" } }, "BAD_USER_INPUT", admin);
    const before = await assistantCount();
    const { body } = await app.gql(CREATE, { in: { name: "odd scope", model: "m", knowledgeScope: { kind: "PLANET" } } }, alice.token);
    expect(body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT"); // not an enum value: refused before any resolver
    expect(await assistantCount()).toBe(before);
    await makeAssistant(alice, { knowledgeScope: { kind: "GLOBAL" } });
  });

  it("an update with nothing to change is refused", async () => {
    const { id } = await makeAssistant(alice);
    expect(await app.errorCode(UPDATE, { id, in: {} }, alice.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(UPDATE, { id, in: { tools: [{ type: "function", function: { name: "x", parameters: { type: "array" } } }] } }, alice.token)).toBe("BAD_USER_INPUT");
    expect((await app.ok(GET, { id }, alice.token)).assistant.currentVersionNumber).toBe(1);
  });
});

describe("who sees and changes what", () => {
  let alicePrivate: { id: string; versionId: string };
  let shared: { id: string; versionId: string };

  beforeAll(async () => {
    alicePrivate = await makeAssistant(alice, { name: "Alice's secret", systemPrompt: "alice's secret prompt" });
    shared = await makeAssistant(admin, { name: "Everyone's", shared: true });
  });

  it("another member's private assistant is NOT_FOUND for every operation, and unchanged", async () => {
    const bobsConversation = await newConversation(bob);
    const before = await app.ok(GET, { id: alicePrivate.id }, alice.token);
    expect(await app.errorCode(GET, { id: alicePrivate.id }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(UPDATE, { id: alicePrivate.id, in: { model: "pwned" } }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(ACTIVE, { id: alicePrivate.id, a: false }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(DELETE, { id: alicePrivate.id }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(PIN, { c: bobsConversation, a: alicePrivate.id }, bob.token)).toBe("NOT_FOUND");
    const ADD_AS = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`;
    // A service of Bob's own cannot name it either.
    const bobsWorker = await app.makeUser(Role.SERVICE, "bob's worker");
    const workersConversation = await newConversation(bobsWorker);
    expect(await app.errorCode(ADD_AS, { in: { conversationId: workersConversation, role: "ASSISTANT", content: "x", assistantVersionId: alicePrivate.versionId } }, bobsWorker.token)).toBe("NOT_FOUND");
    const { assistants } = await app.ok(LIST, { f: { includeInactive: true } }, bob.token);
    expect(JSON.stringify(assistants)).not.toContain(alicePrivate.id);
    expect(await app.ok(GET, { id: alicePrivate.id }, alice.token)).toEqual(before);
  });

  it("members cannot make shared assistants, nor change the shared ones they see", async () => {
    const before = await assistantCount();
    expect(await app.errorCode(CREATE, { in: { name: "mine for all", model: "m", shared: true } }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(CREATE, { in: { name: "service's for all", model: "m", shared: true } }, worker.token)).toBe("FORBIDDEN");
    expect(await assistantCount()).toBe(before);
    expect((await app.ok(GET, { id: shared.id }, bob.token)).assistant).toMatchObject({ shared: true, owner: null });
    expect(await app.errorCode(UPDATE, { id: shared.id, in: { model: "pwned" } }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(ACTIVE, { id: shared.id, a: false }, bob.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DELETE, { id: shared.id }, bob.token)).toBe("FORBIDDEN");
    expect((await app.ok(GET, { id: shared.id }, bob.token)).assistant.currentVersionNumber).toBe(1);
  });

  it("lists: members and services their own and the shared ones, admins all; filters narrow", async () => {
    const ids = async (user: TestUser, filter: object = {}) => (await app.ok(LIST, { f: filter }, user.token)).assistants.edges.map((e: any) => e.node.id);
    const servicesOwn = await makeAssistant(worker);
    expect(await ids(bob)).toEqual(expect.arrayContaining([shared.id]));
    expect(await ids(bob)).not.toContain(alicePrivate.id);
    expect(await ids(worker)).toEqual(expect.arrayContaining([shared.id, servicesOwn.id]));
    expect(await ids(worker)).not.toContain(alicePrivate.id);
    expect(await ids(admin)).toEqual(expect.arrayContaining([shared.id, servicesOwn.id, alicePrivate.id]));
    expect(await ids(alice, { mine: true })).toContain(alicePrivate.id);
    expect(await ids(alice, { mine: true })).not.toContain(shared.id);
    expect(await ids(alice, { shared: true })).toEqual(expect.arrayContaining([shared.id]));
    expect(await ids(alice, { shared: true })).not.toContain(alicePrivate.id);
    expect(await ids(alice, { shared: false })).toContain(alicePrivate.id);
    expect(await ids(alice, { shared: false })).not.toContain(shared.id);
    // Pages of one, walked with the cursor, give the same list.
    const all = await ids(alice);
    const walked: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = (await app.ok(`query($a: String) { assistants(first: 1, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, { a: after }, alice.token)).assistants;
      walked.push(...page.edges.map((e: any) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(walked).toEqual(all);
  });

  it("admins change anyone's assistant", async () => {
    const { updateAssistant } = await app.ok(UPDATE, { id: alicePrivate.id, in: { description: "reviewed" } }, admin.token);
    expect(updateAssistant.description).toBe("reviewed");
  });
});

describe("deleting", () => {
  it("is refused (CONFLICT) while a conversation pins or a message names a version; deactivating is the way", async () => {
    const { id, versionId } = await makeAssistant(alice);
    const conversationId = await newConversation(alice);
    await app.ok(PIN, { c: conversationId, a: id }, alice.token);
    const { body } = await app.gql(DELETE, { id }, alice.token);
    expect(body.errors?.[0].extensions).toMatchObject({ code: "CONFLICT", reason: "ASSISTANT_IN_USE" });
    expect(body.errors?.[0].message).toContain("deactivate");
    await app.ok(UPDATE, { id, in: { model: "v2" } }, alice.token); // the pin is on version 1; the check covers every version
    await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "attributed" } }, worker.token);
    await app.ok(UNPIN, { c: conversationId }, alice.token);
    expect(await app.errorCode(DELETE, { id }, alice.token)).toBe("CONFLICT"); // the message still names it
    expect(await app.database.db.knex("assistant_versions").where({ id: versionId }).first("id")).toBeDefined();
    expect((await app.ok(ACTIVE, { id, a: false }, alice.token)).setAssistantActive.isActive).toBe(false);
  });

  it("deletes an assistant nothing points at, with its versions", async () => {
    const { id, versionId } = await makeAssistant(alice);
    await app.ok(UPDATE, { id, in: { model: "v2" } }, alice.token);
    expect((await app.ok(DELETE, { id }, alice.token)).deleteAssistant).toBe(true);
    expect(await app.errorCode(GET, { id }, alice.token)).toBe("NOT_FOUND");
    expect(await app.database.db.knex("assistant_versions").where({ assistantId: id }).select("id")).toEqual([]);
    expect(await app.database.db.knex("assistant_versions").where({ id: versionId }).first("id")).toBeUndefined();
    const actions = await app.database.db.knex("audit_logs").where({ targetId: id }).orderBy("createdAt").select("action");
    expect(actions.map((a: any) => a.action)).toEqual(["assistant.create", "assistant.update", "assistant.delete"]);
  });
});

describe("N+1 guards", () => {
  const FEW = 3;
  const MANY = 12;
  /** Per size: a member whose conversations each pin an assistant of their own, and a conversation of that many assistant messages, each by another assistant. */
  const owners = new Map<number, TestUser>();
  const histories = new Map<number, string>();

  beforeAll(async () => {
    const knex = app.database.db.knex;
    for (const n of [FEW, MANY]) {
      const owner = await app.makeUser(Role.MEMBER, `owner-of-${n}`);
      owners.set(n, owner);
      const history = await newConversation(owner, "history");
      for (let i = 0; i < n; i++) {
        const { id, versionId } = await makeAssistant(owner, { name: `a${n}-${i}` });
        const conversationId = await newConversation(owner, `c${i}`);
        await app.ok(PIN, { c: conversationId, a: id }, owner.token);
        await app.ok(ADD, { in: { conversationId: history, role: "ASSISTANT", content: `reply ${i}`, assistantVersionId: versionId } }, admin.token);
      }
      histories.set(n, history);
    }
    await knex("api_keys").update({ lastUsedAt: knex.raw("now() + interval '1 day'") });
  });

  async function expectStatements(expected: number, operation: (n: number) => Promise<string[]>): Promise<void> {
    const counts: Record<number, number> = {};
    for (const n of [FEW, MANY]) counts[n] = (await operation(n)).length;
    expect(counts).toEqual({ [FEW]: expected, [MANY]: expected });
  }

  it("Conversation.assistant on a page of conversations: one statement for the versions and their assistants", async () => {
    const QUERY = `query($n: Int!) { conversations(first: $n) { edges { node { title assistant { version assistant { name } } } } } }`;
    // the token, the page (with its last messages), the versions with their assistants
    await expectStatements(AUTH + 2, async (n) => {
      const { data, statements } = await counter.run(QUERY, { n: n + 1 }, owners.get(n)!.token);
      const pinned = data.conversations.edges.filter((e: any) => e.node.assistant).map((e: any) => e.node.assistant.assistant.name);
      expect(pinned.sort()).toEqual(Array.from({ length: n }, (_, i) => `a${n}-${i}`).sort());
      return statements;
    });
  });

  it("Message.assistant on a history page: one statement for the versions and their assistants", async () => {
    const QUERY = `query($id: UUID!, $n: Int!) { conversation(id: $id) { messages(last: $n) { edges { node { content assistant { id version assistant { name } } } } } } }`;
    // the token, the conversation with its page (one statement), the versions with their assistants
    await expectStatements(AUTH + 2, async (n) => {
      const { data, statements } = await counter.run(QUERY, { id: histories.get(n)!, n }, owners.get(n)!.token);
      expect(data.conversation.messages.edges.map((e: any) => e.node.assistant.assistant.name)).toEqual(Array.from({ length: n }, (_, i) => `a${n}-${i}`));
      return statements;
    });
  });

  it("Assistant.versions and currentVersion on a list: one statement for all assistants' versions", async () => {
    const QUERY = `query($n: Int!) { assistants(first: $n, filter: { mine: true }) { edges { node { name currentVersion { version } versions { version } owner { id } } } } }`;
    // the token, the page, the versions, the owners
    await expectStatements(AUTH + 3, async (n) => {
      const { data, statements } = await counter.run(QUERY, { n }, owners.get(n)!.token);
      expect(data.assistants.edges.map((e: any) => e.node.currentVersion.version)).toEqual(Array.from({ length: n }, () => 1));
      return statements;
    });
  });
});

describe("the demo seed", () => {
  it("pins the trip conversation to the shared Travel helper's version 1 and attributes its assistant messages; re-runnable", async () => {
    const trip = await newConversation(alice, "trip");
    await app.ok(ADD, { in: { conversationId: trip, content: "Lisbon or Porto?" } }, alice.token);
    await app.ok(ADD, { in: { conversationId: trip, role: "ASSISTANT", content: "Lisbon." } }, worker.token);
    const knex = app.database.db.knex;
    const before = await knex("conversations").where({ id: trip }).first("updatedAt");
    for (let run = 0; run < 2; run++) await knex.transaction((trx) => seedAssistants(trx, { ada: admin.user.id, trip }));
    const { conversation } = await app.ok(
      `query($c: UUID!) { conversation(id: $c) { assistant { id version assistant { name shared currentVersionNumber } }
         messages(first: 10) { edges { node { role assistant { version } } } } } }`,
      { c: trip },
      alice.token,
    );
    expect(conversation.assistant).toEqual({ id: DEMO_ASSISTANT_IDS.travelHelperV1, version: 1, assistant: { name: "Travel helper", shared: true, currentVersionNumber: 2 } });
    expect(conversation.messages.edges.map((e: any) => [e.node.role, e.node.assistant?.version ?? null])).toEqual([["USER", null], ["ASSISTANT", 1]]);
    // Every member sees the shared assistant, and its versions pass the checks the API applies.
    const { assistant } = await app.ok(GET, { id: DEMO_ASSISTANT_IDS.travelHelper }, bob.token);
    expect(assistant.versions.map((v: any) => v.version)).toEqual([1, 2]);
    for (const version of assistant.versions) {
      const input = { name: `copy of v${version.version}`, model: version.model, systemPrompt: version.systemPrompt, parameters: version.parameters, tools: version.tools, knowledgeScope: { kind: "GLOBAL" } };
      await app.ok(CREATE, { in: input }, bob.token);
    }
    // The seed keeps the conversation's place in the inbox (its updated_at), give or take a millisecond.
    const after = await knex("conversations").where({ id: trip }).first("updatedAt");
    expect(Math.abs(after.updatedAt.getTime() - before.updatedAt.getTime())).toBeLessThan(10);
  });
});
