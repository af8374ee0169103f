/**
 * `npm run discord:register`: puts the `/parley` command into Discord, for one guild (shown there at once;
 * DISCORD_GUILD_ID or --guild) or globally (every server the bot is in; Discord may take up to an hour to
 * show it). Registering replaces the application's commands in that scope, so running it again is harmless.
 */
import { REST, Routes } from "discord.js";
import type { DiscordConfig } from "../config";
import { parleyCommand } from "./commands";

export interface Registration {
  scope: "guild" | "global";
  guildId?: string;
  commands: string[];
}

export async function registerCommands(discord: DiscordConfig, guildId: string | undefined): Promise<Registration> {
  const rest = new REST(discord.apiUrl ? { api: discord.apiUrl } : {}).setToken(discord.token);
  const route = guildId ? Routes.applicationGuildCommands(discord.applicationId, guildId) : Routes.applicationCommands(discord.applicationId);
  const registered = (await rest.put(route, { body: [parleyCommand().toJSON()] })) as { name: string }[];
  return { scope: guildId ? "guild" : "global", ...(guildId ? { guildId } : {}), commands: registered.map((command) => command.name) };
}
