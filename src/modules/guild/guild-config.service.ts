/**
 * Per-guild settings (server_configs): read and written by admins and services granted the DISCORD origin
 * (assertGuildAccess), each change audited with the settings before and after in the change's transaction. A write
 * that would store what is stored already changes nothing: no audit entry, no new updatedAt.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { assertGuildAccess } from "../knowledge/scope";
import { audit } from "../audit/audit.service";
import { BadUserInputError } from "../../graphql/errors";
import { checkDiscordId, checkJson } from "../../graphql/json-input";
import { GuildConfig, type GuildSettings } from "./guild-config.types";

/** What a JSON value must be: one node of SETTINGS_SHAPE. */
type Rule =
  | { kind: "string"; min?: number; max: number; pattern?: RegExp; what?: string }
  | { kind: "boolean" }
  | { kind: "int"; min: number; max?: number }
  | { kind: "list"; of: Rule; max: number }
  | { kind: "object"; fields: Record<string, Rule>; required?: readonly string[] };

/** The largest whole number every consumer (a SQL integer, an interval in seconds) takes as it is. */
const INT_MAX = 2_147_483_647;

const SNOWFLAKE: Rule = { kind: "string", max: 25, pattern: /^\d{1,25}$/, what: "a Discord channel id (digits)" };

/** The shape settings must have, as data: checkSettings walks it, so the rules and their messages cannot drift apart. */
export const SETTINGS_SHAPE = {
  kind: "object",
  fields: {
    model: { kind: "string", min: 1, max: 200 },
    systemPrompt: { kind: "string", max: 20_000 },
    rag: { kind: "object", fields: { enabled: { kind: "boolean" }, topK: { kind: "int", min: 1, max: 50 } }, required: ["enabled", "topK"] },
    allowedChannels: { kind: "list", of: SNOWFLAKE, max: 500 },
    answerCache: { kind: "object", fields: { enabled: { kind: "boolean" }, ttlSeconds: { kind: "int", min: 1 } }, required: ["enabled"] },
    // The documents table's own rule for a language; whether PostgreSQL knows it is checkLanguage's.
    language: { kind: "string", max: 63, pattern: /^[a-z_][a-z0-9_]{0,62}$/, what: "a text search configuration name such as english or simple" },
  },
} as const satisfies Rule;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const unknownKey = (path: string, key: string, known: string[]) =>
  new BadUserInputError(`${path}.${key} is not a setting; the ones there are: ${known.join(", ")}`, { field: `${path}.${key}` });

/** Throws BAD_USER_INPUT naming the first place (`path`) where `value` breaks `rule`; returns the value as stored. */
function conform(rule: Rule, value: unknown, path: string): unknown {
  const refuse = (message: string): never => {
    throw new BadUserInputError(`${path} ${message}`, { field: path });
  };
  switch (rule.kind) {
    case "string": {
      if (typeof value !== "string") return refuse("must be a string");
      // Counted as PostgreSQL counts text: in code points.
      const length = [...value].length;
      if (length < (rule.min ?? 0) || length > rule.max) return refuse(`must be ${rule.min ?? 0} to ${rule.max} characters long`);
      if (rule.pattern && !rule.pattern.test(value)) return refuse(`must be ${rule.what}`);
      return value;
    }
    case "boolean":
      return typeof value === "boolean" ? value : refuse("must be true or false");
    case "int": {
      const max = rule.max ?? INT_MAX;
      if (typeof value !== "number" || !Number.isInteger(value) || value < rule.min || value > max) return refuse(`must be a whole number from ${rule.min} to ${max}`);
      return value;
    }
    case "list": {
      if (!Array.isArray(value)) return refuse("must be a list");
      if (value.length > rule.max) return refuse(`must have at most ${rule.max} items`);
      // The same item twice means nothing more than once: kept once, so equal settings compare equal.
      return [...new Set(value.map((item, index) => conform(rule.of, item, `${path}[${index}]`)))];
    }
    case "object": {
      if (!isObject(value)) return refuse("must be a JSON object");
      const known = Object.keys(rule.fields);
      const result: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (!Object.hasOwn(rule.fields, key)) throw unknownKey(path, key, known);
        result[key] = conform(rule.fields[key], item, `${path}.${key}`);
      }
      for (const key of rule.required ?? []) if (!(key in result)) throw new BadUserInputError(`${path}.${key} is required`, { field: `${path}.${key}` });
      return result;
    }
  }
}

export interface SettingsPatch {
  /** The settings given, checked. */
  settings: GuildSettings;
  /** Top-level keys given as null: not set (removed by a merge). */
  unset: string[];
}

/**
 * Checks client-supplied settings against SETTINGS_SHAPE (unknown keys, types, ranges; BAD_USER_INPUT naming the
 * key). A top-level null means "not set", so that a merge can remove a key.
 */
