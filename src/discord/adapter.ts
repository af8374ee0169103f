/**
 * The Discord adapter: a discord.js client whose events become GraphQL operations on Parley's own schema
 * (see transport.ts), acting as one service identity (DISCORD_API_KEY, a service granted the DISCORD origin)
 * for the Discord users it relays. It runs inside `npm start` when DISCORD_TOKEN is set, or alone with
 * `npm run discord` against the same database.
 *
 * - Slash commands (`/parley start|stop|status|history|transcript|usage|search`) bind and unbind channels and
 *   answer questions; refusals and errors are ephemeral replies.
 * - Each guild's settings (guildConfig, cached for GUILD_CONFIG_TTL_MS) may name the channels it serves
 *   (allowedChannels): elsewhere `/parley start` is refused and new messages are not relayed.
 * - The relay stores what people write in bound channels (relay.ts), the posters post the assistant's replies
 *   (poster.ts) with 👍/👎 buttons, whose clicks become the clicking member's feedback (feedback.ts).
 * - On every (re)connection to the gateway (a start, a resumed session, a new session) the adapter reloads
 *   the bindings from Parley and backfills each bound channel, so nothing sent while it was away is missed.
 */
import {
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Partials,
  PermissionFlagsBits,
  type ChatInputCommandInteraction,
  type Interaction,
} from "discord.js";
import type { Logger } from "pino";
import type { DiscordConfig } from "../config";
import { createTransport, OperationError, type Transport, type TransportDeps } from "./transport";
import { BINDINGS, VIEWER, type BindingData } from "./operations";
import { ConversationPoster } from "./poster";
import { Relay } from "./relay";
import { DEFAULT_RETRY, retrying, type RetryPolicy } from "./retry";
import { userMessage } from "./replies";
import { COMMAND_NAME, SUBCOMMANDS } from "./commands";
import { whisper, type CommandContext, type TranscriptSource } from "./commands/command";
import { transcriptsFromParley } from "./commands/transcript";
import { GuildConfigs } from "./guild-configs";
import { onFeedbackClick } from "./feedback";

export interface DiscordAdapterOptions {
  /** What the transport needs: the server's schema, database, live hub, rate limiter, config and logger. */
  deps: TransportDeps;
  /** @default deps.config.discord */
  discord?: DiscordConfig;
  /** How failed writes are repeated. @default DEFAULT_RETRY */
  retry?: RetryPolicy;
  /** Where `/parley transcript` gets its file. @default transcriptsFromParley (createTranscript) */
  transcripts?: TranscriptSource;
  /** How long a guild's settings are used before they are read again. @default GUILD_CONFIG_TTL_MS (30 s) */
  guildConfigTtlMs?: number;
}

export interface DiscordAdapter {
  client: Client;
  /** Resolves when the bindings are loaded and the first backfill is queued. */
  ready: Promise<void>;
  /** Resolves when every queued relay step and every pending post has run as far as it can now (tests). */
  idle(): Promise<void>;
  dispose(): Promise<void>;
}

/** The bot's intents: server channels, their messages, and the text of those messages (a privileged intent). */
export const INTENTS = [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent];

class AdapterStartError extends Error {}

/** The permission bit DISCORD_BIND_PERMISSION names; undefined when anyone may bind. */
function bindPermission(name: string | undefined): bigint | undefined {
  if (name === undefined) return undefined;
  const bit = (PermissionFlagsBits as Record<string, bigint>)[name];
  if (bit === undefined) throw new AdapterStartError(`DISCORD_BIND_PERMISSION: Discord has no permission "${name}" (e.g. ManageChannels, or none)`);
  return bit;
}

/** Checks that the key works and may act for Discord users, before anything connects to Discord. */
async function checkIdentity(transport: Transport, log: Logger): Promise<void> {
  try {
    const { viewer } = await transport.run<{ viewer: { id: string; displayName: string; role: string } }>(VIEWER);
    log.info({ serviceUser: viewer.id, name: viewer.displayName }, "Discord adapter acts as this Parley user");
  } catch (error) {
    if (!(error instanceof OperationError)) throw error;
    const hint =
      error.code === "FORBIDDEN"
        ? "its user needs the DISCORD origin grant (grantService(input: { serviceId, origin: DISCORD }), or create the key with `npm run cli -- create-key --role service --name discord --grant discord`)"
        : "check DISCORD_API_KEY";
    throw new AdapterStartError(`The Discord adapter's API key was refused (${error.code}): ${hint}`);
  }
}

