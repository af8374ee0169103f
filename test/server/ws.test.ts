import WebSocket from "ws";
import { createClient, type Client } from "graphql-ws";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let alice: TestUser;
const clients: Client[] = [];

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser();
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await app.dispose();
});

function connect(authorization?: string) {
  const closed = new Promise<number>((resolve) => {
    const client = createClient({
      url: `${app.url.replace("http", "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: authorization ? { authorization } : {},
      retryAttempts: 0,
      lazy: true,
      on: { closed: (event) => resolve((event as { code: number }).code) },
    });
    clients.push(client);
  });
  return { client: clients[clients.length - 1], closed };
}

async function first(client: Client, query: string) {
  for await (const result of client.iterate({ query })) return result;
  throw new Error("no result");
}

describe("graphql-ws on /graphql", () => {
  it("runs operations as the user of the connection_init token", async () => {
    const { client } = connect(`Bearer ${alice.token}`);
    const result = await first(client, "{ viewer { id } }");
    expect(result.data).toEqual({ viewer: { id: alice.user.id } });
  });

  it.each([
    ["no token", () => undefined],
    ["a forged token", () => "Bearer pk_" + "A".repeat(43)],
    ["a token without Bearer", () => alice.token],
  ])("closes the connection with 4403 for %s", async (_case, authorization) => {
    const { client, closed } = connect(authorization());
    await expect(first(client, "{ viewer { id } }")).rejects.toBeDefined();
    expect(await closed).toBe(4403);
  });
});
