/**
 * `npm run cli -- import-guild-configs FILE.json`: guild settings kept in a JSON file by an older bot (an object
 * of guild id → settings, the server_config.json of the bots Parley replaces) into server_configs.
 *
 * All or nothing: every entry is checked before anything is stored, and every bad one is reported. Each entry
 * replaces its guild's settings, through the same write as setGuildConfig (audited, nothing written when equal),
 * all in one transaction; the previous settings of every replaced guild are written to a backup file (in the
 * import's own shape, so importing the backup puts them back) before the first of them is replaced.
 */
import fs from "node:fs/promises";
import type { Knex } from "knex";
import { actorFor, type ActorDeps } from "../actor";
import { Role } from "../user/role.enum";
import { User } from "../user/user.model";
import type { Viewer } from "../user/viewer";
import { AppError, BadUserInputError } from "../../graphql/errors";
import { checkDiscordId } from "../../graphql/json-input";
import { checkSettings, sameJson, unknownLanguageMessage, unknownLanguages, writeSettings, type SettingsPatch, type WriteOutcome } from "./guild-config.service";
import type { GuildSettings } from "./guild-config.types";

/**
 * snake_case keys of older bots → where they go in the settings shape ([key] or [key, nested key]). A key given
 * both ways in one entry is refused rather than one silently winning.
 */
export const LEGACY_KEYS: Readonly<Record<string, readonly [string, string?]>> = {
  system_prompt: ["systemPrompt"],
  allowed_channels: ["allowedChannels"],
  rag_enabled: ["rag", "enabled"],
  top_k: ["rag", "topK"],
  cache_enabled: ["answerCache", "enabled"],
};

/** The entry with its legacy keys moved to their places in the settings shape. */
export function withCurrentKeys(entry: Record<string, unknown>): Record<string, unknown> {
  const result = { ...entry };
  for (const [legacy, [key, nested]] of Object.entries(LEGACY_KEYS)) {
    if (!Object.hasOwn(entry, legacy)) continue;
    if (Object.hasOwn(entry, key)) throw new BadUserInputError(`${legacy} and ${key} are the same setting: give one of them`, { field: `settings.${key}` });
    delete result[legacy];
    result[key] = nested ? { ...(result[key] as Record<string, unknown> | undefined), [nested]: entry[legacy] } : entry[legacy];
  }
  return result;
}

/** The file's entries were refused: nothing was stored. */
export class ImportRefusedError extends Error {
  override name = "ImportRefusedError";

  constructor(
    /** One line per problem: the file's, or a guild's. */
    readonly problems: string[],
    readonly entries: number,
  ) {
    super(`Nothing was imported: ${problems.length} problem(s) in ${entries} entries`);
  }
}

export interface ImportOptions {
  /** Compute and report everything, store nothing (no backup file either). */
  dryRun?: boolean;
  /** Where the previous settings of replaced guilds go. @default `<file>.replaced-<UTC time>.json` */
  backupPath?: string;
  /** The clock of the default backup name (tests). */
  now?: Date;
}

export interface ImportResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  dryRun: boolean;
  /** Where the replaced settings were written (or would be, on a dry run); null when nothing is replaced. */
  backupPath: string | null;
  /** The audit log entries of this import carry this request id. */
  requestId: string;
}

/**
 * The checked settings of the file's entries, and a line for each entry that is refused; a file that is not a
 * JSON object of entries is an ImportRefusedError.
 */
export function parseGuildConfigs(text: string): { entries: Map<string, SettingsPatch>; problems: string[]; count: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ImportRefusedError([`the file is not JSON: ${(error as Error).message}`], 0);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ImportRefusedError(["the file must hold a JSON object of guild id → settings object"], 0);
  }
  const entries = Object.entries(parsed);
  const problems: string[] = [];
  const checked = new Map<string, SettingsPatch>();
  for (const [guildId, raw] of entries) {
    try {
      checkDiscordId(guildId, `guild id "${guildId.slice(0, 40)}"`);
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new BadUserInputError("settings must be a JSON object");
      checked.set(guildId, checkSettings(withCurrentKeys(raw as Record<string, unknown>)));
    } catch (error) {
      if (!(error instanceof BadUserInputError)) throw error;
      problems.push(`guild ${guildId.slice(0, 40)}: ${error.message}`);
    }
  }
  return { entries: checked, problems, count: entries.length };
}

/** Rolls the transaction back after it computed everything (a dry run, or nothing to change). */
class NothingToStore extends Error {}

/** The administrator the CLI acts as: a user named "cli" with the admin role (made on first use, with no key). */
async function operator(trx: Knex.Transaction): Promise<Viewer> {
  let user = await User.query(trx).where({ displayName: "cli", role: Role.ADMIN }).orderBy("createdAt").first();
  user ??= await User.query(trx).insertAndFetch({ displayName: "cli", role: Role.ADMIN });
  return { id: user.id, role: Role.ADMIN, displayName: user.displayName };
}

const utcStamp = (date: Date) => date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z"); // 20261203T101500Z: no ':' for other file systems

export async function importGuildConfigFile(deps: ActorDeps, file: string, options: ImportOptions = {}): Promise<ImportResult> {
  const { entries, problems, count } = parseGuildConfigs(await fs.readFile(file, "utf8"));
  const unknown = new Set(await unknownLanguages(deps.db.knex, [...entries.values()].map((entry) => entry.settings.language)));
  for (const [guildId, { settings }] of entries) {
    if (unknown.has(settings.language!)) problems.push(`guild ${guildId}: settings.language: ${unknownLanguageMessage(settings.language!)}`);
  }
  if (problems.length) throw new ImportRefusedError(problems, count);

  const dryRun = options.dryRun ?? false;
  const backupPath = options.backupPath ?? `${file}.replaced-${utcStamp(options.now ?? new Date())}.json`;
  const outcomes: Record<WriteOutcome, string[]> = { created: [], updated: [], unchanged: [] };
  let requestId = "";
  let replaced = 0;
  try {
    await deps.db.knex.transaction(async (trx) => {
      const actor = actorFor(deps, await operator(trx));
      requestId = actor.requestId;
      const ids = [...entries.keys()];
      // Locked until the end: what the backup holds is what gets replaced.
      const stored: { guildId: string; settings: GuildSettings }[] = ids.length
        ? await trx("server_configs").whereIn("guildId", ids).forUpdate().select("guildId", "settings")
        : [];
      const previous = Object.fromEntries(stored.filter((row) => !sameJson(row.settings, entries.get(row.guildId)!.settings)).map((row) => [row.guildId, row.settings]));
      replaced = Object.keys(previous).length;
      if (replaced && !dryRun) {
        // "wx": an earlier backup of the same name is never overwritten; a failure here stops the import.
        await fs.writeFile(backupPath, `${JSON.stringify(previous, null, 2)}\n`, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
          throw error.code === "EEXIST" ? new Error(`The backup file ${backupPath} exists already: name another with --backup`) : error;
        });
      }
      for (const [guildId, patch] of entries) outcomes[(await writeSettings(actor, trx, guildId, patch, false)).outcome].push(guildId);
      if (dryRun || (!outcomes.created.length && !outcomes.updated.length)) throw new NothingToStore();
    });
  } catch (error) {
    if (!(error instanceof NothingToStore)) throw error instanceof AppError ? new ImportRefusedError([error.message], entries.size) : error;
  }
  return { ...outcomes, dryRun, backupPath: replaced ? backupPath : null, requestId };
}
