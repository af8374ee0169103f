/**
 * Batch functions of the assistant loaders (modules/loaders.ts): Conversation.assistant and Message.assistant
 * over a list cost one statement for all the versions, and their assistants come in the same statement.
 */
import type { Knex } from "knex";
import { rowSplitter } from "../../db/embed";
import { Assistant, AssistantVersion } from "./assistant.types";

// Not loaders.ts's mapTo/mapToMany: loaders.ts imports this file.
function aligned<V>(keys: readonly string[], rows: readonly V[], keyOf: (row: V) => string): (V | undefined)[] {
  const byKey = new Map(rows.map((row) => [keyOf(row), row]));
  return keys.map((key) => byKey.get(key));
}

/**
 * The assistant's columns under the `assistant.` prefix, named here rather than read from the table's metadata
 * (db/embed.ts): that read would cost the first request of a process a statement. A column added later is left
 * out of the primed row, which then lacks it until the next read by id.
 */
const ASSISTANT_PROPERTIES = ["id", "ownerId", "name", "description", "isActive", "currentVersion", "createdBy", "createdAt", "updatedAt"];

/**
 * Versions by id, each with its assistant (which `assistant` receives, to prime its loader): a pinned version
 * is almost always shown with its assistant's name.
 */
export async function assistantVersionsById(knex: Knex, ids: readonly string[], assistant: (row: Assistant) => void): Promise<(AssistantVersion | undefined)[]> {
  const rows: Record<string, unknown>[] = await knex
    .select("v.*", ...ASSISTANT_PROPERTIES.map((property) => knex.raw(`?? as "assistant.${property}"`, [`a.${property}`])))
    .from("assistant_versions as v")
    .join("assistants as a", "a.id", "v.assistant_id")
    .whereRaw("v.id = any(?::uuid[])", [[...ids]]);
  const split = rowSplitter(rows.length ? Object.keys(rows[0]) : []);
  const versions = rows.map((row) => {
    const { base, embedded } = split(row);
    assistant(Assistant.fromDatabaseJson(embedded.get("assistant")!));
    return AssistantVersion.fromDatabaseJson(base);
  });
  return aligned(ids, versions, (version) => version.id);
}

export async function assistantsById(knex: Knex, ids: readonly string[]): Promise<(Assistant | undefined)[]> {
  return aligned(ids, await Assistant.query(knex).findByIds(ids as string[]), (row) => row.id);
}

/** Every version of each assistant, oldest first. */
export async function versionsByAssistantId(knex: Knex, ids: readonly string[]): Promise<AssistantVersion[][]> {
  const rows = await AssistantVersion.query(knex).whereIn("assistantId", ids as string[]).orderBy(["assistantId", "version"]);
  return ids.map((id) => rows.filter((row) => row.assistantId === id));
}
