/**
 * One Parley server (real database), one fake Discord, and the adapter between them, as `npm start` wires it:
 * the adapter gets the server's schema, database, live hub and rate limiter, and acts with the API key of a
 * service user granted the DISCORD origin. A second service ("AI worker", also granted DISCORD) writes the
 * assistant's replies over HTTP, as a real worker would.
 */
import type { Env } from "../../src/config";
import { Role } from "../../src/modules/user/role.enum";
import { startDiscordAdapter, type DiscordAdapter } from "../../src/discord/adapter";
import type { TranscriptSource } from "../../src/discord/commands/command";
import { testConfig } from "../helpers/db";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { APPLICATION_ID, FakeDiscord, TOKEN, waitFor } from "./fake-discord";

export interface DiscordHarness {
  app: TestApp;
  fake: FakeDiscord;
  /** The adapter's own service identity. */
  service: TestUser;
  /** An AI worker that writes replies into Discord conversations. */
  worker: TestUser;
  admin: TestUser;
  adapter: DiscordAdapter;
  /** Starts the adapter (again) and waits until its bindings are loaded. */
  start(env?: Env, options?: { transcripts?: TranscriptSource }): Promise<DiscordAdapter>;
  /** Stops the adapter (the bot goes offline; Parley keeps running). */
  stop(): Promise<void>;
  /** The rows of the conversation's messages, by seq. */
  messages(conversationId: string): Promise<{ seq: number; role: string; content: string | null; requestId: string | null; authorId: string; sentBy: string | null; metadata: any }[]>;
  /** The active conversation of a channel (through the database). */
  conversationOf(channelId: string): Promise<{ id: string; ownerId: string; title: string; status: string } | undefined>;
  dispose(): Promise<void>;
}

export async function createDiscordHarness(env: Env = {}): Promise<DiscordHarness> {
  const app = await createTestApp(env);
  const fake = await FakeDiscord.start();
  const service = await app.makeUser(Role.SERVICE, "discord adapter");
  await app.grant(service, { origin: "discord" });
  const worker = await app.makeUser(Role.SERVICE, "ai worker");
  await app.grant(worker, { origin: "discord" });
  const admin = await app.makeUser(Role.ADMIN, "admin");
  const knex = app.database.db.knex;

  const harness: DiscordHarness = {
    app,
    fake,
    service,
    worker,
    admin,
    adapter: undefined as unknown as DiscordAdapter,
    async start(extra = {}, options = {}) {
      const config = testConfig(app.database.url, {
        ...env,
        DISCORD_TOKEN: TOKEN,
        DISCORD_APPLICATION_ID: APPLICATION_ID,
        DISCORD_API_KEY: service.token,
        DISCORD_API_URL: fake.apiUrl,
        DISCORD_EDIT_INTERVAL_MS: "50",
        ...extra,
      });
      const { server } = app;
      harness.adapter = await startDiscordAdapter({
        deps: { schema: server.schema, db: server.db, log: server.log, live: server.live, rateLimiter: server.rateLimiter, transcripts: server.transcripts, config, apiUrl: server.url },
        retry: { baseMs: 20, maxMs: 200 },
        transcripts: options.transcripts,
      });
      await harness.adapter.ready;
      return harness.adapter;
    },
    async stop() {
      await harness.adapter?.dispose();
      await waitFor(() => !fake.connected, 10_000, "the bot to leave the gateway");
    },
    messages: (conversationId) =>
      knex("messages").where({ conversationId }).orderBy("seq").select("seq", "role", "content", "requestId", "authorId", "sentBy", "metadata"),
    conversationOf: (channelId) => knex("conversations").where({ discordChannelId: channelId, status: "active" }).first("id", "ownerId", "title", "status"),
    async dispose() {
      await harness.adapter?.dispose();
      await fake.close();
      await app.dispose();
    },
  };
  return harness;
}
