/**
 * The viewer, bearer-token authentication (API keys: revoked, deactivated, malformed) and the privacy of
 * User fields that identify someone outside Parley.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { createTestApp, type GqlResponse, type GraphQLBody, type TestApp, type TestUser } from "../helpers/server";

const VIEWER = `{ viewer { id displayName role isActive email externalId discordId preferences } }`;
const PRIVATE = "id displayName role email externalId discordId preferences";
const CONVERSATION = `query($id: UUID!) {
  conversation(id: $id) {
    owner { ${PRIVATE} }
    messages(first: 10) { edges { node { seq author { ${PRIVATE} } } } }
  }
}`;
const CREATE = `mutation { createConversation(input: { title: "privacy" }) { id } }`;
const ADD = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq author { id } } }`;

let app: TestApp;
let alice: TestUser;
let bob: TestUser;
let bot: TestUser;
let admin: TestUser;

interface PrivateFields {
  email: string;
  externalId: string;
  discordId: string;
  preferences: Record<string, unknown>;
}

/** Gives a user distinct private fields (the API has no mutation for them yet). */
async function setPrivateFields(user: TestUser): Promise<PrivateFields> {
  const fields = {
    email: `${user.user.id}@example.com`,
    externalId: `sub|${user.user.id}`,
    discordId: `discord-${user.user.id}`,
    preferences: { theme: "dark", language: "fr", notify: { email: false } },
  };
  await app.database.db.knex("users").where({ id: user.user.id }).update({ ...fields, preferences: JSON.stringify(fields.preferences) });
  return fields;
}

const HIDDEN = { email: null, externalId: null, discordId: null, preferences: null };

