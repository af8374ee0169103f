/**
 * User profiles: User.activity read from the user_activity roll-up that triggers keep (messages sent,
 * conversations, feedback, first and last activity), favourite models from the monthly usage roll-ups, the
 * privacy of both, the N+1 guard of a page of users, and preferences checked against their documented shape.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";

const ACTIVITY = "activity { messagesSent conversations feedbackGiven firstActiveAt lastActiveAt favouriteModels { model requests costUsd } }";
const VIEWER = `{ viewer { id ${ACTIVITY} } }`;
const ADD = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`;
const PREFERENCES = `mutation($p: JSON!, $merge: Boolean) { updatePreferences(preferences: $p, merge: $merge) { id preferences } }`;

let app: TestApp;
let counter: StatementCounter;
let admin: TestUser;
let worker: TestUser;

beforeAll(async () => {
  // The token lookup is counted by the N+1 guard: no key cache, and no last_used_at write falling into a count.
  app = await createTestApp({ AUTH_CACHE_SECONDS: "0" });
  counter = countStatements(app);
  admin = await app.makeUser(Role.ADMIN, "admin");
  worker = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(worker, { origin: "web" });
});
afterAll(() => app.dispose());

const knex = () => app.database.db.knex;

async function activityOf(user: TestUser) {
  return (await app.ok(VIEWER, {}, user.token)).viewer.activity;
}

async function newConversation(owner: TestUser): Promise<string> {
  return (await app.ok(`mutation { createConversation(input: { title: "profile" }) { id } }`, {}, owner.token)).createConversation.id;
}

async function say(conversationId: string, user: TestUser, content = "hello", extra: Record<string, unknown> = {}): Promise<string> {
  return (await app.ok(ADD, { input: { conversationId, content, ...extra } }, user.token)).addMessage.id;
}

const createdAt = async (table: string, id: string): Promise<string> =>
  ((await knex()(table).where({ id }).first("createdAt")).createdAt as Date).toISOString();

describe("User.activity", () => {
  it("counts USER messages sent and conversations owned, with the first and last of them", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    expect(await activityOf(alice)).toEqual({ messagesSent: 0, conversations: 0, feedbackGiven: 0, firstActiveAt: null, lastActiveAt: null, favouriteModels: [] });

    const first = await newConversation(alice);
    const second = await newConversation(alice);
    await say(first, alice);
    await say(second, alice);
    // Replies of a service are not the member's messages; a message an admin writes as the member is.
    await say(first, worker, "a reply", { role: "ASSISTANT" });
    const last = await say(second, admin, "on alice's behalf", { actAs: alice.user.id });

    expect(await activityOf(alice)).toMatchObject({
      messagesSent: 3,
      conversations: 2,
      feedbackGiven: 0,
      firstActiveAt: await createdAt("conversations", first),
      lastActiveAt: await createdAt("messages", last),
    });
    // The writers themselves sent nothing as USER.
    expect(await activityOf(admin)).toMatchObject({ messagesSent: 0 });
    expect(await activityOf(worker)).toMatchObject({ messagesSent: 0, conversations: 0 });
  });

  it("lowers conversations when one is deleted; messages sent stay sent", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const kept = await newConversation(alice);
    const deleted = await newConversation(alice);
    await say(kept, alice);
    await say(deleted, alice);
    await say(deleted, alice);
    expect(await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id: deleted }, alice.token)).toEqual({ deleteConversation: true });
    expect(await activityOf(alice)).toMatchObject({ messagesSent: 3, conversations: 1 });
  });

  it("counts feedback given, less what is retracted or deleted with its conversation", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const conversations = [await newConversation(alice), await newConversation(alice)];
    const rate = async (conversationId: string) => {
      const messageId = await say(conversationId, worker, "an answer", { role: "ASSISTANT" });
      // Written as the feedback API writes it (its rules are tested with it): this checks the counting only.
      const [row] = await knex()("feedback").insert({ messageId, conversationId, userId: alice.user.id, rating: "up" }).returning(["id", "createdAt"]);
      return row as { id: string; createdAt: Date };
    };
    await rate(conversations[0]);
    const retracted = await rate(conversations[0]);
    const latest = await rate(conversations[1]);
    expect(await activityOf(alice)).toMatchObject({ feedbackGiven: 3, lastActiveAt: latest.createdAt.toISOString() });

    expect(await knex()("feedback").where({ id: retracted.id }).delete().returning("id")).toHaveLength(1);
    expect(await activityOf(alice)).toMatchObject({ feedbackGiven: 2 });
    await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id: conversations[1] }, alice.token);
    expect(await activityOf(alice)).toMatchObject({ feedbackGiven: 1, conversations: 1 });
  });

  it("ranks favourite models by requests summed over the months, then by cost", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const conversationId = await newConversation(alice);
    let n = 0;
    const record = (model: string, occurredAt: string, costUsd: number) =>
      app.ok(
        `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`,
        { input: { requestId: `fav-${alice.user.id}-${++n}`, conversationId, model, costUsd, occurredAt } },
        worker.token,
      );
    // "steady" wins on requests only once January and March are added up; "pricey" beats "cheap" on cost.
    await record("steady", "2026-01-10T00:00:00Z", 0.1);
    await record("steady", "2026-03-10T00:00:00Z", 0.1);
    await record("steady", "2026-03-11T00:00:00Z", 0.1);
    await record("busy-month", "2026-02-10T00:00:00Z", 0.01);
    await record("busy-month", "2026-02-11T00:00:00Z", 0.01);
    await record("pricey", "2026-02-12T00:00:00Z", 2);
    await record("cheap", "2026-02-13T00:00:00Z", 1);
    await record("rare", "2026-02-14T00:00:00Z", 0);

    expect((await activityOf(alice)).favouriteModels).toEqual([
      { model: "steady", requests: 3, costUsd: 0.3 },
      { model: "busy-month", requests: 2, costUsd: 0.02 },
      { model: "pricey", requests: 1, costUsd: 2 },
    ]);
    const QUERY = `query($first: Int) { viewer { activity { favouriteModels(first: $first) { model } } } }`;
    const five = await app.ok(QUERY, { first: 5 }, alice.token);
    expect(five.viewer.activity.favouriteModels.map((m: { model: string }) => m.model)).toEqual(["steady", "busy-month", "pricey", "cheap", "rare"]);
    expect(await app.errorCode(QUERY, { first: 0 }, alice.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(QUERY, { first: 51 }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("is visible to the user and admins only", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const bob = await app.makeUser(Role.MEMBER);
    const conversationId = await newConversation(alice);
    await say(conversationId, alice, "private");
    await app.ok(PREFERENCES, { p: { theme: "dark" } }, alice.token);
    const OWNER = `query($id: UUID!) { conversation(id: $id) { owner { id preferences ${ACTIVITY} } } }`;

    // A service reading the conversation (granted its origin) meets its owner, but not her profile.
    const { conversation } = await app.ok(OWNER, { id: conversationId }, worker.token);
    expect(conversation.owner).toEqual({ id: alice.user.id, preferences: null, activity: null });
    // Bob reaches neither her conversation nor the user list; his own activity is his.
    expect(await app.errorCode(OWNER, { id: conversationId }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(`{ users { edges { node { ${ACTIVITY} } } } }`, {}, bob.token)).toBe("FORBIDDEN");
    expect(await activityOf(bob)).toMatchObject({ messagesSent: 0, conversations: 0 });
    // Admins see it.
    const asAdmin = await app.ok(OWNER, { id: conversationId }, admin.token);
    expect(asAdmin.conversation.owner).toMatchObject({ preferences: { theme: "dark" }, activity: { messagesSent: 1, conversations: 1 } });
  });

  it("costs a constant number of statements for a page of users, however many (N+1 guard)", async () => {
    // Every listed user has activity and spend of their own, so that DataLoader's merging of equal keys hides nothing.
    const people = [];
    for (let i = 0; i < 50; i++) people.push(await app.makeUser(Role.MEMBER, `listed-${i}`));
    for (const [i, person] of people.entries()) {
      await knex()("conversations").insert({ ownerId: person.user.id, title: "seeded" });
      await knex()("cost_tracking").insert({ period: "month", periodStart: new Date("2026-02-01T00:00:00Z"), userId: person.user.id, model: `model-${i}`, requests: i + 1, costUsd: 1 });
    }
    await knex()("api_keys").update({ lastUsedAt: knex().raw("now() + interval '1 day'") });
    const LIST = `query($first: Int!) { users(first: $first) { edges { node { id ${ACTIVITY} } } } }`;
    const counts: number[] = [];
    for (const first of [5, 50]) {
      const { data, statements } = await counter.run(LIST, { first }, admin.token);
      expect(data.users.edges).toHaveLength(first);
      // The newest users: all of them listed here.
      for (const { node } of data.users.edges) expect(node.activity).toMatchObject({ conversations: 1, favouriteModels: [{ requests: expect.any(Number) }] });
      counts.push(statements.length);
    }
    // The token, the page (and its count), the activity rows, the favourite models.
    expect(counts).toEqual([4, 4]);
  });
});

describe("updatePreferences", () => {
  const stored = async (user: TestUser) => (await knex()("users").where({ id: user.user.id }).first("preferences")).preferences;

  it("stores the documented keys, merged by default, a null removing one, and replaces with merge: false", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const all = { theme: "system", language: "pt-br", defaultModel: "gpt-x", defaultAssistantId: "0A1B2C3D-0000-4000-8000-000000000000", timeZone: "Europe/Lisbon" };
    const { updatePreferences } = await app.ok(PREFERENCES, { p: all }, alice.token);
    // Canonical forms: the language tag's case, the UUID in lower case.
    const canonical = { ...all, language: "pt-BR", defaultAssistantId: "0a1b2c3d-0000-4000-8000-000000000000" };
    expect(updatePreferences).toEqual({ id: alice.user.id, preferences: canonical });
    expect(await stored(alice)).toEqual(canonical);

    await app.ok(PREFERENCES, { p: { theme: "light", defaultModel: null } }, alice.token);
    const { defaultModel: _removed, ...merged } = { ...canonical, theme: "light" };
    expect(await stored(alice)).toEqual(merged);
    expect((await app.ok(`{ viewer { preferences } }`, {}, alice.token)).viewer.preferences).toEqual(merged);

    await app.ok(PREFERENCES, { p: { language: "en" }, merge: false }, alice.token);
    expect(await stored(alice)).toEqual({ language: "en" });
  });

  it.each([
    ["an unknown key", { theme: "dark", colour: "red" }, "preferences.colour"],
    ["a theme outside the list", { theme: "DARK" }, "preferences.theme"],
    ["a language that is no BCP 47 tag", { language: "english please" }, "preferences.language"],
    ["a language of the wrong type", { language: 7 }, "preferences.language"],
    ["an empty model name", { defaultModel: "  " }, "preferences.defaultModel"],
    ["a model name over 200 characters", { defaultModel: "m".repeat(201) }, "preferences.defaultModel"],
    ["an assistant id that is no UUID", { defaultAssistantId: "assistant-1" }, "preferences.defaultAssistantId"],
    ["an unknown time zone", { timeZone: "Mars/Olympus_Mons" }, "preferences.timeZone"],
    ["a list instead of an object", ["theme"], "preferences"],
  ])("refuses %s with BAD_USER_INPUT naming it, storing nothing", async (_case, preferences, field) => {
    const alice = await app.makeUser(Role.MEMBER);
    await app.ok(PREFERENCES, { p: { theme: "dark", timeZone: "UTC" } }, alice.token);
    const { body } = await app.gql(PREFERENCES, { p: preferences }, alice.token);
    expect(body.errors?.map((error) => [error.extensions?.code, error.extensions?.field])).toEqual([["BAD_USER_INPUT", field]]);
    expect(body.errors?.[0].message).toContain(field);
    expect(await stored(alice)).toEqual({ theme: "dark", timeZone: "UTC" });
  });

  it("changes only the viewer's own preferences", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const bob = await app.makeUser(Role.MEMBER);
    await app.ok(PREFERENCES, { p: { theme: "dark" } }, alice.token);
    const { updatePreferences } = await app.ok(PREFERENCES, { p: { theme: "light" } }, bob.token);
    expect(updatePreferences.id).toBe(bob.user.id);
    expect(await stored(alice)).toEqual({ theme: "dark" });
    expect(await app.errorCode(PREFERENCES, { p: { theme: "light" } })).toBe("UNAUTHENTICATED");
  });
});
