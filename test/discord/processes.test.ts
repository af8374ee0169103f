/**
 * The adapter as an operator runs it, from zero, in child processes against a fake Discord: a service key
 * with the DISCORD grant from the CLI, `npm run discord:register` (guild and global), `npm run discord` (the
 * adapter alone) and `npm start` with DISCORD_TOKEN set (the adapter inside the server), one after the other
 * on the same database.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createEmptyDatabase, testDbKind, type TestDatabase } from "../helpers/db";
import { parleyCli } from "../helpers/cli";
import { startProcess, startServerProcess } from "../helpers/process";
import { APPLICATION_ID, CHANNEL_ID, FakeDiscord, GUILD_ID, TOKEN, discordUser, waitFor } from "./fake-discord";

let fake: FakeDiscord;
let target: { env: Record<string, string>; database?: TestDatabase; dir?: string };
let key: string;
const alice = discordUser("300000000000000001", "Alice");

const discordEnv = () => ({ ...target.env, DISCORD_TOKEN: TOKEN, DISCORD_APPLICATION_ID: APPLICATION_ID, DISCORD_API_URL: fake.apiUrl, DISCORD_API_KEY: key });

/** Runs `/parley <sub>` and returns the reply's text. */
async function command(sub: string): Promise<string> {
  const call = await fake.interactionReply(fake.command(CHANNEL_ID, alice, sub));
  return call.body.data.content;
}

beforeAll(async () => {
  fake = await FakeDiscord.start();
  if (testDbKind() === "postgres") {
    const database = await createEmptyDatabase();
    await database.db.close(); // the processes get the database to themselves
    target = { env: { DATABASE_URL: database.url!, MIGRATE_ON_START: "true" }, database };
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-discord-"));
    target = { env: { PGLITE_DIR: dir }, dir };
  }
});

afterAll(async () => {
  await fake?.close();
  await target.database?.dispose();
  if (target.dir) fs.rmSync(target.dir, { recursive: true, force: true });
});

it("npm run cli -- create-key --grant discord makes the adapter's identity", async () => {
  const refused = await parleyCli(["create-key", "--role", "member", "--name", "x", "--grant", "discord"], target.env);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("--grant is for --role service");

  const result = await parleyCli(["create-key", "--role", "service", "--name", "discord", "--grant", "discord"], target.env);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain("granted every DISCORD conversation");
  key = result.stdout.trim().split("\n").pop()!;
  expect(key).toMatch(/^pk_/);
});

it("npm run discord:register puts /parley into a guild, or globally", async () => {
  const env = { ...discordEnv(), DISCORD_GUILD_ID: GUILD_ID };
  const guild = await parleyCli(["discord-register"], env);
  expect(guild).toMatchObject({ code: 0 });
  expect(guild.stdout).toContain(`in guild ${GUILD_ID}`);
  const [put] = fake.callsTo("PUT", new RegExp(`^/applications/${APPLICATION_ID}/guilds/${GUILD_ID}/commands$`));
  expect(put.headers.authorization).toBe(`Bot ${TOKEN}`);
  expect(put.body).toEqual([
    expect.objectContaining({ name: "parley", contexts: [0], options: ["start", "stop", "status", "history", "transcript", "usage", "search"].map((name) => expect.objectContaining({ name, type: 1 })) }),
  ]);

  const global = await parleyCli(["discord-register", "--global"], env);
  expect(global.code).toBe(0);
  expect(fake.callsTo("PUT", new RegExp(`^/applications/${APPLICATION_ID}/commands$`))).toHaveLength(1);

  const unset = await parleyCli(["discord-register"], target.env);
  expect(unset.code).toBe(1);
  expect(unset.stderr).toContain("DISCORD_TOKEN");
});

it("npm run discord runs the adapter alone: it binds, relays, answers, and stops on SIGTERM", async () => {
  const adapter = await startProcess("src/discord/main.ts", discordEnv(), /"msg":"Discord bindings loaded/);
  try {
    expect(await command("start")).toContain("Parley now records this channel");
    fake.say(CHANNEL_ID, alice, "stored by the standalone adapter");
    await waitFor(async () => (await command("history")).includes("stored by the standalone adapter"), 30_000, "the message in /parley history");
    // With no API server in the process, the transcript still comes from the download route (its loopback one).
    const call = await fake.interactionReply(fake.command(CHANNEL_ID, alice, "transcript"));
    expect(call.files).toHaveLength(1);
    expect(call.files[0].name).toMatch(/^transcript-[0-9a-f-]{36}\.json$/);
    expect(JSON.parse(call.files[0].data.toString("utf8")).messages.map((m: { content: string }) => m.content)).toContain("stored by the standalone adapter");
  } finally {
    expect(await adapter.stop()).toBe(0);
  }
});

it("npm start with DISCORD_TOKEN runs the adapter inside the server, on the same bindings", async () => {
  const server = await startServerProcess(discordEnv());
  try {
    await waitFor(() => fake.connected, 30_000, "the server's adapter to connect");
    const message = fake.say(CHANNEL_ID, alice, "stored by the server's adapter");
    // Over HTTP with the adapter's own key: the binding now ends at that message.
    const binding = async () => {
      const response = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: `query($c: String!) { discordBinding(channelId: $c) { lastRelayedMessageId conversation { messageCount } } }`, variables: { c: CHANNEL_ID } }),
      });
      return ((await response.json()) as { data: { discordBinding: { lastRelayedMessageId: string; conversation: { messageCount: number } } } }).data.discordBinding;
    };
    await waitFor(async () => (await binding()).lastRelayedMessageId === message.id, 30_000, "the message to be relayed");
    expect((await binding()).conversation.messageCount).toBe(2);
  } finally {
    await server.stop();
  }
});

it("refuses to start with a key that lacks the DISCORD grant, saying what to do", async () => {
  const plain = await parleyCli(["create-key", "--role", "service", "--name", "no grant"], target.env);
  const noGrant = plain.stdout.trim().split("\n").pop()!;
  const adapter = startProcess("src/discord/main.ts", { ...discordEnv(), DISCORD_API_KEY: noGrant }, /never/, 60_000);
  await expect(adapter).rejects.toThrow(/exited with 1[\s\S]*needs the DISCORD origin grant/);
});