export function checkSettings(value: unknown, field = "settings"): SettingsPatch {
  checkJson(value, field, "object"); // size, depth and NUL bounds before anything walks it
  const given = Object.entries(value as Record<string, unknown>);
  const unset = given.filter(([, item]) => item === null).map(([key]) => key);
  for (const key of unset) if (!Object.hasOwn(SETTINGS_SHAPE.fields, key)) throw unknownKey(field, key, Object.keys(SETTINGS_SHAPE.fields));
  const settings = conform(SETTINGS_SHAPE, Object.fromEntries(given.filter(([, item]) => item !== null)), field) as GuildSettings;
  return { settings, unset };
}

/** The languages among `languages` that PostgreSQL has no text search configuration of. */
export async function unknownLanguages(knex: Knex, languages: (string | undefined)[]): Promise<string[]> {
  const wanted = [...new Set(languages.filter((language): language is string => language !== undefined))];
  if (!wanted.length) return [];
  const known = new Set<string>(await knex("pg_ts_config").whereIn("cfgname", wanted).pluck("cfgname"));
  return wanted.filter((language) => !known.has(language));
}

export const unknownLanguageMessage = (language: string) =>
  `PostgreSQL has no text search configuration "${language}" (psql's \\dF lists them; e.g. english, simple)`;

/** BAD_USER_INPUT for a language PostgreSQL does not know: every search in it would fail. */
async function checkLanguage(knex: Knex, language: string | undefined): Promise<void> {
  const [unknown] = await unknownLanguages(knex, [language]);
  if (unknown !== undefined) throw new BadUserInputError(`settings.language: ${unknownLanguageMessage(unknown)}`, { field: "settings.language" });
}

/** Equal as JSON values, whatever the order of object keys (jsonb does not keep it). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => sameJson(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && sameJson(a[key], b[key]));
  }
  return a === b;
}

interface ConfigRow {
  guildId: string;
  settings: GuildSettings;
  updatedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const toConfig = (row: ConfigRow): GuildConfig => Object.assign(new GuildConfig(), row);

export type WriteOutcome = "created" | "updated" | "unchanged";

/**
 * Stores a guild's settings inside `trx`: `patch` replaces the stored ones, or with `merge` its top-level keys
 * replace theirs. Audited as guild_config.set with before and after; nothing is written when they are equal.
 * A first write racing another for the same guild loses with CONFLICT (the primary key), never half-merged.
 */
export async function writeSettings(
  ctx: Actor,
  trx: Knex.Transaction,
  guildId: string,
  patch: SettingsPatch,
  merge: boolean,
): Promise<{ outcome: WriteOutcome; before: GuildSettings | null; config: GuildConfig }> {
  const viewer = viewerOf(ctx);
  const stored: ConfigRow | undefined = await trx("server_configs").where({ guildId }).forUpdate().first();
  const before = stored?.settings ?? null;
  const after: Record<string, unknown> = merge ? { ...before, ...patch.settings } : { ...patch.settings };
  for (const key of patch.unset) delete after[key];
  if (stored && sameJson(before, after)) return { outcome: "unchanged", before, config: toConfig(stored) };
  const values = { settings: JSON.stringify(after), updatedBy: viewer.id };
  const [row]: ConfigRow[] = stored
    ? await trx("server_configs").where({ guildId }).update(values).returning("*")
    : await trx("server_configs").insert({ guildId, ...values }).returning("*");
  await audit(ctx, { action: "guild_config.set", targetType: "guild", targetId: guildId, details: { before, after } }, trx);
  return { outcome: stored ? "updated" : "created", before, config: toConfig(row) };
}

/** The guild's settings; null when none are stored. */
export async function guildConfig(ctx: Actor, guildId: string): Promise<GuildConfig | null> {
  await assertGuildAccess(ctx);
  checkDiscordId(guildId, "guildId");
  const row: ConfigRow | undefined = await ctx.db.knex("server_configs").where({ guildId }).first();
  return row ? toConfig(row) : null;
}

/** Replaces the guild's settings, or with `merge` sets the top-level keys given (null removes one). */
export async function setGuildConfig(ctx: Actor, guildId: string, settings: unknown, merge: boolean): Promise<GuildConfig> {
  await assertGuildAccess(ctx);
  checkDiscordId(guildId, "guildId");
  const patch = checkSettings(settings);
  await checkLanguage(ctx.db.knex, patch.settings.language);
  return ctx.db.knex.transaction(async (trx) => (await writeSettings(ctx, trx, guildId, patch, merge)).config);
}

/** Removes the guild's settings: true when there were some, false when none were stored. */
export async function deleteGuildConfig(ctx: Actor, guildId: string): Promise<boolean> {
  await assertGuildAccess(ctx);
  checkDiscordId(guildId, "guildId");
  return ctx.db.knex.transaction(async (trx) => {
    const [row]: ConfigRow[] = await trx("server_configs").where({ guildId }).delete().returning("*");
    if (!row) return false;
    await audit(ctx, { action: "guild_config.delete", targetType: "guild", targetId: guildId, details: { before: row.settings, after: null } }, trx);
    return true;
  });
}
