/**
 * The access surface: API keys, user administration, Discord users, service grants, acting for users
 * (createConversation ownerId, addMessage actAs), the audit log and system configs — all over real HTTP.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type GqlResponse, type GraphQLBody, type TestApp, type TestUser } from "../helpers/server";

const VIEWER = `{ viewer { id role } }`;
const CREATE_KEY = `mutation($name: String!, $role: Role, $userId: UUID) {
  createApiKey(name: $name, role: $role, userId: $userId) { id name prefix key userId role revokedAt }
}`;
const REVOKE_KEY = `mutation($id: UUID!) { revokeApiKey(id: $id) { id userId revokedAt } }`;
const API_KEYS = `query($userId: UUID) { apiKeys(userId: $userId) { id name prefix userId role revokedAt } }`;
const USERS = `query($first: Int, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    totalCount edges { node { id role isActive displayName } } pageInfo { hasNextPage endCursor }
  }
}`;
const CREATE_USER = `mutation($input: CreateUserInput!) { createUser(input: $input) { id displayName role email externalId isActive } }`;
const SET_ROLE = `mutation($id: UUID!, $role: Role!) { setUserRole(id: $id, role: $role) { id role } }`;
const DEACTIVATE = `mutation($id: UUID!) { deactivateUser(id: $id) { id isActive } }`;
const REACTIVATE = `mutation($id: UUID!) { reactivateUser(id: $id) { id isActive } }`;
const UPSERT_DISCORD = `mutation($discordId: String!, $name: String!) {
  upsertDiscordUser(input: { discordId: $discordId, displayName: $name }) { id displayName role }
}`;
const GRANT = `mutation($input: GrantServiceInput!) { grantService(input: $input) { id serviceId origin conversationId } }`;
const REVOKE_GRANT = `mutation($id: UUID!) { revokeServiceGrant(id: $id) }`;
const GRANTS = `query($serviceId: UUID) { serviceGrants(serviceId: $serviceId) { id serviceId origin conversationId } }`;
const CREATE_CONVERSATION = `mutation($input: CreateConversationInput!) {
  createConversation(input: $input) { id title origin status discordGuildId discordChannelId owner { id } }
}`;
const READ_CONVERSATION = `query($id: UUID!) { conversation(id: $id) { id messageCount owner { id } } }`;
const ARCHIVE = `mutation($id: UUID!) { archiveConversation(id: $id) { id status } }`;
const DELETE = `mutation($id: UUID!) { deleteConversation(id: $id) }`;
const ADD_MESSAGE = `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq role content author { id } sentBy { id } } }`;
const AUDIT_LOGS = `query($first: Int, $after: String, $filter: AuditLogFilter) {
  auditLogs(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { id actorId actor { id } action targetType targetId details ip requestId createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const SET_CONFIG = `mutation($key: String!, $value: JSON!, $description: String) {
  setSystemConfig(key: $key, value: $value, description: $description) { key value description updatedBy createdAt updatedAt }
}`;
const CONFIG = `query($key: String!) { systemConfig(key: $key) { key value description updatedBy createdAt } }`;
const CONFIGS = `{ systemConfigs { key value } }`;

const LOOPBACK = ["127.0.0.1", "::ffff:127.0.0.1"];
const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";

let app: TestApp;
let admin: TestUser;
let counter = 0;
const unique = (label: string) => `${label}-${++counter}`;
/** A Discord snowflake no other test uses. */
const snowflake = () => String(900_000_000_000_000_000n + BigInt(++counter));

