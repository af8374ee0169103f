/**
 * The hot statements run as named prepared statements on PostgreSQL (src/db/prepared.ts): each connection
 * parses and plans them once. They list their columns instead of `*`, so a migration that adds columns while
 * the server runs does not break them ("cached plan must not change result type").
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const HISTORY = `query($id: UUID!) { conversation(id: $id) { title messages(last: 5) { edges { node { seq content author { displayName } } } } } }`;
const INBOX = `{ conversations(first: 5) { edges { node { title lastMessage { content } } } } }`;
const ADD = `mutation($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { seq content } }`;

let app: TestApp;
let alice: TestUser;
let conversationId: string;

beforeAll(async () => {
  // One pooled connection, so pg_prepared_statements (per connection) shows everything the server prepared;
  // no key cache, so that every request looks its key up.
  app = await createTestApp({ DATABASE_POOL_MAX: "1", AUTH_CACHE_SECONDS: "0" });
  alice = await app.makeUser(Role.MEMBER, "alice");
  conversationId = (await app.ok(`mutation { createConversation(input: { title: "prepared" }) { id } }`, {}, alice.token)).createConversation.id;
});
afterAll(() => app.dispose());

/** History, inbox and a write, checked for their answers. */
async function hotPaths(text: string, seq: number): Promise<void> {
  expect((await app.ok(ADD, { c: conversationId, t: text }, alice.token)).addMessage).toEqual({ seq, content: text });
  const history = await app.ok(HISTORY, { id: conversationId }, alice.token);
  expect(history.conversation.messages.edges.at(-1).node).toEqual({ seq, content: text, author: { displayName: "alice" } });
  const inbox = await app.ok(INBOX, {}, alice.token);
  expect(inbox.conversations.edges).toEqual([{ node: { title: "prepared", lastMessage: { content: text } } }]);
}

it("prepares the hot statements on PostgreSQL (and nothing on PGlite, where marking them is a no-op)", async () => {
  await hotPaths("first", 1);
  const { rows } = await app.database.db.knex.raw("select name from pg_prepared_statements where name like 'parley\\_%'");
  // the key lookup, the write, the history and the inbox (rate limits, also prepared, are off in tests)
  if (app.database.db.kind === "postgres") expect(rows).toHaveLength(4);
  else expect(rows).toEqual([]);
});

it("prepares nothing with DATABASE_PREPARED_STATEMENTS=false (for poolers that cannot keep them), and still answers", async () => {
  const unprepared = await createTestApp({ DATABASE_POOL_MAX: "1", AUTH_CACHE_SECONDS: "0", DATABASE_PREPARED_STATEMENTS: "false" });
  try {
    const bob = await unprepared.makeUser(Role.MEMBER, "bob");
    await unprepared.ok(`mutation { createConversation(input: { title: "prepared" }) { id } }`, {}, bob.token);
    expect((await unprepared.ok(INBOX, {}, bob.token)).conversations.edges).toEqual([{ node: { title: "prepared", lastMessage: null } }]);
    const { rows } = await unprepared.database.db.knex.raw("select name from pg_prepared_statements");
    expect(rows).toEqual([]);
  } finally {
    await unprepared.dispose();
  }
});

it("keeps answering after a migration adds columns to every table they read", async () => {
  await hotPaths("before", 2);
  const knex = app.database.db.knex;
  for (const table of ["messages", "conversations", "users", "api_keys"]) await knex.raw(`alter table ${table} add column added_later text`);
  await hotPaths("after", 3);
});
