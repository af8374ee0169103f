/**
 * The demo's assistant: a shared "Travel helper" (made by the admin Ada) with two versions. The trip
 * conversation pinned version 1 when it started, and its assistant messages name version 1; version 2 was
 * written an hour later, so the Sandbox shows a pin that kept what it used:
 *
 *   { conversation(id: "…c01") { assistant { version systemPrompt assistant { name currentVersionNumber } } } }
 *
 * Called by seeds/01_demo.ts inside its transaction, after the trip conversation and its messages exist.
 * Re-runnable: a shared assistant has no owner, so deleting the demo users does not remove it; it goes by its
 * fixed id here (its versions cascade, and the pins and attributions to them are set again below).
 */
import type { Knex } from "knex";

export const DEMO_ASSISTANT_IDS = {
  travelHelper: "00000000-0000-4000-8000-0000000a5501",
  travelHelperV1: "00000000-0000-4000-8000-0000000a5511",
  travelHelperV2: "00000000-0000-4000-8000-0000000a5512",
};

const FORECAST_TOOL = {
  type: "function",
  function: {
    name: "get_forecast",
    description: "The weather forecast for a city, one entry per day",
    parameters: {
      type: "object",
      properties: { city: { type: "string", description: "City name, e.g. Lisbon" }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city"],
    },
  },
};

const TRAIN_TOOL = {
  type: "function",
  function: {
    name: "get_train_times",
    description: "Direct trains between two cities on a date",
    parameters: {
      type: "object",
      properties: { from: { type: "string" }, to: { type: "string" }, date: { type: "string", format: "date" } },
      required: ["from", "to"],
    },
  },
};

const HOUR_MS = 3_600_000;

/** `ids` are the demo's (seeds/01_demo.ts): `ada` made the assistant, `trip` is the conversation that pins it. */
export async function seedAssistants(trx: Knex.Transaction, ids: Record<string, string>): Promise<void> {
  const now = Date.now();
  const { travelHelper, travelHelperV1, travelHelperV2 } = DEMO_ASSISTANT_IDS;
  // The touch trigger stamps now() on an update that leaves updated_at as it was; a millisecond later keeps
  // the demo's timeline (and the inbox's order) instead.
  const keepTime = { updated_at: trx.raw("updated_at + interval '1 millisecond'") };
  // Rows still pointing at the last run's versions are let go first: the delete's ON DELETE SET NULL would
  // touch them as of now.
  const versions = [travelHelperV1, travelHelperV2];
  await trx("conversations").whereIn("assistant_version_id", versions).update({ assistant_version_id: null, ...keepTime });
  await trx("messages").whereIn("assistant_version_id", versions).update({ assistant_version_id: null, ...keepTime });
  await trx("assistants").where({ id: travelHelper }).delete();
  await trx("assistants").insert({
    id: travelHelper,
    owner_id: null, // shared: every member sees it
    name: "Travel helper",
    description: "Compares destinations: weather first, then how to get there",
    is_active: true,
    current_version: 2,
    created_by: ids.ada,
    created_at: new Date(now - 30 * 24 * HOUR_MS),
    updated_at: new Date(now - HOUR_MS),
  });
  await trx("assistant_versions").insert([
    {
      id: travelHelperV1,
      assistant_id: travelHelper,
      version: 1,
      model: "gpt-4o-mini",
      system_prompt: "You are a concise travel assistant.", // what the trip conversation's system message says
      parameters: JSON.stringify({ temperature: 0.3, max_tokens: 400 }),
      tools: JSON.stringify([FORECAST_TOOL]),
      knowledge_scope: JSON.stringify({ kind: "global", guildId: null, userId: null }),
      created_by: ids.ada,
      created_at: new Date(now - 30 * 24 * HOUR_MS),
    },
    {
      id: travelHelperV2,
      assistant_id: travelHelper,
      version: 2,
      model: "gpt-4o-mini",
      system_prompt: "You are a concise travel assistant. When two cities are close, mention the train between them.",
      parameters: JSON.stringify({ temperature: 0.5, max_tokens: 400 }),
      tools: JSON.stringify([FORECAST_TOOL, TRAIN_TOOL]),
      knowledge_scope: JSON.stringify({ kind: "global", guildId: null, userId: null }),
      created_by: ids.ada,
      created_at: new Date(now - HOUR_MS),
    },
  ]);
  // Set directly, as the seed writes its rows directly: what pinAssistant and addMessage would have stored.
  await trx("conversations").where({ id: ids.trip }).update({ assistant_version_id: travelHelperV1, ...keepTime });
  await trx("messages").where({ conversation_id: ids.trip, role: "assistant" }).update({ assistant_version_id: travelHelperV1, ...keepTime });
}
