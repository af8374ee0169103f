import type { Knex } from "knex";
import { DiscordPost } from "./discord.model";

/** The batch function of the discordPostByMessageId loader: posts aligned to the message ids (undefined: none yet). */
export async function discordPostsByMessageId(knex: Knex, messageIds: readonly string[]): Promise<(DiscordPost | undefined)[]> {
  const rows = await DiscordPost.query(knex).whereIn("messageId", messageIds as string[]);
  const byId = new Map(rows.map((row) => [row.messageId, row]));
  return messageIds.map((id) => byId.get(id));
}
