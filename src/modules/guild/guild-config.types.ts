import { Field, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";

/**
 * A Discord guild's settings as stored in server_configs.settings, after checkSettings (guild-config.service.ts).
 * Every key is optional: a guild without one uses the installation's behaviour.
 */
export interface GuildSettings {
  /** The model the guild's bot asks (at most 200 characters). */
  model?: string;
  /** Prepended to every conversation the bot has in the guild (at most 20,000 characters). */
  systemPrompt?: string;
  /** Answers from the guild's documents: whether, and how many chunks to use. */
  rag?: { enabled: boolean; topK: number };
  /** When set and not empty, the Discord adapter serves these channels (and their threads) only. */
  allowedChannels?: string[];
  /** Reuse of earlier answers to the same question, for ttlSeconds when given. */
  answerCache?: { enabled: boolean; ttlSeconds?: number };
  /** The text search configuration of the guild's searches (english, simple, ...). */
  language?: string;
}

@ObjectType({ description: "The settings of one Discord guild (admins, and services granted the DISCORD origin)" })
export class GuildConfig {
  @Field({ description: "The Discord guild (snowflake)" })
  guildId: string;

  @Field(() => JSONResolver, {
    description: "model, systemPrompt, rag { enabled topK }, allowedChannels, answerCache { enabled ttlSeconds }, language; each optional",
  })
  settings: GuildSettings;

  /** The user who made the last change; GraphQL's updatedBy resolves it (GuildConfigResolver). */
  updatedBy: string | null;

  @Field()
  createdAt: Date;

  @Field()
  updatedAt: Date;
}