/** POST /graphql with a raw Authorization header (or none). */
async function withAuthorization(authorization: string | undefined, query = VIEWER): Promise<GqlResponse> {
  const response = await fetch(`${app.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization !== undefined ? { authorization } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLBody };
}

function expectUnauthenticated({ status, body }: GqlResponse): void {
  expect(status).toBe(401);
  expect(body.errors?.map((error) => error.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
  expect(body.data ?? null).toBeNull();
}

beforeAll(async () => {
  // Keys are revoked and users deactivated here by hand in SQL, which no notification announces: without the
  // key cache every request reads them (the cache's own rules are in auth-cache.test.ts).
  app = await createTestApp({ AUTH_CACHE_SECONDS: "0" });
  alice = await app.makeUser(Role.MEMBER, "Alice");
  bob = await app.makeUser(Role.MEMBER, "Bob");
  bot = await app.makeUser(Role.SERVICE, "Bot");
  await app.grant(bot, { origin: "web" });
  admin = await app.makeUser(Role.ADMIN, "Admin");
});
afterAll(() => app.dispose());

describe("viewer", () => {
  it.each([
    ["member", () => alice, "MEMBER", "Alice"],
    ["service", () => bot, "SERVICE", "Bot"],
    ["admin", () => admin, "ADMIN", "Admin"],
  ] as const)("returns the %s the token belongs to, with its role", async (_kind, who, role, displayName) => {
    const { viewer } = await app.ok(VIEWER, {}, who().token);
    expect(viewer).toMatchObject({ id: who().user.id, displayName, role, isActive: true });
  });

  it("tells two keys of different users apart", async () => {
    const a = await app.ok(VIEWER, {}, alice.token);
    const b = await app.ok(VIEWER, {}, bob.token);
    expect(a.viewer.id).toBe(alice.user.id);
    expect(b.viewer.id).toBe(bob.user.id);
  });

  it("accepts a second key of the same user", async () => {
    const { secret } = await createApiKey(app.database.db.knex, alice.user.id, "second");
    expect((await app.ok(VIEWER, {}, secret)).viewer.id).toBe(alice.user.id);
  });
});

describe("private user fields", () => {
  let aliceFields: PrivateFields;
  let bobFields: PrivateFields;
  let botFields: PrivateFields;
  let conversationId: string;

  beforeAll(async () => {
    aliceFields = await setPrivateFields(alice);
    bobFields = await setPrivateFields(bob);
    botFields = await setPrivateFields(bot);
    // Alice's conversation: her own message, an assistant reply by the bot, and a message by Bob (as a
    // shared Discord channel would have; written directly, since members write only their own conversations).
    conversationId = (await app.ok(CREATE, {}, alice.token)).createConversation.id;
    await app.ok(ADD, { input: { conversationId, content: "hello" } }, alice.token);
    await app.ok(ADD, { input: { conversationId, role: "ASSISTANT", content: "hi there" } }, bot.token);
    const knex = app.database.db.knex;
    await knex.transaction(async (trx) => {
      const [{ lastSeq }] = await trx("conversations")
        .where({ id: conversationId })
        .update({ lastSeq: knex.raw("last_seq + 1"), messageCount: knex.raw("message_count + 1") }, ["lastSeq"]);
      await trx("messages").insert({ conversationId, seq: lastSeq, authorId: bob.user.id, role: "user", content: "from bob" });
    });
  });

  const authors = (data: Record<string, any>) =>
    Object.fromEntries(
      (data.conversation.messages.edges as { node: { seq: number; author: Record<string, unknown> } }[]).map(({ node }) => [
        node.seq,
        node.author,
      ]),
    );

  it("shows the user their own private fields", async () => {
    const { viewer } = await app.ok(VIEWER, {}, alice.token);
    expect(viewer).toMatchObject(aliceFields);
  });

  it("shows the private fields of every author and owner to an admin", async () => {
    const data = await app.ok(CONVERSATION, { id: conversationId }, admin.token);
    expect(data.conversation.owner).toMatchObject({ id: alice.user.id, ...aliceFields });
    const bySeq = authors(data);
    expect(bySeq[1]).toMatchObject({ id: alice.user.id, ...aliceFields });
    expect(bySeq[2]).toMatchObject({ id: bot.user.id, ...botFields });
    expect(bySeq[3]).toMatchObject({ id: bob.user.id, ...bobFields });
  });

  it("hides other authors' private fields from a member, but not the member's own", async () => {
    const data = await app.ok(CONVERSATION, { id: conversationId }, alice.token);
    expect(data.conversation.owner).toMatchObject({ id: alice.user.id, ...aliceFields });
    const bySeq = authors(data);
    expect(bySeq[1]).toMatchObject({ id: alice.user.id, ...aliceFields });
    // Public fields stay visible; the private ones are null.
    expect(bySeq[2]).toEqual({ id: bot.user.id, displayName: "Bot", role: "SERVICE", ...HIDDEN });
    expect(bySeq[3]).toEqual({ id: bob.user.id, displayName: "Bob", role: "MEMBER", ...HIDDEN });
  });

  it("hides a member's private fields from a service that reads the conversation", async () => {
    const data = await app.ok(CONVERSATION, { id: conversationId }, bot.token);
    expect(data.conversation.owner).toEqual({ id: alice.user.id, displayName: "Alice", role: "MEMBER", ...HIDDEN });
    const bySeq = authors(data);
    expect(bySeq[1]).toMatchObject(HIDDEN);
    expect(bySeq[2]).toMatchObject({ id: bot.user.id, ...botFields });
  });

  it("does not let another member read the conversation at all", async () => {
    expect(await app.errorCode(CONVERSATION, { id: conversationId }, bob.token)).toBe("NOT_FOUND");
  });
});

describe("authentication", () => {
  it("refuses a revoked key with 401 UNAUTHENTICATED, while the user's other keys still work", async () => {
    const user = await app.makeUser(Role.MEMBER);
    const { key, secret } = await createApiKey(app.database.db.knex, user.user.id, "to revoke");
    expect((await app.ok(VIEWER, {}, secret)).viewer.id).toBe(user.user.id);

    await app.database.db.knex("api_keys").where({ id: key.id }).update({ revokedAt: new Date() });

    expectUnauthenticated(await app.gql(VIEWER, {}, secret));
    expect((await app.ok(VIEWER, {}, user.token)).viewer.id).toBe(user.user.id);
  });

  it("refuses every key of a deactivated user with 401 UNAUTHENTICATED, and accepts them again on reactivation", async () => {
    const user = await app.makeUser(Role.SERVICE);
    expect((await app.ok(VIEWER, {}, user.token)).viewer.id).toBe(user.user.id);

    await app.database.db.knex("users").where({ id: user.user.id }).update({ isActive: false });
    expectUnauthenticated(await app.gql(VIEWER, {}, user.token));

    await app.database.db.knex("users").where({ id: user.user.id }).update({ isActive: true });
    expect((await app.ok(VIEWER, {}, user.token)).viewer.id).toBe(user.user.id);
  });

  it("refuses a token whose user was deleted", async () => {
    const user = await app.makeUser(Role.MEMBER);
    await app.database.db.knex("users").where({ id: user.user.id }).delete();
    expectUnauthenticated(await app.gql(VIEWER, {}, user.token));
  });

  it.each([
    ["a garbage token", () => "Bearer garbage"],
    ["a well-formed but unknown key", () => `Bearer pk_${"A".repeat(43)}`],
    ["a key with one character changed", () => `Bearer ${alice.token.slice(0, -1)}${alice.token.endsWith("A") ? "B" : "A"}`],
    ["a key without the Bearer scheme", () => alice.token],
    ["another scheme", () => `Basic ${alice.token}`],
    ["Bearer with nothing after it", () => "Bearer "],
    ["Bearer with two tokens", () => `Bearer ${alice.token} ${alice.token}`],
    ["a very long token", () => `Bearer ${"x".repeat(5000)}`],
  ])("refuses %s with 401 UNAUTHENTICATED", async (_name, header) => {
    expectUnauthenticated(await withAuthorization(header()));
  });

  it("refuses an operation without any Authorization header with 401 UNAUTHENTICATED", async () => {
    expectUnauthenticated(await withAuthorization(undefined));
  });

  it("accepts the Bearer scheme case-insensitively (RFC 7235)", async () => {
    const { status, body } = await withAuthorization(`bearer ${alice.token}`);
    expect(status).toBe(200);
    expect(body.data?.viewer.id).toBe(alice.user.id);
  });

  it("records when an API key was last used", async () => {
    const user = await app.makeUser(Role.MEMBER);
    const { key, secret } = await createApiKey(app.database.db.knex, user.user.id, "tracked");
    const lastUsed = () => app.database.db.knex("api_keys").where({ id: key.id }).first("lastUsedAt");
    expect(await lastUsed()).toEqual({ lastUsedAt: null });

    await app.ok(VIEWER, {}, secret);

    // The bookkeeping write is not awaited by the request: wait for it (bounded), without timing assertions.
    let row = await lastUsed();
    for (let attempt = 0; attempt < 100 && row.lastUsedAt === null; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      row = await lastUsed();
    }
    expect(row.lastUsedAt).toBeInstanceOf(Date);
    // Only the key that was used is marked.
    const [{ lastUsedAt: other }] = await app.database.db.knex("api_keys").where({ userId: user.user.id }).whereNot({ id: key.id }).select("lastUsedAt");
    expect(other).toBeNull();
  });

  it("writes a key's last use made just before shutdown as the server stops, instead of losing it", async () => {
    const second = await createTestApp({ AUTH_CACHE_SECONDS: "0" }, app.database); // another server, same database
    const user = await app.makeUser(Role.MEMBER);
    const { key, secret } = await createApiKey(app.database.db.knex, user.user.id, "at shutdown");
    await second.ok(VIEWER, {}, secret);
    await second.dispose(); // the write is batched for a moment; stopping writes it before answering
    expect((await app.database.db.knex("api_keys").where({ id: key.id }).first("lastUsedAt")).lastUsedAt).toBeInstanceOf(Date);
  });
});
