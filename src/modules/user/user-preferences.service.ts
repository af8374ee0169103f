/**
 * A user's preferences: a JSON object of known keys, each checked here before anything is stored, so that every
 * client (web, Discord, the CLI) can rely on what it reads back.
 *
 *   theme               "light" | "dark" | "system"
 *   language            a BCP 47 language tag ("en", "pt-BR"), stored in its canonical case
 *   defaultModel        a model name, 1 to 200 characters
 *   defaultAssistantId  a UUID (lower case)
 *   timeZone            an IANA time zone name ("Europe/Lisbon"), as Intl knows them
 *
 * A null value removes the key. Keys stored before this check existed are kept by a merge and dropped by a
 * replace.
 */
import type { Actor } from "../actor";
import { BadUserInputError, NotFoundError } from "../../graphql/errors";
import { checkJson } from "../../graphql/json-input";
import { UUID_PATTERN } from "../../graphql/scalars/uuid";
import { viewerOf } from "./viewer";
import { User } from "./user.model";

export const THEMES = ["light", "dark", "system"] as const;

export interface Preferences {
  theme?: (typeof THEMES)[number];
  language?: string;
  defaultModel?: string;
  defaultAssistantId?: string;
  timeZone?: string;
}

const bad = (key: string, expected: string) => new BadUserInputError(`preferences.${key} must be ${expected}`, { field: `preferences.${key}` });

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Each known key's check: the value to store, or a BAD_USER_INPUT naming the key. */
const CHECKS: Record<keyof Preferences, (value: unknown, key: string) => string> = {
  theme: (value, key) => {
    if (typeof value !== "string" || !(THEMES as readonly string[]).includes(value)) throw bad(key, `one of ${THEMES.map((t) => `"${t}"`).join(", ")}`);
    return value;
  },
  language: (value, key) => {
    // Intl accepts private-use and grandfathered forms too; the pattern keeps to language[-script][-region][-variant…].
    if (typeof value !== "string" || value.length > 35 || !/^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$/.test(value)) throw bad(key, 'a BCP 47 language tag such as "en" or "pt-BR"');
    try {
      return Intl.getCanonicalLocales(value)[0];
    } catch {
      throw bad(key, 'a BCP 47 language tag such as "en" or "pt-BR"');
    }
  },
  defaultModel: (value, key) => {
    const length = typeof value === "string" ? [...value.trim()].length : 0;
    if (typeof value !== "string" || length < 1 || length > 200) throw bad(key, "a model name of 1 to 200 characters");
    return value.trim();
  },
  defaultAssistantId: (value, key) => {
    if (typeof value !== "string" || !UUID_PATTERN.test(value)) throw bad(key, "a UUID");
    return value.toLowerCase();
  },
  timeZone: (value, key) => {
    if (typeof value !== "string" || value.length > 64 || !isTimeZone(value)) throw bad(key, 'an IANA time zone name such as "Europe/Lisbon"');
    return value;
  },
};

/** The checked preferences to set, and the keys to remove (given as null). Throws on the first bad key. */
export function checkPreferences(input: unknown): { set: Preferences; remove: string[] } {
  checkJson(input, "preferences", "object");
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (!Object.hasOwn(CHECKS, key)) {
      throw new BadUserInputError(`preferences.${key.slice(0, 64)} is not a known preference (${Object.keys(CHECKS).join(", ")})`, { field: `preferences.${key.slice(0, 64)}` });
    }
    if (value === null) remove.push(key);
    else set[key] = CHECKS[key as keyof Preferences](value, key);
  }
  return { set, remove };
}

/** Sets the viewer's own preferences: merged into what is stored (default), or replacing all of it. */
export async function updatePreferences(ctx: Actor, input: unknown, merge: boolean): Promise<User> {
  const viewer = viewerOf(ctx);
  const { set, remove } = checkPreferences(input);
  const knex = ctx.db.knex;
  // One statement: a concurrent update of another key is merged, not overwritten with a stale copy.
  const preferences = merge
    ? knex.raw("(preferences || ?::jsonb) - ?::text[]", [JSON.stringify(set), remove])
    : JSON.stringify(set);
  const [user] = (await User.query(knex).patch({ preferences } as never).where("id", viewer.id).returning("*")) as unknown as User[];
  if (!user) throw new NotFoundError("User");
  ctx.loaders.userById.clear(viewer.id).prime(viewer.id, user);
  // As Query.viewer answers: a key limited to a lower role shows that role.
  return user.role === viewer.role ? user : Object.assign(user.$clone(), { role: viewer.role });
}
