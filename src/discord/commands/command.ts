/**
 * The shape of a `/parley` subcommand, discord.js guide style: its definition and what it does. Handlers get
 * everything through the CommandContext; they talk to Parley only through the transport.
 */
import { MessageFlags, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from "discord.js";
import type { Transport } from "../transport";
import type { BindingData, GuildSettingsData } from "../operations";

export interface TranscriptFile {
  name: string;
  data: Buffer;
}

/** Produces the export file of a conversation; see transcript.ts. */
export type TranscriptSource = (transport: Transport, conversationId: string, format: "JSON" | "CSV") => Promise<TranscriptFile>;

export interface CommandContext {
  interaction: ChatInputCommandInteraction<"cached" | "raw">;
  transport: Transport;
  /** The conversation bound to this channel, if any. */
  binding: { conversationId: string } | undefined;
  /** Binds this channel (the poster starts), or unbinds it. */
  bind(binding: BindingData): void;
  unbind(): void;
  /** The Parley user of whoever ran the command (upserted by Discord id). */
  actor(): Promise<string>;
  /** The guild's settings (cached for a short while; null when none are stored). */
  guildSettings(): Promise<GuildSettingsData | null>;
  /** Whether the guild's allowedChannels let Parley serve this channel. */
  channelEnabled(): Promise<boolean>;
  transcripts: TranscriptSource;
}

export interface Subcommand {
  name: string;
  define(builder: SlashCommandSubcommandBuilder): SlashCommandSubcommandBuilder;
  /** Binding and unbinding need DISCORD_BIND_PERMISSION. */
  binds?: boolean;
  execute(ctx: CommandContext): Promise<void>;
}

/** A reply only the person who ran the command sees. */
export function whisper(ctx: CommandContext, content: string) {
  return ctx.interaction.reply({ content, flags: MessageFlags.Ephemeral });
}

export const NOT_BOUND = "Parley is not recording this channel. `/parley start` starts a conversation here.";

export const NOT_ENABLED = "Parley is not enabled in this channel: this server's Parley settings (allowedChannels) name the channels it serves.";
