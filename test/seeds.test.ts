import { seed } from "../seeds/01_demo";
import { createTestApp, type TestApp } from "./helpers/server";

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.dispose());

async function runSeed(): Promise<string> {
  const lines: string[] = [];
  const spy = jest.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
  try {
    await seed(app.database.db.knex);
  } finally {
    spy.mockRestore();
  }
  return lines[lines.length - 1];
}

describe("npm run seed", () => {
  it("loads the demo and prints a key that reads it, and can be re-run", async () => {
    await runSeed();
    const key = await runSeed(); // the second run replaces the first
    const data = await app.ok(
      `{ viewer { displayName } conversations { totalCount edges { node { title messageCount
         messages(last: 10) { edges { node { seq role toolCalls author { displayName } } } } } } } }`,
      {},
      key,
    );
    expect(data.viewer.displayName).toBe("Alice");
    expect(data.conversations.totalCount).toBe(1);
    const conversation = data.conversations.edges[0].node;
    expect(conversation.messageCount).toBe(5);
    expect(conversation.messages.edges.map((e: any) => e.node.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(conversation.messages.edges[2].node.toolCalls[0].function.name).toBe("get_forecast");
    expect(await app.database.db.knex("users").count({ n: "*" }).first()).toEqual({ n: 4 });
  });
});