/** POST /graphql with an optional bearer token and x-request-id. */
async function call(query: string, variables: Record<string, unknown>, token: string, requestId?: string): Promise<GqlResponse> {
  const response = await fetch(`${app.url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
      ...(requestId ? { "x-request-id": requestId } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLBody };
}

function expectUnauthenticated({ status, body }: GqlResponse): void {
  expect(status).toBe(401);
  expect(body.errors?.map((e) => e.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
}

const viewerOf = async (token: string) => (await app.ok(VIEWER, {}, token)).viewer as { id: string; role: string };
const keyRow = (id: string) => app.database.db.knex("api_keys").where({ id }).first();
const newKey = async (token: string, vars: Record<string, unknown> = {}) =>
  (await app.ok(CREATE_KEY, { name: unique("key"), ...vars }, token)).createApiKey as { id: string; key: string; prefix: string; role: string | null; userId: string };
const conversationOf = async (token: string, input: Record<string, unknown> = {}) =>
  (await app.ok(CREATE_CONVERSATION, { input: { title: unique("conversation"), ...input } }, token)).createConversation as { id: string };

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "Root Admin");
});
afterAll(() => app.dispose());

describe("API keys", () => {
  it("createApiKey shows the secret once; the key works; apiKeys lists it without any secret", async () => {
    const alice = await app.makeUser(Role.MEMBER);
    const { createApiKey: created } = await app.ok(CREATE_KEY, { name: "laptop" }, alice.token);
    expect(created).toEqual({
      id: expect.any(String),
      name: "laptop",
      prefix: expect.any(String),
      key: expect.stringMatching(/^pk_[A-Za-z0-9_-]{43}$/),
      userId: alice.user.id,
      role: null,
      revokedAt: null,
    });
    expect(created.prefix).toHaveLength(11);
    expect(created.key.startsWith(created.prefix)).toBe(true);
    expect(await viewerOf(created.key)).toEqual({ id: alice.user.id, role: "MEMBER" });

    const listed = await app.gql(API_KEYS, {}, alice.token);
    expect(listed.body.errors).toBeUndefined();
    expect(listed.body.data?.apiKeys).toContainEqual({ id: created.id, name: "laptop", prefix: created.prefix, userId: alice.user.id, role: null, revokedAt: null });
    expect(JSON.stringify(listed.body)).not.toContain(created.key.slice(created.prefix.length));

    // The type has no field that could carry the secret, and the database keeps only a hash.
    const { __type } = await app.ok(`{ __type(name: "ApiKey") { fields { name } } }`, {}, alice.token);
    expect(__type.fields.map((f: { name: string }) => f.name).sort()).toEqual(
      ["createdAt", "id", "lastUsedAt", "name", "prefix", "revokedAt", "role", "updatedAt", "userId"],
    );
    const asked = await app.gql(`{ apiKeys { id key } }`, {}, alice.token);
    expect(asked.body.errors?.[0].extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const row = await keyRow(created.id);
    expect(JSON.stringify(row)).not.toContain(created.key.slice(created.prefix.length));
    expect(row.keyHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("revokeApiKey stops the key at once, is idempotent, and leaves the user's other keys working", async () => {
    const user = await app.makeUser(Role.SERVICE);
    const key = await newKey(user.token);
    expect((await viewerOf(key.key)).id).toBe(user.user.id);

    const { revokeApiKey: revoked } = await app.ok(REVOKE_KEY, { id: key.id }, user.token);
    expect(revoked).toEqual({ id: key.id, userId: user.user.id, revokedAt: expect.any(String) });
    expectUnauthenticated(await app.gql(VIEWER, {}, key.key));

    const { revokeApiKey: again } = await app.ok(REVOKE_KEY, { id: key.id }, user.token);
    expect(again.revokedAt).toBe(revoked.revokedAt);
    expectUnauthenticated(await app.gql(VIEWER, {}, key.key));
    expect((await viewerOf(user.token)).id).toBe(user.user.id);
  });

  it("a member revoking another user's key (or an unknown one) gets NOT_FOUND, and the key keeps working", async () => {
    const [owner, outsider] = [await app.makeUser(Role.MEMBER), await app.makeUser(Role.MEMBER)];
    const key = await newKey(owner.token);
    expect(await app.errorCode(REVOKE_KEY, { id: key.id }, outsider.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(REVOKE_KEY, { id: UNKNOWN_ID }, outsider.token)).toBe("NOT_FOUND");
    expect((await keyRow(key.id)).revokedAt).toBeNull();
    expect((await viewerOf(key.key)).id).toBe(owner.user.id);
  });

  it("an admin creates keys for another user and revokes anyone's", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const key = await newKey(admin.token, { userId: member.user.id });
    expect(key).toMatchObject({ userId: member.user.id, role: null });
    expect(await viewerOf(key.key)).toEqual({ id: member.user.id, role: "MEMBER" });
    const { apiKeys } = await app.ok(API_KEYS, { userId: member.user.id }, admin.token);
    expect(apiKeys.map((k: { id: string }) => k.id)).toContain(key.id);
    // The member sees it among their own keys too.
    expect((await app.ok(API_KEYS, {}, member.token)).apiKeys.map((k: { id: string }) => k.id)).toContain(key.id);

    const own = await newKey(member.token);
    const { revokeApiKey } = await app.ok(REVOKE_KEY, { id: own.id }, admin.token);
    expect(revokeApiKey.revokedAt).not.toBeNull();
    expectUnauthenticated(await app.gql(VIEWER, {}, own.key));
    expect((await viewerOf(key.key)).id).toBe(member.user.id);
  });

  it("an admin's key limited to MEMBER acts as a member", async () => {
    const limited = await newKey(admin.token, { role: "MEMBER" });
    expect(limited.role).toBe("MEMBER");
    expect(await viewerOf(limited.key)).toEqual({ id: admin.user.id, role: "MEMBER" });
    expect(await app.errorCode(USERS, {}, limited.key)).toBe("FORBIDDEN");
    expect(await app.errorCode(`{ auditLogs { totalCount } }`, {}, limited.key)).toBe("FORBIDDEN");
    const other = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(API_KEYS, { userId: other.user.id }, limited.key)).toBe("FORBIDDEN");
    // The admin's full key is unaffected.
    expect((await viewerOf(admin.token)).role).toBe("ADMIN");
  });

  it("a service key limited to MEMBER cannot write assistant messages", async () => {
    const service = await app.makeUser(Role.SERVICE);
    const limited = await newKey(service.token, { role: "MEMBER" });
    expect(await viewerOf(limited.key)).toEqual({ id: service.user.id, role: "MEMBER" });
    const { id } = await conversationOf(service.token);
    const write = { input: { conversationId: id, role: "ASSISTANT", content: "hi" } };
    expect(await app.errorCode(ADD_MESSAGE, write, limited.key)).toBe("FORBIDDEN");
    expect((await app.ok(ADD_MESSAGE, write, service.token)).addMessage.role).toBe("ASSISTANT");
  });

  it.each(["ADMIN", "SERVICE"])("a member asking for a %s key is FORBIDDEN and gets no key", async (role) => {
    const member = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(CREATE_KEY, { name: "raise me", role }, member.token)).toBe("FORBIDDEN");
    expect(await app.database.db.knex("api_keys").where({ userId: member.user.id }).whereNot({ name: "test" }).select("id")).toEqual([]);
  });

  it("an admin cannot give another user's key a role above that user's", async () => {
    const member = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(CREATE_KEY, { name: "x", role: "ADMIN", userId: member.user.id }, admin.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(CREATE_KEY, { name: "x", role: "SERVICE", userId: member.user.id }, admin.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(CREATE_KEY, { name: "x", userId: UNKNOWN_ID }, admin.token)).toBe("NOT_FOUND");
  });

  it("a member cannot create keys for another user", async () => {
    const [member, other] = [await app.makeUser(Role.MEMBER), await app.makeUser(Role.MEMBER)];
    expect(await app.errorCode(CREATE_KEY, { name: "x", userId: other.user.id }, member.token)).toBe("FORBIDDEN");
  });

  it("a key made with a member-limited admin key cannot be raised: the ceiling is the acting role", async () => {
    const limited = await newKey(admin.token, { role: "MEMBER" });
    expect(await app.errorCode(CREATE_KEY, { name: "raise", role: "ADMIN" }, limited.key)).toBe("FORBIDDEN");
    expect(await app.errorCode(CREATE_KEY, { name: "raise", role: "SERVICE" }, limited.key)).toBe("FORBIDDEN");
    const other = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(CREATE_KEY, { name: "for other", userId: other.user.id }, limited.key)).toBe("FORBIDDEN");

    // Without a role, the new key inherits the acting role, not the user's.
    const child = await newKey(limited.key);
    expect(child.role).toBe("MEMBER");
    expect(await viewerOf(child.key)).toEqual({ id: admin.user.id, role: "MEMBER" });
  });

  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["101 characters", "k".repeat(101)],
  ])("refuses a %s name with BAD_USER_INPUT", async (_case, name) => {
    const member = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(CREATE_KEY, { name }, member.token)).toBe("BAD_USER_INPUT");
    expect((await app.ok(CREATE_KEY, { name: "k".repeat(100) }, member.token)).createApiKey.name).toHaveLength(100);
  });
});

describe("user administration", () => {
  it("users pages through everyone and filters by role and isActive", async () => {
    const services = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.SERVICE)];
    const inactive = await app.makeUser(Role.MEMBER);
    await app.ok(DEACTIVATE, { id: inactive.user.id }, admin.token);

    const all = async (filter?: Record<string, unknown>) => {
      const nodes: { id: string; role: string; isActive: boolean }[] = [];
      let after: string | undefined;
      let totalCount = -1;
      for (let page = 0; page < 100; page++) {
        const { users } = await app.ok(USERS, { first: 3, after, filter }, admin.token);
        totalCount = users.totalCount;
        nodes.push(...users.edges.map((e: { node: { id: string; role: string; isActive: boolean } }) => e.node));
        if (!users.pageInfo.hasNextPage) break;
        after = users.pageInfo.endCursor;
      }
      expect(new Set(nodes.map((n) => n.id)).size).toBe(nodes.length);
      expect(nodes).toHaveLength(totalCount);
      return nodes;
    };
    const knex = app.database.db.knex;
    const everyone = await all();
    expect(everyone.map((n) => n.id).sort()).toEqual((await knex("users").pluck("id")).sort());

    const serviceNodes = await all({ role: "SERVICE" });
    expect(serviceNodes.every((n) => n.role === "SERVICE")).toBe(true);
    expect(serviceNodes.map((n) => n.id)).toEqual(expect.arrayContaining(services.map((s) => s.user.id)));
    expect(serviceNodes).toHaveLength(Number((await knex("users").where({ role: "service" }).count({ n: "*" }))[0].n));

    const inactiveNodes = await all({ isActive: false });
    expect(inactiveNodes.every((n) => !n.isActive)).toBe(true);
    expect(inactiveNodes.map((n) => n.id)).toContain(inactive.user.id);
    const activeMembers = await all({ role: "MEMBER", isActive: true });
    expect(activeMembers.every((n) => n.role === "MEMBER" && n.isActive)).toBe(true);
    expect(activeMembers.map((n) => n.id)).not.toContain(inactive.user.id);
  });

  it("users finds people by part of the name or email, in any case, with % and _ matched as themselves", async () => {
    const tag = unique("Zq");
    const make = async (displayName: string, email: string | null, role = "MEMBER") =>
      (await app.ok(CREATE_USER, { input: { displayName, email, role } }, admin.token)).createUser.id as string;
    const byName = await make(`Ada ${tag} Lovelace`, null);
    const byEmail = await make("Grace", `${tag.toLowerCase()}.grace@example.com`);
    const service = await make(`${tag} bot`, null, "SERVICE");
    const percent = await make(`${tag} 100% sure`, null);
    const underscore = await make(`${tag}_under`, null);
    const found = async (search: string, filter: Record<string, unknown> = {}) => {
      const { users } = await app.ok(USERS, { first: 50, filter: { ...filter, search } }, admin.token);
      expect(users.edges).toHaveLength(users.totalCount);
      return users.edges.map((edge: { node: { id: string } }) => edge.node.id).sort();
    };
    expect(await found(tag.toUpperCase())).toEqual([byName, byEmail, service, percent, underscore].sort());
    expect(await found(`  ${tag} LOVE `)).toEqual([byName]);
    expect(await found(tag, { role: "SERVICE" })).toEqual([service]);
    // Wildcards typed into a search box are text: "%" finds the one name with a percent sign, "_" the underscore.
    expect(await found(`${tag} 100%`)).toEqual([percent]);
    expect(await found("100% s")).toEqual([percent]);
    expect(await found(`${tag}_`)).toEqual([underscore]);
    expect(await found(`${tag}%`)).toEqual([]);
    // Blank after trimming: no search. Empty or over 200 characters: refused.
    expect((await app.ok(USERS, { first: 1, filter: { search: "   " } }, admin.token)).users.totalCount).toBe(Number((await app.database.db.knex("users").count({ n: "*" }))[0].n));
    expect(await app.errorCode(USERS, { filter: { search: "" } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(USERS, { filter: { search: "x".repeat(201) } }, admin.token)).toBe("BAD_USER_INPUT");
    // Searching is listing: nobody but an admin may probe names or emails with it.
    for (const role of [Role.MEMBER, Role.SERVICE]) {
      const other = await app.makeUser(role);
      expect(await app.errorCode(USERS, { filter: { search: tag } }, other.token)).toBe("FORBIDDEN");
    }
  });

  it("createUser creates a user who can be given a key", async () => {
    const email = `${unique("new")}@example.com`;
    const { createUser } = await app.ok(CREATE_USER, { input: { displayName: "New Service", role: "SERVICE", email, externalId: unique("ext") } }, admin.token);
    expect(createUser).toMatchObject({ displayName: "New Service", role: "SERVICE", email, isActive: true });
    const key = await newKey(admin.token, { userId: createUser.id });
    expect(await viewerOf(key.key)).toEqual({ id: createUser.id, role: "SERVICE" });

    const defaults = (await app.ok(CREATE_USER, { input: { displayName: "Plain" } }, admin.token)).createUser;
    expect(defaults).toMatchObject({ role: "MEMBER", email: null, externalId: null });

    expect(await app.errorCode(CREATE_USER, { input: { displayName: "Copy", email: email.toUpperCase() } }, admin.token)).toBe("CONFLICT");
    expect(await app.errorCode(CREATE_USER, { input: { displayName: "" } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(CREATE_USER, { input: { displayName: "Bad Mail", email: "not-an-email" } }, admin.token)).toBe("BAD_USER_INPUT");
  });

  it("setUserRole takes effect on the user's existing keys at once", async () => {
    const user = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(`{ metrics { totalCount } }`, {}, user.token)).toBe("FORBIDDEN");
    expect((await app.ok(SET_ROLE, { id: user.user.id, role: "SERVICE" }, admin.token)).setUserRole).toEqual({ id: user.user.id, role: "SERVICE" });
    expect((await viewerOf(user.token)).role).toBe("SERVICE");
    expect((await app.ok(`{ metrics { totalCount } }`, {}, user.token)).metrics.totalCount).toBe(0);
    await app.ok(SET_ROLE, { id: user.user.id, role: "MEMBER" }, admin.token);
    expect((await viewerOf(user.token)).role).toBe("MEMBER");
  });

  it("deactivateUser stops all of the user's keys at once; reactivateUser restores them", async () => {
    const user = await app.makeUser(Role.MEMBER);
    const second = await newKey(user.token);
    expect((await app.ok(DEACTIVATE, { id: user.user.id }, admin.token)).deactivateUser).toEqual({ id: user.user.id, isActive: false });
    expectUnauthenticated(await app.gql(VIEWER, {}, user.token));
    expectUnauthenticated(await app.gql(VIEWER, {}, second.key));

    expect((await app.ok(REACTIVATE, { id: user.user.id }, admin.token)).reactivateUser).toEqual({ id: user.user.id, isActive: true });
    expect((await viewerOf(user.token)).id).toBe(user.user.id);
    expect((await viewerOf(second.key)).id).toBe(user.user.id);
  });

  it("an admin cannot change their own role or deactivate themselves", async () => {
    expect(await app.errorCode(SET_ROLE, { id: admin.user.id, role: "MEMBER" }, admin.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DEACTIVATE, { id: admin.user.id }, admin.token)).toBe("FORBIDDEN");
    expect(await app.database.db.knex("users").where({ id: admin.user.id }).first("role", "isActive")).toEqual({ role: "admin", isActive: true });
    expect((await viewerOf(admin.token)).role).toBe("ADMIN");
  });

  it.each([
    ["setUserRole", SET_ROLE, { role: "SERVICE" }],
    ["deactivateUser", DEACTIVATE, {}],
    ["reactivateUser", REACTIVATE, {}],
  ])("%s of an unknown id is NOT_FOUND", async (_name, mutation, extra) => {
    expect(await app.errorCode(mutation, { id: UNKNOWN_ID, ...extra }, admin.token)).toBe("NOT_FOUND");
  });
});

describe("upsertDiscordUser", () => {
  let adapter: TestUser; // a service with the DISCORD origin grant

  beforeAll(async () => {
    adapter = await app.makeUser(Role.SERVICE, "discord adapter");
    await app.grant(adapter, { origin: "discord" });
  });

  const usersWithDiscordId = (discordId: string) => app.database.db.knex("users").where({ discordId }).select("id", "displayName", "role");

  it("creates a member with the Discord id, then renames the same user", async () => {
    const discordId = snowflake();
    const { upsertDiscordUser: created } = await app.ok(UPSERT_DISCORD, { discordId, name: "wumpus" }, adapter.token);
    expect(created).toEqual({ id: expect.any(String), displayName: "wumpus", role: "MEMBER" });
    const { upsertDiscordUser: renamed } = await app.ok(UPSERT_DISCORD, { discordId, name: "wumpus the second" }, adapter.token);
    expect(renamed).toEqual({ id: created.id, displayName: "wumpus the second", role: "MEMBER" });
    expect(await usersWithDiscordId(discordId)).toEqual([{ id: created.id, displayName: "wumpus the second", role: "member" }]);
  });

  it("lets an admin upsert too", async () => {
    const discordId = snowflake();
    const { upsertDiscordUser } = await app.ok(UPSERT_DISCORD, { discordId, name: "by admin" }, admin.token);
    expect(await usersWithDiscordId(discordId)).toEqual([{ id: upsertDiscordUser.id, displayName: "by admin", role: "member" }]);
  });

  it.each([["letters", "abc"], ["empty", ""], ["mixed", "123abc"], ["too long", "1".repeat(26)], ["negative", "-5"]])(
    "refuses a %s discordId with BAD_USER_INPUT",
    async (_case, discordId) => {
      expect(await app.errorCode(UPSERT_DISCORD, { discordId, name: "x" }, adapter.token)).toBe("BAD_USER_INPUT");
      expect(await usersWithDiscordId(discordId)).toEqual([]);
    },
  );

  it.each<[string, () => Promise<TestUser>]>([
    ["a service without grants", () => app.makeUser(Role.SERVICE)],
    ["a service granted the WEB origin", async () => {
      const service = await app.makeUser(Role.SERVICE);
      await app.grant(service, { origin: "web" });
      return service;
    }],
    ["a service granted one Discord conversation", async () => {
      const service = await app.makeUser(Role.SERVICE);
      const { id } = await conversationOf(adapter.token, { origin: "DISCORD" });
      await app.grant(service, { conversationId: id });
      return service;
    }],
    ["a member", () => app.makeUser(Role.MEMBER)],
  ])("is FORBIDDEN for %s", async (_case, who) => {
    const discordId = snowflake();
    expect(await app.errorCode(UPSERT_DISCORD, { discordId, name: "x" }, (await who()).token)).toBe("FORBIDDEN");
    expect(await usersWithDiscordId(discordId)).toEqual([]);
  });
});

describe("service grants", () => {
  it("grant one conversation, or every conversation of an origin (present and future)", async () => {
    const [service, alice] = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.MEMBER)];
    const single = await conversationOf(alice.token);
    const other = await conversationOf(alice.token);
    expect(await app.errorCode(READ_CONVERSATION, { id: single.id }, service.token)).toBe("NOT_FOUND");

    const { grantService: one } = await app.ok(GRANT, { input: { serviceId: service.user.id, conversationId: single.id } }, admin.token);
    expect(one).toEqual({ id: expect.any(String), serviceId: service.user.id, origin: null, conversationId: single.id });
    expect((await app.ok(READ_CONVERSATION, { id: single.id }, service.token)).conversation.id).toBe(single.id);
    expect(await app.errorCode(READ_CONVERSATION, { id: other.id }, service.token)).toBe("NOT_FOUND");

    const apiConversation = await conversationOf(alice.token, { origin: "API" });
    const { grantService: byOrigin } = await app.ok(GRANT, { input: { serviceId: service.user.id, origin: "API" } }, admin.token);
    expect(byOrigin).toEqual({ id: expect.any(String), serviceId: service.user.id, origin: "API", conversationId: null });
    expect((await app.ok(READ_CONVERSATION, { id: apiConversation.id }, service.token)).conversation.id).toBe(apiConversation.id);
    const later = await conversationOf((await app.makeUser(Role.MEMBER)).token, { origin: "API" });
    expect((await app.ok(READ_CONVERSATION, { id: later.id }, service.token)).conversation.id).toBe(later.id);
    expect(await app.errorCode(READ_CONVERSATION, { id: other.id }, service.token)).toBe("NOT_FOUND"); // WEB: not granted
  });

  it.each([
    ["neither conversationId nor origin", () => ({})],
    ["both conversationId and origin", (conversationId: string) => ({ conversationId, origin: "WEB" })],
  ])("needs exactly one target: %s is BAD_USER_INPUT", async (_case, target) => {
    const service = await app.makeUser(Role.SERVICE);
    const { id } = await conversationOf(admin.token);
    expect(await app.errorCode(GRANT, { input: { serviceId: service.user.id, ...target(id) } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.database.db.knex("service_grants").where({ serviceId: service.user.id }).select("id")).toEqual([]);
  });

  it("are only for SERVICE users, existing ones, and existing conversations", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const service = await app.makeUser(Role.SERVICE);
    expect(await app.errorCode(GRANT, { input: { serviceId: member.user.id, origin: "WEB" } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(GRANT, { input: { serviceId: admin.user.id, origin: "WEB" } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(GRANT, { input: { serviceId: UNKNOWN_ID, origin: "WEB" } }, admin.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(GRANT, { input: { serviceId: service.user.id, conversationId: UNKNOWN_ID } }, admin.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(GRANT, { input: { serviceId: service.user.id, origin: "WEB" } }, service.token)).toBe("FORBIDDEN");
  });

  it("refuse a duplicate grant with CONFLICT", async () => {
    const service = await app.makeUser(Role.SERVICE);
    const { id } = await conversationOf(admin.token);
    for (const target of [{ origin: "DISCORD" }, { conversationId: id }]) {
      await app.ok(GRANT, { input: { serviceId: service.user.id, ...target } }, admin.token);
      expect(await app.errorCode(GRANT, { input: { serviceId: service.user.id, ...target } }, admin.token)).toBe("CONFLICT");
    }
    expect(await app.database.db.knex("service_grants").where({ serviceId: service.user.id }).select("id")).toHaveLength(2);
  });

  it("serviceGrants: admins see all or one service's, a service only its own", async () => {
    const [one, two] = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.SERVICE)];
    const { id } = await conversationOf(admin.token);
    const g1 = (await app.ok(GRANT, { input: { serviceId: one.user.id, origin: "WEB" } }, admin.token)).grantService;
    const g2 = (await app.ok(GRANT, { input: { serviceId: one.user.id, conversationId: id } }, admin.token)).grantService;
    const g3 = (await app.ok(GRANT, { input: { serviceId: two.user.id, origin: "API" } }, admin.token)).grantService;

    const all = (await app.ok(GRANTS, {}, admin.token)).serviceGrants;
    expect(all).toEqual(expect.arrayContaining([g1, g2, g3]));
    expect(all).toHaveLength(Number((await app.database.db.knex("service_grants").count({ n: "*" }))[0].n));
    expect((await app.ok(GRANTS, { serviceId: one.user.id }, admin.token)).serviceGrants).toEqual([g1, g2]);
    expect((await app.ok(GRANTS, {}, one.token)).serviceGrants).toEqual([g1, g2]);
    expect((await app.ok(GRANTS, { serviceId: one.user.id }, one.token)).serviceGrants).toEqual([g1, g2]);
    expect((await app.ok(GRANTS, {}, two.token)).serviceGrants).toEqual([g3]);
    expect(await app.errorCode(GRANTS, { serviceId: one.user.id }, two.token)).toBe("FORBIDDEN");
    const named = (await app.ok(`query($s: UUID) { serviceGrants(serviceId: $s) { service { id displayName } } }`, { s: one.user.id }, admin.token)).serviceGrants;
    expect(named).toEqual([g1, g2].map(() => ({ service: { id: one.user.id, displayName: one.user.displayName } })));
  });

  it("revokeServiceGrant takes access away at once", async () => {
    const [service, alice] = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.MEMBER)];
    const { id } = await conversationOf(alice.token);
    const grant = (await app.ok(GRANT, { input: { serviceId: service.user.id, conversationId: id } }, admin.token)).grantService;
    expect((await app.ok(READ_CONVERSATION, { id }, service.token)).conversation.id).toBe(id);

    expect(await app.errorCode(REVOKE_GRANT, { id: grant.id }, service.token)).toBe("FORBIDDEN");
    expect((await app.ok(REVOKE_GRANT, { id: grant.id }, admin.token)).revokeServiceGrant).toBe(true);
    expect(await app.errorCode(READ_CONVERSATION, { id }, service.token)).toBe("NOT_FOUND");
    const write = { input: { conversationId: id, role: "ASSISTANT", content: "still here?" } };
    expect(await app.errorCode(ADD_MESSAGE, write, service.token)).toBe("NOT_FOUND");
    expect((await app.ok(GRANTS, {}, service.token)).serviceGrants).toEqual([]);
    expect(await app.errorCode(REVOKE_GRANT, { id: grant.id }, admin.token)).toBe("NOT_FOUND");
  });
});

describe("createConversation for another user (ownerId)", () => {
  let adapter: TestUser;
  let discordUser: { id: string; token: string };

  beforeAll(async () => {
    adapter = await app.makeUser(Role.SERVICE, "discord relay");
    await app.grant(adapter, { origin: "discord" });
    const { upsertDiscordUser } = await app.ok(UPSERT_DISCORD, { discordId: snowflake(), name: "channel member" }, adapter.token);
    discordUser = { id: upsertDiscordUser.id, token: (await newKey(admin.token, { userId: upsertDiscordUser.id })).key };
  });

  const discordInput = (channel: string) => ({
    title: "#general",
    origin: "DISCORD",
    ownerId: discordUser.id,
    discordGuildId: "111111111111111111",
    discordChannelId: channel,
  });

  it("a service with the DISCORD grant creates a channel conversation owned by a Discord user, who can read it", async () => {
    const channel = snowflake();
    const { createConversation } = await app.ok(CREATE_CONVERSATION, { input: discordInput(channel) }, adapter.token);
    expect(createConversation).toEqual({
      id: expect.any(String),
      title: "#general",
      origin: "DISCORD",
      status: "ACTIVE",
      discordGuildId: "111111111111111111",
      discordChannelId: channel,
      owner: { id: discordUser.id },
    });
    const read = await app.ok(READ_CONVERSATION, { id: createConversation.id }, discordUser.token);
    expect(read.conversation).toMatchObject({ id: createConversation.id, owner: { id: discordUser.id } });
    const { conversations } = await app.ok(`{ conversations(first: 50) { edges { node { id } } } }`, {}, discordUser.token);
    expect(conversations.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(createConversation.id);
  });

  it("allows one ACTIVE conversation per channel: a second is CONFLICT until the first is archived", async () => {
    const channel = snowflake();
    const first = (await app.ok(CREATE_CONVERSATION, { input: discordInput(channel) }, adapter.token)).createConversation;
    expect(await app.errorCode(CREATE_CONVERSATION, { input: discordInput(channel) }, adapter.token)).toBe("CONFLICT");
    expect(await app.database.db.knex("conversations").where({ discordChannelId: channel }).select("id")).toEqual([{ id: first.id }]);

    await app.ok(ARCHIVE, { id: first.id }, adapter.token);
    const second = (await app.ok(CREATE_CONVERSATION, { input: discordInput(channel) }, adapter.token)).createConversation;
    expect(second).toMatchObject({ status: "ACTIVE", discordChannelId: channel });
    expect(second.id).not.toBe(first.id);
  });

  it("refuses Discord ids on a conversation of another origin with BAD_USER_INPUT", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const channel = snowflake();
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { origin: "WEB", discordChannelId: channel } }, member.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { origin: "API", discordGuildId: "1" } }, adapter.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { discordChannelId: channel } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { origin: "DISCORD", discordChannelId: "not-a-snowflake" } }, adapter.token)).toBe(
      "BAD_USER_INPUT",
    );
    expect(await app.database.db.knex("conversations").where({ discordChannelId: channel }).select("id")).toEqual([]);
  });

  it("does not let a member bind a conversation to a Discord channel (which would take the channel from the adapter)", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const channel = snowflake();
    const squat = { origin: "DISCORD", discordGuildId: "111111111111111111", discordChannelId: channel };
    expect(await app.errorCode(CREATE_CONVERSATION, { input: squat }, member.token)).toBe("FORBIDDEN");
    // The channel stays free for the adapter.
    expect((await app.ok(CREATE_CONVERSATION, { input: discordInput(channel) }, adapter.token)).createConversation.discordChannelId).toBe(channel);
  });

  it.each<[string, () => Promise<TestUser>]>([
    ["a member", () => app.makeUser(Role.MEMBER)],
    ["a service without grants", () => app.makeUser(Role.SERVICE)],
    ["a service granted another origin", async () => {
      const service = await app.makeUser(Role.SERVICE);
      await app.grant(service, { origin: "web" });
      return service;
    }],
  ])("is FORBIDDEN for %s creating a DISCORD conversation for someone else", async (_case, who) => {
    const [actor, channel] = [await who(), snowflake()];
    expect(await app.errorCode(CREATE_CONVERSATION, { input: discordInput(channel) }, actor.token)).toBe("FORBIDDEN");
    const { discordChannelId: _channel, discordGuildId: _guild, ...plain } = discordInput(channel);
    expect(await app.errorCode(CREATE_CONVERSATION, { input: plain }, actor.token)).toBe("FORBIDDEN");
    expect(await app.database.db.knex("conversations").where({ ownerId: discordUser.id, discordChannelId: channel }).select("id")).toEqual([]);
  });

  it("is NOT_FOUND for an unknown or deactivated owner", async () => {
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { ...discordInput(snowflake()), ownerId: UNKNOWN_ID } }, adapter.token)).toBe("NOT_FOUND");
    const gone = await app.makeUser(Role.MEMBER);
    await app.ok(DEACTIVATE, { id: gone.user.id }, admin.token);
    expect(await app.errorCode(CREATE_CONVERSATION, { input: { ...discordInput(snowflake()), ownerId: gone.user.id } }, adapter.token)).toBe("NOT_FOUND");
  });
});

describe("addMessage actAs", () => {
  let adapter: TestUser;
  let member: { user: { id: string }; token: string }; // a Discord user (upserted by the adapter) with a key of their own
  let conversationId: string;

  beforeAll(async () => {
    adapter = await app.makeUser(Role.SERVICE, "relay");
    await app.grant(adapter, { origin: "discord" });
    const { upsertDiscordUser } = await app.ok(UPSERT_DISCORD, { discordId: snowflake(), name: "Speaker" }, adapter.token);
    member = { user: { id: upsertDiscordUser.id }, token: (await newKey(admin.token, { userId: upsertDiscordUser.id })).key };
    conversationId = (await conversationOf(adapter.token, { origin: "DISCORD", ownerId: member.user.id })).id;
  });

  it("in a DISCORD conversation a service acts only for Discord users: a web member or an admin is FORBIDDEN", async () => {
    const web = await app.makeUser(Role.MEMBER, "web only");
    const before = await messageCount();
    for (const user of [web.user.id, admin.user.id]) {
      expect(await app.errorCode(ADD_MESSAGE, { input: { conversationId, content: "as them", actAs: user } }, adapter.token)).toBe("FORBIDDEN");
      const input = { origin: "DISCORD", ownerId: user, title: "theirs now" };
      expect(await app.errorCode(CREATE_CONVERSATION, { input }, adapter.token)).toBe("FORBIDDEN");
    }
    expect(await messageCount()).toBe(before);
    // An admin may still act for anyone (they can do everything anyway).
    const { addMessage } = await app.ok(ADD_MESSAGE, { input: { conversationId, content: "by an admin, as a web member", actAs: web.user.id } }, admin.token);
    expect(addMessage.author).toEqual({ id: web.user.id });
  });

  const messageCount = async () => (await app.ok(READ_CONVERSATION, { id: conversationId }, admin.token)).conversation.messageCount as number;

  it("a service with the origin grant writes as the member: author is the member, sentBy the service", async () => {
    const { addMessage } = await app.ok(ADD_MESSAGE, { input: { conversationId, content: "hello from discord", actAs: member.user.id } }, adapter.token);
    expect(addMessage).toMatchObject({ role: "USER", content: "hello from discord", author: { id: member.user.id }, sentBy: { id: adapter.user.id } });
    // Its own reply has no sentBy.
    const reply = (await app.ok(ADD_MESSAGE, { input: { conversationId, role: "ASSISTANT", content: "hi!" } }, adapter.token)).addMessage;
    expect(reply).toMatchObject({ author: { id: adapter.user.id }, sentBy: null });
    // The member reads the relayed message as their own.
    const { message } = await app.ok(`query($id: UUID!) { message(id: $id) { author { id } sentBy { id } } }`, { id: addMessage.id }, member.token);
    expect(message).toEqual({ author: { id: member.user.id }, sentBy: { id: adapter.user.id } });
  });

  it("is FORBIDDEN for a member, even in their own conversation", async () => {
    const other = await app.makeUser(Role.MEMBER);
    const before = await messageCount();
    expect(await app.errorCode(ADD_MESSAGE, { input: { conversationId, content: "as someone", actAs: other.user.id } }, member.token)).toBe("FORBIDDEN");
    const own = await conversationOf(member.token);
    expect(await app.errorCode(ADD_MESSAGE, { input: { conversationId: own.id, content: "x", actAs: other.user.id } }, member.token)).toBe("FORBIDDEN");
    expect(await messageCount()).toBe(before);
  });

  it("is NOT_FOUND for an unknown or deactivated user, and stores nothing", async () => {
    const gone = await app.makeUser(Role.MEMBER);
    await app.ok(DEACTIVATE, { id: gone.user.id }, admin.token);
    const before = await messageCount();
    expect(await app.errorCode(ADD_MESSAGE, { input: { conversationId, content: "ghost", actAs: UNKNOWN_ID } }, adapter.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(ADD_MESSAGE, { input: { conversationId, content: "ghost", actAs: gone.user.id } }, adapter.token)).toBe("NOT_FOUND");
    expect(await messageCount()).toBe(before);
  });
});

describe("audit log", () => {
  interface Expected {
    action: string;
    targetType: string;
    targetId: string;
    actorId: string;
    details?: Record<string, unknown>;
  }

  /** Runs one audited mutation with its own x-request-id and checks the single entry it wrote. */
  async function expectAudited(requestId: string, run: (requestId: string) => Promise<Expected>) {
    const expected = await run(requestId);
    const { auditLogs } = await app.ok(AUDIT_LOGS, { filter: { action: expected.action, targetId: expected.targetId } }, admin.token);
    const mine = auditLogs.edges.map((e: { node: Record<string, unknown> }) => e.node).filter((n: { requestId: string }) => n.requestId === requestId);
    expect(mine).toHaveLength(1);
    const { details, ...rest } = expected;
    expect(mine[0]).toMatchObject({ ...rest, requestId, actor: { id: expected.actorId } });
    if (details) expect(mine[0].details).toMatchObject(details);
    expect(LOOPBACK).toContain(mine[0].ip);
  }

  const must = async (response: Promise<GqlResponse>) => {
    const { body } = await response;
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  it("records every access and data change with actor, target, IP and request id", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const service = await app.makeUser(Role.SERVICE);
    let keyId = "";
    let grantId = "";

    await expectAudited("audit-key-create", async (rid) => {
      keyId = (await must(call(CREATE_KEY, { name: "audited", userId: member.user.id }, admin.token, rid))).createApiKey.id;
      return { action: "api_key.create", targetType: "api_key", targetId: keyId, actorId: admin.user.id, details: { userId: member.user.id, name: "audited" } };
    });
    await expectAudited("audit-key-revoke", async (rid) => {
      await must(call(REVOKE_KEY, { id: keyId }, member.token, rid));
      return { action: "api_key.revoke", targetType: "api_key", targetId: keyId, actorId: member.user.id };
    });
    await expectAudited("audit-set-role", async (rid) => {
      await must(call(SET_ROLE, { id: member.user.id, role: "SERVICE" }, admin.token, rid));
      return { action: "user.set_role", targetType: "user", targetId: member.user.id, actorId: admin.user.id, details: { role: "service" } };
    });
    await must(call(SET_ROLE, { id: member.user.id, role: "MEMBER" }, admin.token));
    await expectAudited("audit-deactivate", async (rid) => {
      await must(call(DEACTIVATE, { id: member.user.id }, admin.token, rid));
      return { action: "user.deactivate", targetType: "user", targetId: member.user.id, actorId: admin.user.id };
    });
    await expectAudited("audit-reactivate", async (rid) => {
      await must(call(REACTIVATE, { id: member.user.id }, admin.token, rid));
      return { action: "user.reactivate", targetType: "user", targetId: member.user.id, actorId: admin.user.id };
    });
    await expectAudited("audit-user-create", async (rid) => {
      const id = (await must(call(CREATE_USER, { input: { displayName: "Audited", role: "SERVICE" } }, admin.token, rid))).createUser.id;
      return { action: "user.create", targetType: "user", targetId: id, actorId: admin.user.id, details: { role: "service" } };
    });
    await expectAudited("audit-grant", async (rid) => {
      grantId = (await must(call(GRANT, { input: { serviceId: service.user.id, origin: "API" } }, admin.token, rid))).grantService.id;
      return { action: "grant.create", targetType: "service_grant", targetId: grantId, actorId: admin.user.id, details: { serviceId: service.user.id, origin: "api" } };
    });
    await expectAudited("audit-grant-revoke", async (rid) => {
      await must(call(REVOKE_GRANT, { id: grantId }, admin.token, rid));
      return { action: "grant.revoke", targetType: "service_grant", targetId: grantId, actorId: admin.user.id, details: { serviceId: service.user.id } };
    });
    const conversation = await conversationOf(member.token);
    await expectAudited("audit-archive", async (rid) => {
      await must(call(ARCHIVE, { id: conversation.id }, member.token, rid));
      return { action: "conversation.archive", targetType: "conversation", targetId: conversation.id, actorId: member.user.id };
    });
    await expectAudited("audit-delete", async (rid) => {
      await must(call(DELETE, { id: conversation.id }, member.token, rid));
      return { action: "conversation.delete", targetType: "conversation", targetId: conversation.id, actorId: member.user.id, details: { ownerId: member.user.id } };
    });
    await expectAudited("audit-config", async (rid) => {
      await must(call(SET_CONFIG, { key: "audited.setting", value: { on: true } }, admin.token, rid));
      return { action: "config.set", targetType: "system_config", targetId: "audited.setting", actorId: admin.user.id, details: { value: { on: true } } };
    });
  });

  it("writes nothing for a refused or idempotent no-op mutation", async () => {
    const member = await app.makeUser(Role.MEMBER);
    const conversation = await conversationOf(member.token);
    await must(call(ARCHIVE, { id: conversation.id }, member.token));
    const refusals: [string, string, Record<string, unknown>, string, string | undefined][] = [
      ["audit-none-1", DEACTIVATE, { id: admin.user.id }, admin.token, "FORBIDDEN"],
      ["audit-none-2", SET_ROLE, { id: member.user.id, role: "ADMIN" }, member.token, "FORBIDDEN"],
      ["audit-none-3", CREATE_KEY, { name: "", userId: member.user.id }, admin.token, "BAD_USER_INPUT"],
      ["audit-none-4", ARCHIVE, { id: conversation.id }, member.token, undefined], // already archived: no change
      ["audit-none-5", DELETE, { id: conversation.id }, (await app.makeUser(Role.MEMBER)).token, "NOT_FOUND"], // not theirs
      ["audit-none-6", GRANT, { input: { serviceId: member.user.id, origin: "WEB" } }, admin.token, "BAD_USER_INPUT"],
    ];
    for (const [rid, query, variables, token, code] of refusals) {
      const { body } = await call(query, variables, token, rid);
      expect(body.errors?.[0].extensions?.code).toBe(code);
    }
    const written = await app.database.db.knex("audit_logs").whereIn("requestId", refusals.map(([rid]) => rid)).select("action", "requestId");
    expect(written).toEqual([]);
  });

  it("filters by action, actor and target, and pages newest first without gaps or repeats", async () => {
    const member = await app.makeUser(Role.MEMBER);
    for (let i = 0; i < 4; i++) await newKey(member.token);
    const knex = app.database.db.knex;

    const walk = async (filter?: Record<string, unknown>) => {
      const nodes: { id: string; action: string; actorId: string; targetId: string }[] = [];
      let after: string | undefined;
      let totalCount = -1;
      for (let page = 0; page < 200; page++) {
        const { auditLogs } = await app.ok(AUDIT_LOGS, { first: 3, after, filter }, admin.token);
        expect(auditLogs.edges.length).toBeLessThanOrEqual(3);
        totalCount = auditLogs.totalCount;
        nodes.push(...auditLogs.edges.map((e: { node: (typeof nodes)[number] }) => e.node));
        if (!auditLogs.pageInfo.hasNextPage) break;
        after = auditLogs.pageInfo.endCursor;
      }
      expect(nodes).toHaveLength(totalCount);
      return nodes;
    };

    const everything = await walk();
    const expectedOrder = await knex("audit_logs").orderBy([{ column: "createdAt", order: "desc" }, { column: "id", order: "desc" }]).pluck("id");
    expect(everything.map((n) => n.id)).toEqual(expectedOrder);

    const byActor = await walk({ actorId: member.user.id });
    expect(byActor.length).toBeGreaterThanOrEqual(4);
    expect(byActor.every((n) => n.actorId === member.user.id)).toBe(true);
    expect(byActor).toHaveLength(Number((await knex("audit_logs").where({ actorId: member.user.id }).count({ n: "*" }))[0].n));

    const byAction = await walk({ action: "api_key.create", actorId: member.user.id });
    expect(byAction).toHaveLength(4);
    expect(byAction.every((n) => n.action === "api_key.create")).toBe(true);

    const target = byAction[2].targetId;
    const byTarget = await walk({ targetId: target });
    expect(byTarget.map((n) => n.id)).toEqual([byAction[2].id]);
    expect((await walk({ action: "no.such.action" })).length).toBe(0);
  });

  it("is FORBIDDEN for members and services", async () => {
    expect(await app.errorCode(AUDIT_LOGS, {}, (await app.makeUser(Role.MEMBER)).token)).toBe("FORBIDDEN");
    expect(await app.errorCode(AUDIT_LOGS, {}, (await app.makeUser(Role.SERVICE)).token)).toBe("FORBIDDEN");
  });
});

describe("system configs", () => {
  it("setSystemConfig creates, then replaces, a setting", async () => {
    const { setSystemConfig: created } = await app.ok(SET_CONFIG, { key: "bot.defaults", value: { model: "gpt-4o-mini", temperature: 0.2 }, description: "Defaults for bots" }, admin.token);
    expect(created).toMatchObject({ key: "bot.defaults", value: { model: "gpt-4o-mini", temperature: 0.2 }, description: "Defaults for bots", updatedBy: admin.user.id });
    expect((await app.ok(CONFIG, { key: "bot.defaults" }, admin.token)).systemConfig).toEqual({
      key: "bot.defaults",
      value: { model: "gpt-4o-mini", temperature: 0.2 },
      description: "Defaults for bots",
      updatedBy: admin.user.id,
      createdAt: created.createdAt,
    });

    const otherAdmin = await app.makeUser(Role.ADMIN);
    const { setSystemConfig: replaced } = await app.ok(SET_CONFIG, { key: "bot.defaults", value: ["a", 1], description: "Now a list" }, otherAdmin.token);
    expect(replaced).toMatchObject({ key: "bot.defaults", value: ["a", 1], description: "Now a list", updatedBy: otherAdmin.user.id, createdAt: created.createdAt });
    expect((await app.ok(CONFIG, { key: "bot.defaults" }, admin.token)).systemConfig.value).toEqual(["a", 1]);
    expect(await app.database.db.knex("system_configs").where({ key: "bot.defaults" }).select("key")).toHaveLength(1);
  });

  it.each<[string, unknown]>([
    ["a string", "plain text"],
    ["an integer", 42],
    ["a float", -3.5],
    ["true", true],
    ["false", false],
    ["an empty object", {}],
    ["an empty array", []],
    ["a nested value", { limits: { perDay: 100, models: ["a", "b"], off: null }, tags: [{ k: "v" }] }],
  ])("stores %s as the value, unchanged", async (_case, value) => {
    const key = unique("kind");
    expect((await app.ok(SET_CONFIG, { key, value }, admin.token)).setSystemConfig.value).toEqual(value);
    expect((await app.ok(CONFIG, { key }, admin.token)).systemConfig.value).toEqual(value);
  });

  it("systemConfigs lists every setting sorted by key", async () => {
    for (const key of ["sortzeta", "sortalpha", "sortmid"]) await app.ok(SET_CONFIG, { key, value: key }, admin.token);
    const { systemConfigs } = await app.ok(CONFIGS, {}, admin.token);
    const keys = systemConfigs.map((c: { key: string }) => c.key);
    expect(keys.filter((k: string) => k.startsWith("sort"))).toEqual(["sortalpha", "sortmid", "sortzeta"]);
    expect(keys).toHaveLength(Number((await app.database.db.knex("system_configs").count({ n: "*" }))[0].n));
    expect(systemConfigs).toContainEqual({ key: "sortmid", value: "sortmid" });
  });

  it("systemConfig of an unknown key is NOT_FOUND; a blank key is BAD_USER_INPUT; members are FORBIDDEN", async () => {
    expect(await app.errorCode(CONFIG, { key: "no.such.key" }, admin.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(SET_CONFIG, { key: "", value: 1 }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(SET_CONFIG, { key: "member.try", value: 1 }, (await app.makeUser(Role.MEMBER)).token)).toBe("FORBIDDEN");
    expect(await app.errorCode(CONFIG, { key: "member.try" }, admin.token)).toBe("NOT_FOUND");
  });
});
