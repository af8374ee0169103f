/**
 * What a Discord message becomes in Parley: which messages are relayed, their text, and the Discord details
 * kept in metadata.discord (ids, author, attachments, embeds, stickers, the message replied to).
 */
import { createHash } from "node:crypto";
import { MessageType, SnowflakeUtil, type GuildMember, type Message, type PartialMessage, type User } from "discord.js";

/** Sorts Discord ids (snowflakes) oldest first: longer is later, then by digits. */
export const bySnowflake = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/** The smallest snowflake of `date`: "everything after this moment" in a history request. */
export const snowflakeAt = (date: Date) => SnowflakeUtil.generate({ timestamp: date.getTime(), increment: 0n, processId: 0n, workerId: 0n }).toString();

/** Messages people write: not bots (this one included), webhooks or system notices (pins, joins, thread starts). */
export function isRelayable(message: Message | PartialMessage): message is Message {
  if (message.partial || !message.author || message.author.bot || message.webhookId) return false;
  return message.type === MessageType.Default || message.type === MessageType.Reply;
}

/** The name Parley shows for a Discord user: the server nickname, else the global display name. */
export function displayNameOf(user: User, member: GuildMember | null | undefined): string {
  return (member?.displayName ?? user.displayName).slice(0, 200) || user.id;
}

/** The text to store: the message's own, or a short description when it has none (only attachments, a sticker). */
export function contentOf(message: Message): string {
  if (message.content.trim() !== "") return message.content;
  const items = [
    ...message.attachments.map((attachment) => `attachment: ${attachment.name}`),
    ...message.stickers.map((sticker) => `sticker: ${sticker.name}`),
    ...(message.embeds.length ? [`${message.embeds.length} embed(s)`] : []),
  ];
  return `[${items.join(", ") || "empty message"}]`;
}

/** metadata.discord of a relayed message. Embeds keep their readable parts only (metadata has a size limit). */
export function describe(message: Message): Record<string, unknown> {
  return {
    messageId: message.id,
    channelId: message.channelId,
    guildId: message.guildId,
    authorId: message.author.id,
    authorName: displayNameOf(message.author, message.member),
    createdAt: message.createdAt.toISOString(),
    replyTo: message.reference?.messageId ?? null,
    attachments: message.attachments.map((a) => ({ id: a.id, name: a.name, url: a.url, contentType: a.contentType, size: a.size })),
    embeds: message.embeds.map((e) => ({ type: e.data.type ?? null, title: e.title, url: e.url, description: e.description?.slice(0, 1000) ?? null })),
    stickers: message.stickers.map((s) => ({ id: s.id, name: s.name })),
  };
}

/**
 * The nonce of part `part` of a reply (at most 25 characters, as Discord wants). Posted with enforce_nonce,
 * a repeat of the same post within Discord's window returns the first message instead of posting twice,
 * which covers a restart between posting a part and recording it.
 */
export function partNonce(messageId: string, part: number): string {
  return createHash("sha256").update(`${messageId}:${part}`).digest("base64url").slice(0, 25);
}
