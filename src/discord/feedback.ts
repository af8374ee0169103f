/**
 * The 👍/👎 buttons under each reply the adapter posts (poster.ts puts them on a finished reply's last part).
 * A click is that Discord user's feedback on the reply: rateMessage for their Parley user (upserted by Discord
 * id, as the relay does for authors), acknowledged with an ephemeral reply. Clicking the same button again
 * changes nothing (rateMessage with the same values is a no-op on the server, audit log included); the other
 * button replaces the rating.
 *
 * The button's custom id carries the Parley message id (`parley:fb:<messageId>:up|down`), so a click needs no
 * state in this process and still works after a restart.
 */
import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  MessageFlags,
  type APIActionRowComponent,
  type APIComponentInActionRow,
  type ButtonInteraction,
  type GuildMember,
  type User,
} from "discord.js";
import type { Logger } from "pino";
import { ErrorCode } from "../graphql/errors";
import { OperationError, type Transport } from "./transport";
import { RATE_MESSAGE } from "./operations";
import { userMessage } from "./replies";

const PREFIX = "parley:fb:";
const ID = /^parley:fb:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(up|down)$/;
const EMOJI = { up: "👍", down: "👎" } as const;

/** The row of two buttons under a reply. */
export function feedbackButtons(messageId: string): APIActionRowComponent<APIComponentInActionRow> {
  return new ActionRowBuilder<ButtonBuilder>()
    .addComponents(
      (["up", "down"] as const).map((rating) =>
        new ButtonBuilder().setCustomId(`${PREFIX}${messageId}:${rating}`).setEmoji(EMOJI[rating]).setStyle(ButtonStyle.Secondary),
      ),
    )
    .toJSON();
}

/** The message and rating a button's custom id names; undefined for buttons that are not ours. */
export function parseFeedbackButton(customId: string): { messageId: string; rating: "up" | "down" } | undefined {
  const match = ID.exec(customId);
  return match ? { messageId: match[1], rating: match[2] as "up" | "down" } : undefined;
}

export interface FeedbackClickDeps {
  transport: Transport;
  log: Logger;
  /** The Parley user of a Discord user (Relay.userFor). */
  userFor(user: User, member: GuildMember | null | undefined): Promise<string>;
}

/** Records a click on a feedback button; false when the button is not one of ours. */
export async function onFeedbackClick(interaction: ButtonInteraction, deps: FeedbackClickDeps): Promise<boolean> {
  const clicked = parseFeedbackButton(interaction.customId);
  if (!clicked) return false;
  const tell = (content: string) => interaction.reply({ content, flags: MessageFlags.Ephemeral });
  try {
    if (!interaction.inGuild()) {
      await tell("Feedback is given in the server's channel.");
      return true;
    }
    const userId = await deps.userFor(interaction.user, interaction.inCachedGuild() ? interaction.member : undefined);
    const input = { messageId: clicked.messageId, rating: clicked.rating.toUpperCase(), userId };
    await deps.transport.run(RATE_MESSAGE, { input });
    await tell(`Thanks! You rated this reply ${EMOJI[clicked.rating]}. Click ${EMOJI[clicked.rating === "up" ? "down" : "up"]} to change it.`);
  } catch (error) {
    deps.log.warn({ err: error, messageId: clicked.messageId }, "recording a feedback click failed");
    // NOT_FOUND: the reply was deleted, or lies in a conversation the adapter no longer reaches.
    const text = error instanceof OperationError && error.code === ErrorCode.NOT_FOUND ? "Parley has no such reply (any more)." : userMessage(error);
    if (!interaction.replied && !interaction.deferred) await tell(text).catch(() => undefined);
  }
  return true;
}
