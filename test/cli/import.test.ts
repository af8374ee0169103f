/**
 * `npm run cli -- import --from chatgpt|jsonl FILE --owner USER` as operators run it, in child processes against
 * its own database: the branch ChatGPT's current_node names, roles, order, source times and models; the
 * summary's counts and reasons; a second run storing nothing; a stopped run completed; files that are not the
 * format refused with nothing written; the owner (and nobody else) seeing the result through the API; and a
 * JSONL file larger than the process's heap limit imported in bounded memory.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createDatabase } from "../../src/db/database";
import { testConfig, type TestDatabase } from "../helpers/db";
import { parleyCli, ROOT, run, cliTarget, type CliTarget } from "../helpers/cli";
import { createTestApp } from "../helpers/server";

// Every case runs the CLI as a child process; on PGlite each run opens the embedded database afresh.
jest.setTimeout(300_000);

const FIXTURES = path.join(__dirname, "../fixtures/import");
const CHATGPT = path.join(FIXTURES, "chatgpt-conversations.json");
const JSONL = path.join(FIXTURES, "parley.jsonl");

let target: CliTarget;
let files: string;
const users: Record<"ada" | "ben", { id: string; key: string }> = {} as never;

type Knex = ReturnType<typeof createDatabase>["knex"];

/** Opens the target database while the CLI is not running (PGlite's folder takes one process at a time). */
function openTarget() {
  return createDatabase(testConfig(target.env.DATABASE_URL, target.env));
}

async function read<T>(query: (knex: Knex) => Promise<T>): Promise<T> {
  const db = openTarget();
  try {
    return await query(db.knex);
  } finally {
    await db.close();
  }
}

async function createKey(role: string, name: string): Promise<{ id: string; key: string }> {
  const result = await parleyCli(["create-key", "--role", role, "--name", name], target.env);
  if (result.code !== 0) throw new Error(`create-key failed: ${result.stderr}`);
  const lines = result.stdout.trim().split("\n");
  return { id: /\) ([0-9a-f-]{36});/.exec(lines[0])![1], key: lines[lines.length - 1] };
}

beforeAll(async () => {
  files = fs.mkdtempSync(path.join(os.tmpdir(), "parley-import-"));
  target = await cliTarget();
  // create-key migrates first. A service also named Ben makes the name Ben ambiguous.
  users.ada = await createKey("member", "Ada");
  users.ben = await createKey("member", "Ben");
  await createKey("service", "Ben");
});

afterAll(async () => {
  await target?.dispose();
  fs.rmSync(files, { recursive: true, force: true });
});

const importing = (from: string, file: string, owner: string) => parleyCli(["import", "--from", from, file, "--owner", owner], target.env);

function writeFile(name: string, content: string): string {
  const file = path.join(files, name);
  fs.writeFileSync(file, content);
  return file;
}

const jsonl = (...lines: unknown[]) => lines.map((line) => JSON.stringify(line)).join("\n") + "\n";

/** A conversation's messages in seq order, as the test compares them. */
const messagesOf = (knex: Knex, title: string) =>
  knex("messages")
    .join("conversations", "conversations.id", "messages.conversationId")
    .where("conversations.title", title)
    .orderBy("messages.seq")
    .select("messages.seq", "messages.role", "messages.content", "messages.model", "messages.createdAt", "messages.authorId", "messages.metadata");

const counts = () =>
  read(async (knex) => ({
    conversations: Number((await knex("conversations").count({ n: "*" }))[0].n),
    messages: Number((await knex("messages").count({ n: "*" }))[0].n),
    ledger: Number((await knex("ai_requests").count({ n: "*" }))[0].n),
  }));

