/**
 * The Discord adapter and its guild's settings, against the fake Discord and a real Parley server: allowedChannels
 * (/parley start refused elsewhere, the relay storing nothing new from channels left out), the settings read once
 * per ttl rather than per message, and `/parley search` over the guild's documents and the channel's messages.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTransport } from "../../src/discord/transport";
import { GuildConfigs } from "../../src/discord/guild-configs";
import { escapeText, highlightMarkdown, searchText } from "../../src/discord/commands/search";
import type { SearchData } from "../../src/discord/operations";
import { createDiscordHarness, type DiscordHarness } from "./harness";
import { CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, THREAD_ID, discordUser, snowflake, waitFor } from "./fake-discord";

let h: DiscordHarness;

const alice = discordUser("300000000000000001", "Alice");
const EPHEMERAL = 64;
const OTHER_GUILD = "100000000000000777";

const SET = `mutation($g: String!, $s: JSON!) { setGuildConfig(guildId: $g, settings: $s) { settings } }`;
const setSettings = (settings: Record<string, unknown>, guildId = GUILD_ID) => h.app.ok(SET, { g: guildId, s: settings }, h.admin.token);

type Reply = { type: number; data: { content: string; flags?: number } };
async function command(channelId: string, sub: string, options: { name: string; type: number; value: unknown }[] = []): Promise<Reply> {
  const call = await h.fake.interactionReply(h.fake.command(channelId, alice, sub, options));
  return call.body as Reply;
}
const isEphemeral = (reply: Reply) => ((reply.data.flags ?? 0) & EPHEMERAL) === EPHEMERAL;

/** Binds a channel through the API (as another client of the adapter's key could), bypassing /parley start. */
async function bindThroughApi(channelId: string): Promise<string> {
  const { upsertDiscordUser } = await h.app.ok(`mutation($i: UpsertDiscordUserInput!) { upsertDiscordUser(input: $i) { id } }`, { i: { discordId: alice.id, displayName: "Alice" } }, h.service.token);
  const { createConversation } = await h.app.ok(
    `mutation($i: CreateConversationInput!) { createConversation(input: $i) { id } }`,
    { i: { origin: "DISCORD", ownerId: upsertDiscordUser.id, discordGuildId: GUILD_ID, discordChannelId: channelId } },
    h.service.token,
  );
  return createConversation.id;
}

beforeAll(async () => {
  h = await createDiscordHarness();
  await h.start();
});
afterAll(() => h?.dispose());

