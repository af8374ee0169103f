/**
 * Each guild's settings as the adapter sees them: read with guildConfig (the adapter's own key, like any client)
 * and kept for a short while, so a busy channel costs one read per guild per ttl rather than one per message.
 * A change made through the API therefore reaches the adapter within the ttl.
 */
import type { Transport } from "./transport";
import { GUILD_CONFIG, type GuildSettingsData } from "./operations";

/** @default for GuildConfigs' ttl */
export const GUILD_CONFIG_TTL_MS = 30_000;

/**
 * Whether the adapter serves a channel: every channel when allowedChannels is unset or empty, else the ones it
 * names and their threads (a thread belongs to the channel it was opened in).
 */
export function channelAllowed(settings: GuildSettingsData | null, channelId: string, parentId: string | null): boolean {
  const allowed = settings?.allowedChannels;
  if (!allowed?.length) return true;
  return allowed.includes(channelId) || (parentId !== null && allowed.includes(parentId));
}

export class GuildConfigs {
  private readonly cache = new Map<string, { readAt: number; settings: Promise<GuildSettingsData | null> }>();

  constructor(
    private readonly transport: Transport,
    private readonly ttlMs = GUILD_CONFIG_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The guild's settings (null: none stored). A read in flight is shared; a failed one is not kept. */
  settings(guildId: string): Promise<GuildSettingsData | null> {
    const cached = this.cache.get(guildId);
    if (cached && this.now() - cached.readAt < this.ttlMs) return cached.settings;
    const settings = this.transport
      .run<{ guildConfig: { settings: GuildSettingsData } | null }>(GUILD_CONFIG, { guildId })
      .then((data) => data.guildConfig?.settings ?? null);
    const entry = { readAt: this.now(), settings };
    this.cache.set(guildId, entry);
    settings.catch(() => {
      if (this.cache.get(guildId) === entry) this.cache.delete(guildId);
    });
    return settings;
  }

  /** channelAllowed with the guild's settings; channels outside any guild are not the settings' concern. */
  async allows(guildId: string | null, channelId: string, parentId: string | null): Promise<boolean> {
    return guildId === null || channelAllowed(await this.settings(guildId), channelId, parentId);
  }
}