describe("npm run cli -- import --from chatgpt", () => {
  it("imports the branch current_node ends, root first, with roles, source times and models, and says what it skipped", async () => {
    const result = await importing("chatgpt", CHATGPT, users.ada.id);
    expect(result.stderr).toContain("import: "); // the progress, on stderr
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("conversations: 2 imported, 0 completed (partly there before), 0 already present");
    expect(result.stdout).toContain("messages: 8 imported, 0 already present");
    expect(result.stdout).toMatch(/no-message: 2 .*conv-trip\/a-root; conv-chart\/b-root/);
    expect(result.stdout).toMatch(/hidden: 1 .*conv-trip\/a-sys/);
    expect(result.stdout).toMatch(/empty: 1 .*conv-chart\/b-a0/);
    expect(result.stdout).toMatch(/non-text-dropped: 1 .*conv-chart\/b-u1/);

    await read(async (knex) => {
      const trip = await messagesOf(knex, "Trip ideas");
      // The edited second question (a-u2-old) and its answer are another branch: not imported.
      expect(trip.map(({ seq, role, content, model, createdAt }) => [seq, role, content, model, createdAt.toISOString()])).toEqual([
        [1, "user", "Lisbon or Porto?", null, "2023-11-14T22:13:30.500Z"],
        [2, "assistant", "Porto, for the food.", "gpt-4o", "2023-11-14T22:13:32.250Z"],
        [3, "user", "And for a weekend in winter?", null, "2023-11-14T22:16:40.750Z"],
        [4, "assistant", "Lisbon: the winters are milder.", "gpt-4o-mini", "2023-11-14T22:16:43.000Z"],
      ]);
      expect(trip.map((message) => message.authorId)).toEqual([users.ada.id, null, users.ada.id, null]);

      const chart = await messagesOf(knex, "Plot a chart");
      expect(chart.map(({ role, content, metadata }) => [role, content, metadata])).toEqual([
        ["user", "Chart these numbers: 1, 2, 3", {}], // the image part dropped, the text kept
        ["assistant", "plt.plot([1, 2, 3])", { recipient: "python" }],
        ["tool", "<line chart with 3 points>", { toolName: "python" }],
        ["assistant", "Here is your chart.", {}],
      ]);

      const conversations = await knex("conversations").where({ ownerId: users.ada.id }).orderBy("createdAt").select("title", "createdAt", "updatedAt", "lastSeq", "messageCount");
      expect(conversations.map((c) => [c.title, c.createdAt.toISOString(), c.updatedAt.toISOString(), Number(c.lastSeq), c.messageCount])).toEqual([
        ["Trip ideas", "2023-11-14T22:13:20.125Z", "2023-11-14T22:23:20.500Z", 4, 4],
        ["Plot a chart", "2024-03-09T16:00:00.000Z", "2024-03-09T16:00:50.000Z", 4, 4],
      ]);
      // The activity triggers counted the owner's messages at their own times.
      const activity = await knex("user_activity").where({ userId: users.ada.id }).first();
      expect([Number(activity.messagesSent), Number(activity.conversations)]).toEqual([3, 2]);
      expect(activity.firstActiveAt.toISOString()).toBe("2023-11-14T22:13:20.125Z");
    });
  });

  it("stores nothing new when the same file is imported again", async () => {
    const before = await counts();
    const result = await importing("chatgpt", CHATGPT, users.ada.id);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("conversations: 0 imported, 0 completed (partly there before), 2 already present");
    expect(result.stdout).toContain("messages: 0 imported, 8 already present");
    expect(await counts()).toEqual(before);
    const activity = await read((knex) => knex("user_activity").where({ userId: users.ada.id }).first());
    expect(Number(activity.messagesSent)).toBe(3);
  });
});

describe("npm run cli -- import --from jsonl", () => {
  it("imports conversations and messages, skips the bad line by its number, and puts reported usage on the ledger", async () => {
    const result = await importing("jsonl", JSONL, "Ada"); // the owner by display name
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain(`for Ada (${users.ada.id})`);
    expect(result.stdout).toContain("conversations: 2 imported");
    expect(result.stdout).toContain("messages: 5 imported, 0 already present");
    expect(result.stdout).toMatch(/not-json: 1 .*line 4/);

    await read(async (knex) => {
      const first = await messagesOf(knex, "Imported from JSONL");
      expect(first.map(({ seq, role, content, createdAt }) => [seq, role, content, createdAt.toISOString()])).toEqual([
        [1, "user", "Hello there", "2026-01-05T09:00:01.000Z"],
        [2, "assistant", "Hi! How can I help?", "2026-01-05T09:00:03.500Z"],
        [3, "user", "Thanks", "2026-01-05T09:05:00.000Z"],
      ]);
      const second = await messagesOf(knex, "Second");
      expect(second.map(({ role, metadata }) => [role, metadata])).toEqual([["system", {}], ["tool", { toolName: "search" }]]);
      const ledger = await knex("ai_requests").select("model", "promptTokens", "completionTokens", "costUsd", "occurredAt", "userId");
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({ model: "gpt-4o-mini", promptTokens: 12, completionTokens: 7, userId: users.ada.id });
      expect(Number(ledger[0].costUsd)).toBe(0.0001);
      expect(ledger[0].occurredAt.toISOString()).toBe("2026-01-05T09:00:03.500Z");
    });

    const again = await importing("jsonl", JSONL, users.ada.id);
    expect(again.stdout).toContain("messages: 0 imported, 5 already present");
    expect((await counts()).ledger).toBe(1);
  });

  it("completes a conversation that a stopped run left half-written, without duplicates", async () => {
    const conversation = { type: "conversation", id: "resume", title: "Resumed", createdAt: "2026-03-01T10:00:00.000Z" };
    const messages = [1, 2, 3, 4, 5].map((n) => ({ type: "message", id: `r${n}`, role: n % 2 ? "user" : "assistant", content: `part ${n}`, createdAt: `2026-03-01T10:00:0${n}.000Z` }));
    // What a run stopped after its first batch leaves: the conversation with the first messages.
    const partial = await importing("jsonl", writeFile("partial.jsonl", jsonl(conversation, ...messages.slice(0, 2))), users.ada.id);
    expect(partial.stdout).toContain("messages: 2 imported");

    const full = await importing("jsonl", writeFile("full.jsonl", jsonl(conversation, ...messages)), users.ada.id);
    expect(full).toMatchObject({ code: 0 });
    expect(full.stdout).toContain("conversations: 0 imported, 1 completed (partly there before), 0 already present");
    expect(full.stdout).toContain("messages: 3 imported, 2 already present");
    await read(async (knex) => {
      expect((await messagesOf(knex, "Resumed")).map(({ seq, content }) => [seq, content])).toEqual([1, 2, 3, 4, 5].map((n) => [n, `part ${n}`]));
      const row = await knex("conversations").where({ title: "Resumed" }).first();
      expect([Number(row.lastSeq), row.messageCount, row.updatedAt.toISOString()]).toEqual([5, 5, "2026-03-01T10:00:05.000Z"]);
    });
  });
});

