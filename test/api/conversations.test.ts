import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const CREATE = `mutation($input: CreateConversationInput!) {
  createConversation(input: $input) { id title origin status parameters messageCount owner { id displayName } }
}`;
const GET = `query($id: UUID!) { conversation(id: $id) { id title status messageCount lastMessage { seq content } } }`;

let app: TestApp;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser();
  bob = await app.makeUser();
});
afterAll(() => app.dispose());

describe("createConversation", () => {
  it("creates a conversation owned by the viewer", async () => {
    const data = await app.ok(CREATE, { input: { title: "Trip", origin: "WEB", parameters: { model: "gpt", temperature: 0.2 } } }, alice.token);
    expect(data.createConversation).toMatchObject({
      title: "Trip",
      origin: "WEB",
      status: "ACTIVE",
      parameters: { model: "gpt", temperature: 0.2 },
      messageCount: 0,
      owner: { id: alice.user.id },
    });
  });

  it("rejects a title over 500 characters with BAD_USER_INPUT", async () => {
    expect(await app.errorCode(CREATE, { input: { title: "x".repeat(501) } }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("rejects parameters that are not a JSON object", async () => {
    expect(await app.errorCode(CREATE, { input: { parameters: [1, 2] } }, alice.token)).toBe("BAD_USER_INPUT");
  });

  it("rejects an unknown origin enum", async () => {
    const { status, body } = await app.gql(CREATE, { input: { origin: "FAX" } }, alice.token);
    expect(status).toBe(400);
    expect(body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("requires a token", async () => {
    const { status, body } = await app.gql(CREATE, { input: {} });
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
  });
});

describe("conversation", () => {
  it("returns NOT_FOUND for another member's conversation and for an unknown id alike", async () => {
    const { createConversation } = await app.ok(CREATE, { input: { title: "secret" } }, alice.token);
    const other = await app.gql(GET, { id: createConversation.id }, bob.token);
    const unknown = await app.gql(GET, { id: "00000000-0000-4000-8000-000000000000" }, bob.token);
    expect(other.body.errors?.[0]).toMatchObject({ message: "Conversation not found", extensions: { code: "NOT_FOUND" } });
    expect(unknown.body.errors?.[0]).toEqual(other.body.errors?.[0]);
  });

  it("rejects a malformed id with BAD_USER_INPUT", async () => {
    expect(await app.errorCode(GET, { id: "not-a-uuid" }, alice.token)).toBe("BAD_USER_INPUT");
  });
});