export async function startDiscordAdapter(options: DiscordAdapterOptions): Promise<DiscordAdapter> {
  const { deps } = options;
  const discord = options.discord ?? deps.config.discord;
  if (!discord) throw new AdapterStartError("The Discord adapter needs DISCORD_TOKEN and DISCORD_APPLICATION_ID");
  if (!discord.apiKey) {
    throw new AdapterStartError("DISCORD_API_KEY is not set: create one with `npm run cli -- create-key --role service --name discord --grant discord`");
  }
  const requiredPermission = bindPermission(discord.bindPermission);
  const log = deps.log.child({ component: "discord" });
  const retry = options.retry ?? DEFAULT_RETRY;
  const transcripts = options.transcripts ?? transcriptsFromParley;
  const transport = createTransport({ ...deps, log }, `Bearer ${discord.apiKey}`);
  await checkIdentity(transport, log);
  const guildConfigs = new GuildConfigs(transport, options.guildConfigTtlMs);

  const stopping = new AbortController();
  const client = new Client({
    intents: INTENTS,
    // Edits and deletions of messages sent before this process started arrive for uncached messages.
    partials: [Partials.Message, Partials.Channel],
    allowedMentions: { parse: [] },
    ...(discord.apiUrl ? { rest: { api: discord.apiUrl } } : {}),
  });

  const posters = new Map<string, ConversationPoster>(); // channel id → the poster of its conversation
  const posterDeps = {
    client,
    transport,
    log,
    retry,
    editIntervalMs: discord.editIntervalMs,
    signal: stopping.signal,
    onGone: (channelId: string) => unbind(channelId),
  };

  function bind(binding: BindingData): void {
    const current = posters.get(binding.channelId);
    if (current?.conversationId === binding.conversation.id) return;
    if (current) unbind(binding.channelId);
    const poster = new ConversationPoster(posterDeps, binding.conversation.id, binding.channelId, binding.resumeAfterSeq);
    posters.set(binding.channelId, poster);
    poster.start();
    log.info({ channelId: binding.channelId, conversationId: binding.conversation.id }, "channel bound");
  }

  function unbind(channelId: string): void {
    const poster = posters.get(channelId);
    if (!poster) return;
    posters.delete(channelId);
    void poster.stop();
    log.info({ channelId, conversationId: poster.conversationId }, "channel unbound");
  }

  const relay = new Relay({
    client,
    transport,
    log,
    retry,
    signal: stopping.signal,
    conversationOf: (channelId) => posters.get(channelId)?.conversationId,
    onUnbound: unbind,
    allows: (guildId, channelId, parentId) => guildConfigs.allows(guildId, channelId, parentId),
  });

  /** Every binding Parley has, page by page. */
  async function loadBindings(): Promise<BindingData[]> {
    const all: BindingData[] = [];
    for (let after: string | null = null; ; ) {
      type Page = { discordBindings: { edges: { node: BindingData }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
      const page: Page = await retrying(() => transport.run<Page>(BINDINGS, { after }), {
        policy: retry,
        signal: stopping.signal,
        onRetry: (error) => log.warn({ err: error }, "could not load the channel bindings; trying again"),
      });
      all.push(...page.discordBindings.edges.map((edge) => edge.node));
      if (!page.discordBindings.pageInfo.hasNextPage) return all;
      after = page.discordBindings.pageInfo.endCursor;
    }
  }

  /** After every (re)connection: the bindings as Parley has them now, and a backfill of each channel. */
  async function sync(): Promise<void> {
    const bindings = await loadBindings();
    const channels = new Set(bindings.map((binding) => binding.channelId));
    for (const channelId of [...posters.keys()]) if (!channels.has(channelId)) unbind(channelId); // archived or deleted elsewhere
    for (const binding of bindings) bind(binding);
    for (const binding of bindings) relay.backfill(binding.channelId);
    log.info({ channels: bindings.length }, "Discord bindings loaded; backfilling");
  }

  let syncing: Promise<void> = Promise.resolve();
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const resync = (why: string) => {
    log.info({ why }, "connected to the Discord gateway");
    syncing = syncing
      .then(sync)
      .then(() => markReady())
      .catch((error: unknown) => {
        if (!stopping.signal.aborted) log.error({ err: error }, "could not load the Discord bindings");
      });
  };

  async function onInteraction(interaction: Interaction): Promise<void> {
    if (interaction.isButton()) return void (await onFeedbackClick(interaction, { transport, log, userFor: (user, member) => relay.userFor(user, member) }));
    if (!interaction.isChatInputCommand() || interaction.commandName !== COMMAND_NAME) return;
    const sub = SUBCOMMANDS.find((candidate) => candidate.name === interaction.options.getSubcommand(false));
    try {
      if (!interaction.inGuild()) return void (await interaction.reply({ content: "Use `/parley` in a server channel.", flags: MessageFlags.Ephemeral }));
      const ctx = commandContext(interaction);
      if (!sub) return void (await whisper(ctx, "Unknown subcommand."));
      if (sub.binds && requiredPermission !== undefined && !interaction.memberPermissions.has(requiredPermission)) {
        return void (await whisper(ctx, `Only members with the ${discord!.bindPermission} permission can start or stop recording a channel.`));
      }
      await sub.execute(ctx);
    } catch (error) {
      log.warn({ err: error, command: sub?.name, channelId: interaction.channelId }, "a /parley command failed");
      if (interaction.replied || interaction.deferred) return;
      await interaction.reply({ content: userMessage(error), flags: MessageFlags.Ephemeral }).catch(() => undefined);
    }
  }

  function commandContext(interaction: ChatInputCommandInteraction<"cached" | "raw">): CommandContext {
    const conversationId = posters.get(interaction.channelId)?.conversationId;
    return {
      interaction,
      transport,
      binding: conversationId ? { conversationId } : undefined,
      bind,
      unbind: () => unbind(interaction.channelId),
      // A cached guild gives a GuildMember (with the server nickname); otherwise the user's own display name.
      actor: () => relay.userFor(interaction.user, interaction.inCachedGuild() ? interaction.member : undefined),
      guildSettings: () => guildConfigs.settings(interaction.guildId),
      channelEnabled: () => {
        const channel = interaction.channel;
        return guildConfigs.allows(interaction.guildId, interaction.channelId, channel?.isThread() ? channel.parentId : null);
      },
      transcripts,
    };
  }

  client.on(Events.ShardReady, () => resync("ready"));
  client.on(Events.ShardResume, () => resync("resumed"));
  client.on(Events.ShardDisconnect, (event) => log.warn({ code: event.code }, "disconnected from the Discord gateway"));
  client.on(Events.Error, (error) => log.error({ err: error }, "Discord client error"));
  client.on(Events.MessageCreate, (message) => relay.onCreate(message));
  client.on(Events.MessageUpdate, (_old, message) => relay.onUpdate(message));
  client.on(Events.MessageDelete, (message) => relay.onDelete(message));
  client.on(Events.MessageBulkDelete, (messages) => messages.forEach((message) => relay.onDelete(message)));
  client.on(Events.InteractionCreate, (interaction) => void onInteraction(interaction));

  try {
    await client.login(discord.token);
  } catch (error) {
    await client.destroy();
    throw error;
  }
  log.info({ user: client.user?.tag }, "Discord adapter logged in");

  return {
    client,
    ready,
    async idle() {
      await syncing;
      await relay.idle();
      await Promise.all([...posters.values()].map((poster) => poster.idle()));
    },
    async dispose() {
      stopping.abort();
      await client.destroy();
      await Promise.all([...posters.values()].map((poster) => poster.stop()));
      posters.clear();
      await relay.idle();
    },
  };
}