describe("refusals", () => {
  it("refuses a file that is not the format at all, and an ambiguous owner, writing nothing", async () => {
    const before = await counts();
    const refused = [
      await importing("chatgpt", JSONL, users.ada.id), // JSONL is not one JSON array
      await importing("jsonl", CHATGPT, users.ada.id), // its first line "[" is not a JSON object
      await importing("chatgpt", writeFile("not-conversations.json", JSON.stringify([{ title: "no mapping" }, { title: "x", mapping: {} }])), users.ada.id),
    ];
    for (const result of refused) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("Nothing was imported: this is not a");
    }
    const ambiguous = await importing("jsonl", JSONL, "Ben");
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain(`"Ben" names more than one user`);
    expect(ambiguous.stderr).toContain(users.ben.id);
    expect(await counts()).toEqual(before);
  });
});

describe("access to imported conversations", () => {
  it("shows them to their owner through the API and to nobody else", async () => {
    const db = openTarget();
    const shared: TestDatabase = { db, config: testConfig(target.env.DATABASE_URL, target.env), url: target.env.DATABASE_URL, dispose: () => db.close() };
    const app = await createTestApp(target.env, shared);
    try {
      const query = `{ conversations(first: 50) { totalCount edges { node { id title messages(first: 10) { edges { node { seq role content } } } } } } }`;
      const mine = await app.ok<{ conversations: { totalCount: number; edges: { node: { id: string; title: string; messages: { edges: { node: { content: string } }[] } } }[] } }>(
        query,
        {},
        users.ada.key,
      );
      const titles = mine.conversations.edges.map((edge) => edge.node.title);
      expect(titles).toEqual(expect.arrayContaining(["Trip ideas", "Plot a chart", "Imported from JSONL", "Second", "Resumed"]));
      const trip = mine.conversations.edges.find((edge) => edge.node.title === "Trip ideas")!.node;
      expect(trip.messages.edges.map((edge) => edge.node.content)).toEqual(["Lisbon or Porto?", "Porto, for the food.", "And for a weekend in winter?", "Lisbon: the winters are milder."]);

      const theirs = await app.ok<{ conversations: { totalCount: number } }>(query, {}, users.ben.key);
      expect(theirs.conversations.totalCount).toBe(0);
      expect(await app.errorCode(`query ($id: UUID!) { conversation(id: $id) { title } }`, { id: trip.id }, users.ben.key)).toBe("NOT_FOUND");
    } finally {
      await app.dispose();
      await db.close().catch(() => undefined);
    }
  });
});

describe("a large file", () => {
  it("imports 20,000 messages from a file larger than the process's heap limit", async () => {
    // 2 conversations of 10,000 messages of 2,500 characters: about 52 MB. Reading it whole (a 52 MB string and
    // its parsed lines) does not fit in 80 MB of heap next to the CLI's own ~45 MB; reading it line by line does.
    const file = path.join(files, "big.jsonl");
    const out = fs.openSync(file, "w");
    const filler = "x".repeat(2500);
    for (let c = 0; c < 2; c++) {
      const lines = [JSON.stringify({ type: "conversation", id: `big-${c}`, title: `Big ${c}`, createdAt: "2026-02-01T00:00:00.000Z" })];
      for (let m = 0; m < 10_000; m++) {
        lines.push(JSON.stringify({ type: "message", id: `m${m}`, role: m % 2 ? "assistant" : "user", content: `${m} ${filler}`, createdAt: new Date(Date.UTC(2026, 1, 1) + m * 1000).toISOString() }));
      }
      fs.writeSync(out, lines.join("\n") + "\n");
    }
    fs.closeSync(out);
    expect(fs.statSync(file).size).toBeGreaterThan(50_000_000);

    const result = await run(process.execPath, ["--max-old-space-size=80", "-r", "@swc-node/register", path.join(ROOT, "src/cli.ts"), "import", "--from", "jsonl", file, "--owner", users.ben.id], target.env);
    expect(result.stderr).not.toContain("heap out of memory");
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("messages: 20000 imported, 0 already present");
    await read(async (knex) => {
      const rows = await knex("conversations").where({ ownerId: users.ben.id }).orderBy("title").select("title", "lastSeq", "messageCount");
      expect(rows.map((row) => [row.title, Number(row.lastSeq), row.messageCount])).toEqual([["Big 0", 10_000, 10_000], ["Big 1", 10_000, 10_000]]);
    });
  });
});