describe("allowedChannels", () => {
  it("makes /parley start answer ephemerally, binding nothing, in a channel (or its thread) the settings leave out", async () => {
    await setSettings({ allowedChannels: [OTHER_CHANNEL_ID] }); // read for the first time below

    for (const channelId of [CHANNEL_ID, THREAD_ID]) {
      const refused = await command(channelId, "start");
      expect(isEphemeral(refused)).toBe(true);
      expect(refused.data.content).toContain("Parley is not enabled in this channel");
      expect(await h.conversationOf(channelId)).toBeUndefined();
    }
    const started = await command(OTHER_CHANNEL_ID, "start");
    expect(isEphemeral(started)).toBe(false);
    expect(started.data.content).toContain("now records this channel");
    expect(await h.conversationOf(OTHER_CHANNEL_ID)).toBeDefined();
  });

  it("keeps the relay from storing new messages of a bound channel the settings leave out, reading the settings once, not per message", async () => {
    const left = await bindThroughApi(CHANNEL_ID); // bound, but not among allowedChannels
    const served = (await h.conversationOf(OTHER_CHANNEL_ID))!.id;
    await h.stop();
    await h.start(); // loads the new binding, with a fresh settings cache

    const reads: string[] = [];
    const listener = (query: { sql: string }) => void (/server_configs/.test(query.sql) && reads.push(query.sql));
    h.app.database.db.knex.on("query", listener);
    try {
      const ignored = [1, 2, 3, 4, 5].map((n) => h.fake.say(CHANNEL_ID, alice, `left out ${n}`));
      const kept = [1, 2, 3].map((n) => h.fake.say(OTHER_CHANNEL_ID, alice, `served ${n}`));
      // The gateway delivers in order: once the last one is stored, every event before it was queued.
      await waitFor(async () => (await h.messages(served)).some((row) => row.requestId === kept[2].id), 20_000, "the served channel's messages");
      await h.adapter.idle();
      expect((await h.messages(served)).filter((row) => kept.some((message) => message.id === row.requestId))).toHaveLength(3);
      const stored = (await h.messages(left)).map((row) => row.requestId);
      expect(stored.filter((id) => ignored.some((message) => message.id === id))).toEqual([]);
      expect(reads.length).toBeLessThanOrEqual(1);
    } finally {
      h.app.database.db.knex.off("query", listener);
    }
  });

  it("reach a running adapter once its cached copy is older than the ttl; a failed read is not kept", async () => {
    const { server } = h.app;
    const deps = { schema: server.schema, db: server.db, config: h.app.database.config, log: server.log, live: server.live, rateLimiter: server.rateLimiter, apiUrl: h.app.url };
    let now = 0;
    const guild = "100000000000000555";
    const configs = new GuildConfigs(createTransport(deps, `Bearer ${h.service.token}`), 30_000, () => now);
    expect(await configs.settings(guild)).toBeNull();
    expect(await configs.allows(guild, "100000000000000556", null)).toBe(true); // nothing stored: every channel
    await setSettings({ allowedChannels: ["100000000000000557"] }, guild);
    now = 29_999;
    expect(await configs.settings(guild)).toBeNull(); // still the copy read at 0
    now = 30_000;
    expect(await configs.settings(guild)).toEqual({ allowedChannels: ["100000000000000557"] });
    expect(await configs.allows(guild, "100000000000000556", null)).toBe(false);
    expect(await configs.allows(guild, "100000000000000557", null)).toBe(true);
    expect(await configs.allows(guild, "100000000000000558", "100000000000000557")).toBe(true); // a thread of an allowed channel
    expect(await configs.allows(null, "100000000000000556", null)).toBe(true);

    // A service without the DISCORD grant is refused; the refusal is not cached as "no settings".
    const outsider = await h.app.makeUser(Role.SERVICE, "outsider");
    const refused = new GuildConfigs(createTransport(deps, `Bearer ${outsider.token}`), 30_000, () => now);
    expect(await refused.settings(guild).then(() => "read", (error: { code?: string }) => error.code)).toBe("FORBIDDEN");
    await h.app.grant(outsider, { origin: "discord" });
    expect(await refused.settings(guild)).toEqual({ allowedChannels: ["100000000000000557"] });
  });
});

