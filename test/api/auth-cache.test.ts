/**
 * The per-process cache of authenticated API keys: a client's requests after the first do not look the key
 * up again, yet a revocation or deactivation made through Parley is refused at once on the server that made
 * it and, once the notification arrives, on every other server; a change made by hand in SQL (no
 * notification) is seen after AUTH_CACHE_SECONDS, at once with 0.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const VIEWER = "{ viewer { id } }";
let app: TestApp;
let second: TestApp;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  second = await createTestApp({}, app.database); // another server on the same database
  admin = await app.makeUser(Role.ADMIN);
});
afterAll(async () => {
  await second.dispose();
  await app.dispose();
});

const status = async (server: TestApp, user: TestUser) => (await server.gql(VIEWER, {}, user.token)).status;
const keyIdOf = async (user: TestUser) => (await app.database.db.knex("api_keys").where({ userId: user.user.id }).first("id")).id as string;

/** Polls (a bounded number of times) until the server refuses the token: the notification is asynchronous. */
async function refusedEventually(server: TestApp, user: TestUser): Promise<number> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const answer = await status(server, user);
    if (answer !== 200) return answer;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return 200;
}

it("looks a key up once, not on every request", async () => {
  const alice = await app.makeUser(Role.MEMBER);
  const lookups: string[] = [];
  const count = ({ sql }: { sql: string }) => {
    if (/from "api_keys"/.test(sql)) lookups.push(sql);
  };
  app.database.db.knex.on("query", count);
  try {
    for (let i = 0; i < 3; i++) expect(await status(app, alice)).toBe(200);
  } finally {
    app.database.db.knex.removeListener("query", count);
  }
  expect(lookups).toHaveLength(1);
});

it("refuses a key revoked through the API at once here, and on another server once its notification arrives", async () => {
  const bob = await app.makeUser(Role.MEMBER);
  expect(await status(app, bob)).toBe(200);
  expect(await status(second, bob)).toBe(200); // both servers have the key cached now
  await app.ok(`mutation($id: UUID!) { revokeApiKey(id: $id) { id } }`, { id: await keyIdOf(bob) }, bob.token);
  expect(await status(app, bob)).toBe(401);
  expect(await refusedEventually(second, bob)).toBe(401);
});

it("refuses a deactivated user's key at once on the server that deactivated them", async () => {
  const carol = await app.makeUser(Role.MEMBER);
  expect(await status(app, carol)).toBe(200);
  await app.ok(`mutation($id: UUID!) { deactivateUser(id: $id) { id } }`, { id: carol.user.id }, admin.token);
  expect(await status(app, carol)).toBe(401);
  expect(await refusedEventually(second, carol)).toBe(401);
});

it("with AUTH_CACHE_SECONDS=0 sees even a revocation written by hand in SQL at once", async () => {
  const uncached = await createTestApp({ AUTH_CACHE_SECONDS: "0" }, app.database);
  try {
    const dave = await app.makeUser(Role.MEMBER);
    expect(await status(uncached, dave)).toBe(200);
    await app.database.db.knex("api_keys").where({ id: await keyIdOf(dave) }).update({ revokedAt: new Date() });
    expect(await status(uncached, dave)).toBe(401);
  } finally {
    await uncached.dispose();
  }
});
