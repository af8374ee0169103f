/**
 * Per-guild settings over HTTP: guildConfig, setGuildConfig (replace and merge) and deleteGuildConfig, for admins
 * and DISCORD-granted services only; every change audited with before and after in its transaction, and a write
 * of what is stored already changing nothing.
 */
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let admin: TestUser;
let bot: TestUser; // a service granted DISCORD: the guild's bot
let worker: TestUser; // a service granted WEB only
let member: TestUser;
let counter = 0;
const guild = () => String(900_000_000_000_000_000n + BigInt(++counter));

const GET = `query($g: String!) { guildConfig(guildId: $g) { guildId settings createdAt updatedAt updatedBy { id displayName } } }`;
const SET = `mutation($g: String!, $s: JSON!, $m: Boolean) { setGuildConfig(guildId: $g, settings: $s, merge: $m) { guildId settings updatedAt updatedBy { id } } }`;
const SET_DEFAULT = `mutation($g: String!, $s: JSON!) { setGuildConfig(guildId: $g, settings: $s) { settings } }`;
const DELETE = `mutation($g: String!) { deleteGuildConfig(guildId: $g) }`;

const FULL = {
  model: "gpt-4o-mini",
  systemPrompt: "Answer briefly.",
  rag: { enabled: true, topK: 8 },
  allowedChannels: ["100000000000000011", "100000000000000012"],
  answerCache: { enabled: true, ttlSeconds: 3600 },
  language: "english",
};

const audits = (guildId: string) => app.database.db.knex("audit_logs").where({ targetType: "guild", targetId: guildId }).select("action", "actorId", "details");

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN, "admin");
  bot = await app.makeUser(Role.SERVICE, "discord bot");
  await app.grant(bot, { origin: "discord" });
  worker = await app.makeUser(Role.SERVICE, "web worker");
  await app.grant(worker, { origin: "web" });
  member = await app.makeUser(Role.MEMBER, "member");
});
afterAll(() => app.dispose());

