import { seed } from "../seeds/01_demo";
import { demoEmbedding } from "../src/modules/knowledge/demo-embedding";
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

  it("prices two models and puts a month of usage on the ledger, which `usage` shows by day", async () => {
    await runSeed();
    const aliceKey = await runSeed(); // re-run: nothing doubles (the key of the last run is the valid one)
    const knex = app.database.db.knex;
    const { models } = await app.ok(`{ models { provider name currentPrice { inputPerMillion } } }`, {}, aliceKey);
    expect(models.map((m: any) => `${m.provider}/${m.name}`)).toEqual(["anthropic/claude-3-haiku", "openai/gpt-4o-mini"]);
    const now = Date.now();
    const day = 86_400_000;
    const from = new Date(Math.floor((now - 32 * day) / day) * day).toISOString();
    const to = new Date(Math.ceil(now / day) * day).toISOString();
    const { usage } = await app.ok(
      `query($from: DateTime!, $to: DateTime!) { usage(filter: { from: $from, to: $to }, period: DAY) { periodStart requests costUsd } }`,
      { from, to },
      aliceKey,
    );
    expect(usage.length).toBeGreaterThanOrEqual(30);
    expect(usage.every((bucket: any) => bucket.costUsd > 0)).toBe(true);
    // Alice's calls only (Bob's are his), every one priced from the catalogue or as given.
    const { rows } = await knex.raw("select count(*)::int as n, count(*) filter (where cost_source = 'unknown')::int as unpriced from ai_requests where user_id = ?", [
      "00000000-0000-4000-8000-0000000000a1",
    ]);
    expect(usage.reduce((sum: number, bucket: any) => sum + bucket.requests, 0)).toBe(rows[0].n);
    expect(rows[0].unpriced).toBe(0);
  });

  it("loads documents with demo vectors that Alice can search by text and by vector, once however often it runs", async () => {
    await runSeed();
    const aliceKey = await runSeed();
    const SEARCH = `query($q: String, $e: [Float!]) { searchDocuments(query: $q, embedding: $e, first: 10) { document { title scope } chunk { content } } }`;
    const byText = (await app.ok(SEARCH, { q: "export" }, aliceKey)).searchDocuments;
    expect(byText.map((hit: any) => hit.document.title)).toEqual(["Exporting transcripts"]);
    // Her own packing list by vector; the guild's documents are not hers to see.
    const packing = "Lisbon weekend: sunglasses, light jacket for the evenings, comfortable shoes for the hills, a phrasebook.";
    const byVector = (await app.ok(SEARCH, { e: demoEmbedding(packing, 64) }, aliceKey)).searchDocuments;
    expect(byVector[0].document).toEqual({ title: "Alice's packing list", scope: "USER" });
    expect(byVector.map((hit: any) => hit.document.scope)).not.toContain("GUILD");
    expect(await app.database.db.knex("documents").count({ n: "*" }).first()).toEqual({ n: 5 });
  });

  it("pins the trip to the demo assistant's first version, with Alice's rating and a two-version artifact on its reply", async () => {
    await runSeed();
    const aliceKey = await runSeed();
    const { conversations } = await app.ok(
      `{ conversations(first: 1) { edges { node { assistant { version assistant { name } }
         messages(last: 10) { edges { node { seq role assistant { version } myFeedback { rating score } artifacts { title version } } } } } } } }`,
      {},
      aliceKey,
    );
    const trip = conversations.edges[0].node;
    expect(trip.assistant).toEqual({ version: 1, assistant: { name: "Travel helper" } });
    const reply = trip.messages.edges.find((edge: any) => edge.node.seq === 5).node;
    expect(reply).toMatchObject({ role: "ASSISTANT", assistant: { version: 1 }, myFeedback: { rating: "UP", score: 5 } });
    const versions = trip.messages.edges.flatMap((edge: any) => edge.node.artifacts).map((artifact: any) => artifact.version);
    expect(versions.sort()).toEqual([1, 2]);
  });
});