describe("/parley search", () => {
  const UPSERT = `mutation($i: UpsertDocumentInput!) { upsertDocument(input: $i) { id } }`;
  const upsert = (guildId: string, title: string, text: string, sourceUrl: string | null = null) =>
    h.app.ok(UPSERT, { i: { scope: { kind: "GUILD", guildId }, title, text, sourceUrl, language: "english" } }, h.admin.token);

  beforeAll(async () => {
    await upsert(GUILD_ID, "Packing list", "Bring a tent, a sleeping bag and a stove for the camping trip.", "https://example.com/packing");
    await upsert(GUILD_ID, "Rules *v2* [draft](https://evil.example)", "No tent may be pitched near the river <@everyone> ~~ever~~.");
    await upsert(GUILD_ID, "Recipes", "Pancakes need flour, eggs and milk.");
    await upsert(OTHER_GUILD, "Another server's tent guide", "A tent for another guild.");
    // Run alone (jest -t), the channel is not bound yet by the tests above.
    if (!(await h.conversationOf(OTHER_CHANNEL_ID))) await command(OTHER_CHANNEL_ID, "start");
  });

  it("answers ephemerally with the guild's documents and the channel's messages, matches in bold and markdown escaped", async () => {
    const conversationId = (await h.conversationOf(OTHER_CHANNEL_ID))!.id;
    const said = h.fake.say(OTHER_CHANNEL_ID, alice, "who brings the tent & the *stove*?");
    await waitFor(async () => (await h.messages(conversationId)).some((row) => row.requestId === said.id), 20_000, "the message about the tent");
    const seq = (await h.messages(conversationId)).find((row) => row.requestId === said.id)!.seq;

    const reply = await command(OTHER_CHANNEL_ID, "search", [{ name: "text", type: 3, value: "tent" }]);
    expect(isEphemeral(reply)).toBe(true);
    const text = reply.data.content;
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(text).toContain("Packing list**");
    expect(text).toContain("Rules \\*v2\\* \\[draft\\]\\(https://evil.example\\)**");
    expect(text).toContain("**tent**");
    expect(text).toContain("\\<\\@everyone\\> \\~\\~ever"); // ts_headline ends a fragment at a word
    expect(text).not.toContain("Recipes"); // no match
    expect(text).not.toContain("Another server"); // another guild's document
    expect(text).toContain("__Messages of this channel__");
    expect(text).toContain(`\`#${seq}\` **Alice**: who brings the **tent** & the \\*stove`);
  });

  it("links a document to its sourceUrl, without an embed", async () => {
    const reply = await command(OTHER_CHANNEL_ID, "search", [{ name: "text", type: 3, value: "sleeping bag" }]);
    expect(reply.data.content).toContain("**1. Packing list** <https://example.com/packing>\n> Bring a tent, a **sleeping** **bag**");
  });

  it("searches only documents in a channel that is not recorded, as many as the guild's rag.topK", async () => {
    await setSettings({ allowedChannels: [OTHER_CHANNEL_ID], rag: { enabled: true, topK: 1 } });
    await h.stop();
    await h.start(); // the cached settings go with the old adapter
    const reply = await command(THREAD_ID, "search", [{ name: "text", type: 3, value: "tent" }]);
    expect(isEphemeral(reply)).toBe(true);
    expect(reply.data.content.match(/^\*\*\d+\. /gm)).toHaveLength(1);
    expect(reply.data.content).toContain("This channel is not recorded, so no messages were searched.");
  });
});

describe("search replies", () => {
  it("turn <b> matches into bold, escape everything else, and merge neighbouring matches", () => {
    expect(highlightMarkdown("a <b>tent</b> for *two* <b>in</b><b>side</b> `x`")).toBe("a **tent** for \\*two\\* **inside** \\`x\\`");
    expect(highlightMarkdown("fish &amp; <b>chips</b> &lt;b&gt;")).toBe("fish & **chips** \\<b\\>");
    expect(highlightMarkdown("line one\n# two\n> three")).toBe("line one # two \\> three"); // nothing starts a line
    expect(escapeText("||spoiler|| __u__ <t:1:R> @here")).toBe("\\|\\|spoiler\\|\\| \\_\\_u\\_\\_ \\<t:1:R\\> \\@here");
    expect(highlightMarkdown(`${"x".repeat(400)} <b>late</b>`)).toHaveLength(300);
  });

  it("fit into one Discord message however many and long the hits, keeping both kinds", () => {
    const long = `${"word ".repeat(200)}<b>match</b> ${"*".repeat(300)}`;
    const data: SearchData = {
      documents: Array.from({ length: 50 }, (_, i) => ({
        score: 1,
        highlight: long,
        chunk: { id: `c${i}`, position: 0, content: long },
        document: { id: `d${i}`, title: `Document ${i} ${"t".repeat(300)}`, sourceUrl: `https://example.com/${"p".repeat(250)}` },
      })),
      messages: Array.from({ length: 50 }, (_, i) => ({ rank: 1, highlight: long, message: { id: `m${i}`, seq: i + 1, role: "USER", author: { displayName: "A".repeat(300) } } })),
    };
    const text = searchText("q".repeat(500), data);
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(text).toContain("**1. Document 0");
    expect(text).toContain("`#1`");
    expect(text).toMatch(/…and \d+ more hits/);
    expect(searchText("none", { documents: [], messages: [] })).toBe("Search for “none”\nNo documents of this server match.\nNo messages of this channel match.");
  });
});