describe("guildConfig", () => {
  it("is null for a guild without settings, and the stored settings with who changed them last", async () => {
    const g = guild();
    expect((await app.ok(GET, { g }, bot.token)).guildConfig).toBeNull();
    await app.ok(SET, { g, s: FULL }, bot.token);
    const { guildConfig } = await app.ok(GET, { g }, admin.token);
    expect(guildConfig).toEqual({
      guildId: g,
      settings: FULL,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      updatedBy: { id: bot.user.id, displayName: "discord bot" },
    });
  });

  it("never answers for one guild with another guild's settings", async () => {
    const [a, b, c] = [guild(), guild(), guild()];
    await app.ok(SET, { g: a, s: { model: "model-a" } }, admin.token);
    await app.ok(SET, { g: b, s: { model: "model-b" } }, admin.token);
    expect((await app.ok(GET, { g: a }, bot.token)).guildConfig).toMatchObject({ guildId: a, settings: { model: "model-a" } });
    expect((await app.ok(GET, { g: b }, bot.token)).guildConfig).toMatchObject({ guildId: b, settings: { model: "model-b" } });
    expect((await app.ok(GET, { g: c }, bot.token)).guildConfig).toBeNull();
    // Deleting one leaves the other.
    expect((await app.ok(DELETE, { g: a }, bot.token)).deleteGuildConfig).toBe(true);
    expect((await app.ok(GET, { g: a }, bot.token)).guildConfig).toBeNull();
    expect((await app.ok(GET, { g: b }, bot.token)).guildConfig).toMatchObject({ settings: { model: "model-b" } });
  });

  it("is refused to members and to services not granted DISCORD, for reading and for every change", async () => {
    const g = guild();
    await app.ok(SET, { g, s: { model: "secret" } }, admin.token);
    for (const who of [member, worker]) {
      expect(await app.errorCode(GET, { g }, who.token)).toBe("FORBIDDEN");
      expect(await app.errorCode(SET, { g, s: { model: "theirs" } }, who.token)).toBe("FORBIDDEN");
      expect(await app.errorCode(DELETE, { g }, who.token)).toBe("FORBIDDEN");
    }
    expect(await app.errorCode(GET, { g })).toBe("UNAUTHENTICATED");
    expect((await app.ok(GET, { g }, admin.token)).guildConfig.settings).toEqual({ model: "secret" });
    expect((await audits(g)).map((row) => row.action)).toEqual(["guild_config.set"]);
  });

  it("refuses a guild id that is not a snowflake", async () => {
    expect(await app.errorCode(GET, { g: "general" }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(SET, { g: "12a", s: {} }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(DELETE, { g: "" }, admin.token)).toBe("BAD_USER_INPUT");
  });
});

describe("setGuildConfig", () => {
  it("refuses settings of another shape with BAD_USER_INPUT naming the setting, and stores nothing", async () => {
    const g = guild();
    const cases: [unknown, string][] = [
      [{ temperature: 0.2 }, "settings.temperature"],
      [{ model: "m", systemprompt: "x" }, "settings.systemprompt"],
      [{ rag: { enabled: true, topK: 5, mode: "hybrid" } }, "settings.rag.mode"],
      [{ model: "" }, "settings.model"],
      [{ model: "m".repeat(201) }, "settings.model"],
      [{ model: 4 }, "settings.model"],
      [{ systemPrompt: "p".repeat(20_001) }, "settings.systemPrompt"],
      [{ rag: { enabled: "yes", topK: 5 } }, "settings.rag.enabled"],
      [{ rag: { enabled: true, topK: 0 } }, "settings.rag.topK"],
      [{ rag: { enabled: true, topK: 51 } }, "settings.rag.topK"],
      [{ rag: { enabled: true, topK: 2.5 } }, "settings.rag.topK"],
      [{ rag: { enabled: true } }, "settings.rag.topK"],
      [{ rag: true }, "settings.rag"],
      [{ allowedChannels: "100000000000000011" }, "settings.allowedChannels"],
      [{ allowedChannels: ["100000000000000011", "general"] }, "settings.allowedChannels[1]"],
      [{ allowedChannels: Array.from({ length: 501 }, (_, i) => String(100000000000000000n + BigInt(i))) }, "settings.allowedChannels"],
      [{ answerCache: { ttlSeconds: 60 } }, "settings.answerCache.enabled"],
      [{ answerCache: { enabled: true, ttlSeconds: 0 } }, "settings.answerCache.ttlSeconds"],
      [{ language: "English" }, "settings.language"],
      [{ language: "english; drop table users" }, "settings.language"],
      [{ language: "klingon" }, "settings.language"], // well formed, but PostgreSQL has no such configuration
      [{ unknown: null }, "settings.unknown"],
      [["model"], "settings"],
      [{ model: "a\u0000b" }, "settings"],
    ];
    for (const [settings, field] of cases) {
      const { body } = await app.gql(SET, { g, s: settings }, admin.token);
      expect([JSON.stringify(settings).slice(0, 80), body.errors?.[0]?.extensions]).toEqual([
        JSON.stringify(settings).slice(0, 80),
        expect.objectContaining({ code: "BAD_USER_INPUT", field }),
      ]);
      expect(body.errors![0].message).toContain(field);
    }
    expect((await app.ok(GET, { g }, admin.token)).guildConfig).toBeNull();
    expect(await audits(g)).toEqual([]);
  });

  it("replaces the stored settings by default, and merges top-level keys with merge: true (null removes one)", async () => {
    const g = guild();
    await app.ok(SET, { g, s: FULL }, admin.token);
    // Replace (merge left out): only what is given remains.
    expect((await app.ok(SET_DEFAULT, { g, s: { model: "other" } }, admin.token)).setGuildConfig.settings).toEqual({ model: "other" });
    expect((await app.ok(SET, { g, s: { rag: { enabled: true, topK: 3 } }, m: false }, admin.token)).setGuildConfig.settings).toEqual({ rag: { enabled: true, topK: 3 } });

    // Merge: keys given replace theirs whole (rag is not merged key by key), the others stay.
    await app.ok(SET, { g, s: { model: "m1", language: "simple" }, m: true }, admin.token);
    const merged = (await app.ok(SET, { g, s: { rag: { enabled: false, topK: 9 }, allowedChannels: ["100000000000000011"] }, m: true }, admin.token)).setGuildConfig;
    expect(merged.settings).toEqual({ model: "m1", language: "simple", rag: { enabled: false, topK: 9 }, allowedChannels: ["100000000000000011"] });
    const removed = (await app.ok(SET, { g, s: { language: null, model: "m2" }, m: true }, admin.token)).setGuildConfig;
    expect(removed.settings).toEqual({ model: "m2", rag: { enabled: false, topK: 9 }, allowedChannels: ["100000000000000011"] });
    expect((await app.ok(GET, { g }, bot.token)).guildConfig.settings).toEqual(removed.settings);

    // Merge into nothing stored is a create.
    const fresh = guild();
    expect((await app.ok(SET, { g: fresh, s: { model: "x" }, m: true }, bot.token)).setGuildConfig.settings).toEqual({ model: "x" });
  });

  it("audits every change with the settings before and after, and by whom", async () => {
    const g = guild();
    await app.ok(SET, { g, s: { model: "a" } }, admin.token);
    await app.ok(SET, { g, s: { language: "simple" }, m: true }, bot.token);
    await app.ok(DELETE, { g }, admin.token);
    const entries = await audits(g);
    // Compared as a set: three changes within one millisecond would share created_at.
    expect(entries).toHaveLength(3);
    expect(entries).toEqual(
      expect.arrayContaining([
        { action: "guild_config.set", actorId: admin.user.id, details: { before: null, after: { model: "a" } } },
        { action: "guild_config.set", actorId: bot.user.id, details: { before: { model: "a" }, after: { model: "a", language: "simple" } } },
        { action: "guild_config.delete", actorId: admin.user.id, details: { before: { model: "a", language: "simple" }, after: null } },
      ]),
    );
    // Nothing stored: nothing to delete, nothing audited.
    expect((await app.ok(DELETE, { g }, admin.token)).deleteGuildConfig).toBe(false);
    expect(await audits(g)).toHaveLength(3);
    // A refused change leaves no audit entry behind.
    expect(await app.errorCode(SET, { g, s: { language: "klingon" } }, admin.token)).toBe("BAD_USER_INPUT");
    expect(await audits(g)).toHaveLength(3);
  });

  it("changes nothing, audits nothing and keeps updatedAt when the settings are those stored (in any key order)", async () => {
    const g = guild();
    const first = (await app.ok(SET, { g, s: { rag: { enabled: true, topK: 4 }, model: "m" } }, admin.token)).setGuildConfig;
    await new Promise((resolve) => setTimeout(resolve, 20)); // a new updatedAt would differ
    const again = (await app.ok(SET, { g, s: { model: "m", rag: { topK: 4, enabled: true } } }, bot.token)).setGuildConfig;
    expect(again).toEqual(first); // updatedBy too: the bot changed nothing
    const merged = (await app.ok(SET, { g, s: { model: "m" }, m: true }, bot.token)).setGuildConfig;
    expect(merged).toEqual(first);
    expect(await audits(g)).toHaveLength(1);
    const changed = (await app.ok(SET, { g, s: { model: "n" }, m: true }, bot.token)).setGuildConfig;
    expect(changed.updatedAt > first.updatedAt).toBe(true);
    expect(changed.updatedBy).toEqual({ id: bot.user.id });
    expect(await audits(g)).toHaveLength(2);
  });

  it("keeps a channel named twice once", async () => {
    const g = guild();
    const { setGuildConfig } = await app.ok(SET, { g, s: { allowedChannels: ["100000000000000011", "100000000000000011", "100000000000000012"] } }, admin.token);
    expect(setGuildConfig.settings.allowedChannels).toEqual(["100000000000000011", "100000000000000012"]);
  });
});
