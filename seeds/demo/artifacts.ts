/**
 * The demo's artifact: a small code artifact on the trip conversation's final assistant answer, in two
 * versions, so the Sandbox shows a history at once:
 *
 *   { artifact(id: "00000000-0000-4000-8000-0000000a7702") { version content parent { version } versions { version title } } }
 *
 * Inline text only: the seed runs without the server's storage backend, so it writes no files. Called by
 * seeds/01_demo.ts inside its transaction, after the trip conversation and its messages exist. Re-runnable:
 * deleting the demo users removes their conversations, and the artifacts with them (cascade).
 */
import type { Knex } from "knex";

export const DEMO_ARTIFACT_IDS = {
  v1: "00000000-0000-4000-8000-0000000a7701",
  v2: "00000000-0000-4000-8000-0000000a7702",
};

const V1 = `def pick_city(forecasts: dict[str, list[int]]) -> str:
    """The city with the warmest average forecast."""
    return max(forecasts, key=lambda city: sum(forecasts[city]) / len(forecasts[city]))
`;

const V2 = `def pick_city(forecasts: dict[str, list[int]], rain: dict[str, float] | None = None) -> str:
    """The city with the warmest average forecast, less 5 °C per unit of rain chance."""
    rain = rain or {}

    def score(city: str) -> float:
        temps = forecasts[city]
        return sum(temps) / len(temps) - 5 * rain.get(city, 0.0)

    return max(forecasts, key=score)
`;

/** `ids.trip` is the trip conversation, `ids.worker` the service that wrote its answers. */
export async function seedArtifacts(trx: Knex.Transaction, ids: Record<string, string>): Promise<void> {
  const answer = await trx("messages")
    .where({ conversation_id: ids.trip, role: "assistant" })
    .orderBy("seq", "desc")
    .first("id", "created_at");
  if (!answer) throw new Error("seedArtifacts needs the trip conversation's assistant messages");
  const created = new Date(answer.created_at ?? answer.createdAt);
  const common = { conversation_id: ids.trip, message_id: answer.id, root_id: DEMO_ARTIFACT_IDS.v1, kind: "code", language: "python", status: "ready", created_by: ids.worker };
  await trx("artifacts").insert([
    { ...common, id: DEMO_ARTIFACT_IDS.v1, version: 1, parent_id: null, title: "pick_city.py", content: V1, created_at: created, updated_at: created },
    {
      ...common,
      id: DEMO_ARTIFACT_IDS.v2,
      version: 2,
      parent_id: DEMO_ARTIFACT_IDS.v1,
      title: "pick_city.py",
      content: V2,
      created_at: new Date(created.getTime() + 60_000),
      updated_at: new Date(created.getTime() + 60_000),
    },
  ]);
}
