import type { Knex } from "knex";
import { Artifact, type ArtifactKind } from "./artifact.types";

/** The batch function of artifactsByMessageId: each message's artifact versions, oldest first. */
export async function artifactsByMessageId(knex: Knex, messageIds: readonly string[]): Promise<Artifact[][]> {
  const rows = await Artifact.query(knex)
    .whereIn("messageId", messageIds as string[])
    .orderBy([{ column: "createdAt" }, { column: "version" }, { column: "id" }]);
  const byMessage = new Map<string, Artifact[]>(messageIds.map((id) => [id, []]));
  for (const row of rows) byMessage.get(row.messageId)?.push(row);
  return messageIds.map((id) => byMessage.get(id)!);
}

export interface ConversationArtifactsKey {
  conversationId: string;
  kind: ArtifactKind | null;
}

export const conversationArtifactsKey = (key: ConversationArtifactsKey) => `${key.conversationId}:${key.kind ?? ""}`;

/**
 * The batch function of artifactsByConversation: the latest version of each artifact of each conversation,
 * most recently changed first, in one statement whatever the kinds asked for (a history keeps its kind).
 */
export async function latestArtifactsByConversation(knex: Knex, keys: readonly ConversationArtifactsKey[]): Promise<Artifact[][]> {
  const ids = [...new Set(keys.map((key) => key.conversationId))];
  const latest = knex("artifacts").distinctOn("rootId").select("*").whereIn("conversationId", ids).orderBy([{ column: "rootId" }, { column: "version", order: "desc" }]);
  const rows = await Artifact.query(knex)
    .from(latest.as("artifacts"))
    .orderBy([{ column: "createdAt", order: "desc" }, { column: "id", order: "desc" }]);
  return keys.map((key) => rows.filter((row) => row.conversationId === key.conversationId && (key.kind == null || row.kind === key.kind)));
}
