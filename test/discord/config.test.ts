/**
 * The Discord settings: off unless DISCORD_TOKEN is set, and checked at start when on, so a typo stops the
 * start with a message naming the setting instead of a bot that silently does nothing.
 */
import { loadConfig } from "../../src/config";
import { startDiscordAdapter } from "../../src/discord/adapter";
import type { TransportDeps } from "../../src/discord/transport";

const base = { PGLITE_DIR: "memory://" };
const on = { ...base, DISCORD_TOKEN: "t", DISCORD_APPLICATION_ID: "123", DISCORD_API_KEY: "pk_x" };

it("is off without DISCORD_TOKEN, and on with its defaults when set", () => {
  expect(loadConfig({ ...base, DISCORD_APPLICATION_ID: "123" }).discord).toBeUndefined();
  expect(loadConfig(on).discord).toEqual({
    token: "t",
    applicationId: "123",
    apiKey: "pk_x",
    guildId: undefined,
    bindPermission: "ManageChannels",
    editIntervalMs: 1000,
    apiUrl: undefined,
  });
  expect(loadConfig({ ...on, DISCORD_BIND_PERMISSION: "none" }).discord?.bindPermission).toBeUndefined();
});

it.each([
  [{ DISCORD_APPLICATION_ID: "" }, "DISCORD_APPLICATION_ID"],
  [{ DISCORD_GUILD_ID: "my-server" }, "DISCORD_GUILD_ID"],
  [{ DISCORD_BIND_PERMISSION: "Manage Channels" }, "DISCORD_BIND_PERMISSION"],
  [{ DISCORD_EDIT_INTERVAL_MS: "soon" }, "DISCORD_EDIT_INTERVAL_MS"],
  [{ DISCORD_API_URL: "127.0.0.1:9" }, "DISCORD_API_URL"],
])("refuses %j naming the setting", (env, name) => {
  expect(() => loadConfig({ ...on, ...env })).toThrow(name);
});

it("refuses to start the adapter without an API key, or with a permission Discord does not have", async () => {
  const start = (env: Record<string, string>) => startDiscordAdapter({ deps: { config: loadConfig({ ...on, ...env }) } as TransportDeps });
  await expect(start({ DISCORD_API_KEY: "" })).rejects.toThrow("DISCORD_API_KEY is not set");
  await expect(start({ DISCORD_BIND_PERMISSION: "ManageChanels" })).rejects.toThrow('Discord has no permission "ManageChanels"');
});
