/**
 * Isolation: a member never sees or touches another member's data. Every root field of the schema must
 * have an outsider case here; the first test fails when a new field is added without one.
 */
import { getIntrospectionQuery } from "graphql";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let alice: TestUser; // the owner
let bob: TestUser; // the outsider
let conversationId: string;
let messageId: string;
let transcriptId: string;

const CONVERSATION_STATE = `query($id: UUID!) { conversation(id: $id) { title status messageCount } }`;

async function aliceView() {
  return (await app.ok(CONVERSATION_STATE, { id: conversationId }, alice.token)).conversation;
}

/** An outsider operation that must fail with `code` and leave Alice's conversation as it was. */
async function refusedWithoutEffect(query: string, variables: Record<string, unknown>, code = "NOT_FOUND") {
  const before = await aliceView();
  const { body } = await app.gql(query, variables, bob.token);
  expect(body.errors?.[0].extensions?.code).toBe(code);
  expect(JSON.stringify(body.data ?? null)).not.toContain(conversationId);
  expect(await aliceView()).toEqual(before);
}

const cases: Record<string, () => Promise<void>> = {
  "Query.viewer": async () => {
    const { viewer } = await app.ok(`{ viewer { id } }`, {}, bob.token);
    expect(viewer.id).toBe(bob.user.id);
  },
  "Query.conversation": () => refusedWithoutEffect(`query($id: UUID!) { conversation(id: $id) { id } }`, { id: conversationId }),
  "Query.conversations": async () => {
    const { conversations } = await app.ok(`{ conversations(first: 100) { totalCount edges { node { id } } } }`, {}, bob.token);
    expect(conversations.edges.map((e: any) => e.node.id)).not.toContain(conversationId);
    await refusedWithoutEffect(`query($o: UUID!) { conversations(filter: { ownerId: $o }) { totalCount } }`, { o: alice.user.id }, "FORBIDDEN");
  },
  "Query.message": () => refusedWithoutEffect(`query($id: UUID!) { message(id: $id) { id content } }`, { id: messageId }),
  "Query.transcript": () => refusedWithoutEffect(`query($id: UUID!) { transcript(id: $id) { id } }`, { id: transcriptId }),
  "Query.metrics": () => refusedWithoutEffect(`{ metrics { totalCount } }`, {}, "FORBIDDEN"),
  "Mutation.createConversation": async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "mine" }) { owner { id } } }`, {}, bob.token);
    expect(createConversation.owner.id).toBe(bob.user.id);
  },
  "Mutation.updateConversation": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { updateConversation(id: $id, input: { title: "pwned" }) { id } }`, { id: conversationId }),
  "Mutation.archiveConversation": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: conversationId }),
  "Mutation.deleteConversation": () => refusedWithoutEffect(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id: conversationId }),
  "Mutation.addMessage": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "hi" }) { id } }`, { id: conversationId }),
  "Mutation.recordMetrics": () =>
    refusedWithoutEffect(`mutation { recordMetrics(input: [{ clientBotId: "b", metricType: "t" }]) }`, {}, "FORBIDDEN"),
};

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "private" }) { id } }`, {}, alice.token);
  conversationId = createConversation.id;
  const { addMessage } = await app.ok(
    `mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "my secret" }) { id } }`,
    { id: conversationId },
    alice.token,
  );
  messageId = addMessage.id;
  const [transcript] = await app.database.db
    .knex("transcripts")
    .insert({ conversationId, format: "json", status: "ready", createdBy: alice.user.id })
    .returning("id");
  transcriptId = transcript.id;
});
afterAll(() => app.dispose());

describe("isolation between members", () => {
  it("has an outsider case for every root field of the schema", async () => {
    const { __schema } = await app.ok(getIntrospectionQuery(), {}, alice.token);
    const roots = [__schema.queryType.name, __schema.mutationType?.name, __schema.subscriptionType?.name].filter(Boolean);
    const fields = __schema.types
      .filter((type: any) => roots.includes(type.name))
      .flatMap((type: any) => type.fields.map((field: any) => `${type.name}.${field.name}`));
    expect(fields.sort()).toEqual(Object.keys(cases).sort());
  });

  it.each(Object.keys(cases))("%s does not reach another member's data", async (field) => {
    await cases[field]();
  });

  it("a service sees only the metrics it recorded", async () => {
    const [one, two] = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.SERVICE)];
    await app.ok(`mutation { recordMetrics(input: [{ clientBotId: "bot-one", metricType: "latency" }]) }`, {}, one.token);
    const { metrics } = await app.ok(`{ metrics { totalCount edges { node { clientBotId } } } }`, {}, two.token);
    expect(metrics).toEqual({ totalCount: 0, edges: [] });
  });
});
