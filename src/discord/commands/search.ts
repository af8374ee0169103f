import { SEARCH, type SearchData } from "../operations";
import { DISCORD_MESSAGE_LIMIT } from "../split";
import { whisper, type Subcommand } from "./command";

/** Hits shown when the guild's settings name no rag.topK. */
const DEFAULT_HITS = 5;
/** Characters of a hit's text (highlight or excerpt) shown. */
const EXCERPT = 300;
const TITLE = 120;
/** Longer links are left out: a link cannot be shortened, and one would crowd out the hits. */
const MAX_URL = 300;
const MAX_QUERY = 200;

/**
 * Backslashes before the characters that mean something inside a Discord line (emphasis, code, spoilers,
 * masked links, mentions and timestamps); Discord shows any escaped punctuation as itself. Whitespace runs
 * become one space, so no text can start a line (headings, quotes, lists).
 */
export function escapeText(text: string): string {
  return text.replace(/\s+/g, " ").replace(/[\\`*_~|<>[\]()@]/g, "\\$&");
}

/** `text` cut to `max` code points (a cut never splits an emoji's surrogate pair), with … when cut. */
function clip(text: string, max: number): string {
  const points = [...text];
  return points.length > max ? `${points.slice(0, max - 1).join("")}…` : text;
}

const unescapeHtml = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/**
 * A ts_headline highlight (matches in <b>…</b>) as Discord text: the matches bold (**…**), everything else escaped,
 * at most `max` characters of the text itself. Both searches escape the text's own &, < and > as HTML, so
 * that the <b> markers are the only markup.
 */
export function highlightMarkdown(highlight: string, { max = EXCERPT } = {}): string {
  const parts: { text: string; bold: boolean }[] = [];
  let bold = false;
  for (const raw of highlight.split(/(<\/?b>)/)) {
    const piece = unescapeHtml(raw);
    if (raw === "<b>" || raw === "</b>") bold = raw === "<b>";
    else if (piece) {
      const last = parts[parts.length - 1];
      // Neighbouring matches become one bold run: "****" between two would not render as two.
      if (last?.bold === bold) last.text += piece;
      else parts.push({ text: piece, bold });
    }
  }
  let room = max;
  let out = "";
  for (const part of parts) {
    if (room <= 0) break;
    const text = clip(part.text.replace(/\s+/g, " "), room);
    room -= [...text].length;
    // Discord renders ** only around text that does not start or end with a space.
    const [, before, inner, after] = /^(\s*)(.*?)(\s*)$/s.exec(text)!;
    out += part.bold && inner ? `${before}**${escapeText(inner)}**${after}` : escapeText(text);
  }
  return out.trim();
}

const safeUrl = (url: string | null) => (url && url.length <= MAX_URL && /^https?:\/\/[^\s<>]+$/.test(url) ? url : null);

/** The reply: document hits, then message hits, as many as fit into one Discord message, balanced between the two. */
export function searchText(query: string, data: SearchData, limit = DISCORD_MESSAGE_LIMIT): string {
  const documents = data.documents.map((hit, index) => {
    const url = safeUrl(hit.document.sourceUrl);
    const text = hit.highlight ? highlightMarkdown(hit.highlight) : escapeText(clip(hit.chunk.content.trim(), EXCERPT));
    return `**${index + 1}. ${escapeText(clip(hit.document.title, TITLE))}**${url ? ` <${url}>` : ""}\n> ${text}`;
  });
  const messages = (data.messages ?? []).map(({ highlight, message }) => {
    const who = message.role === "USER" ? (message.author?.displayName ?? "someone") : message.role.toLowerCase();
    return `\`#${message.seq}\` **${escapeText(clip(who, 100))}**: ${highlightMarkdown(highlight)}`;
  });
  const shown = { documents: documents.length, messages: messages.length };
  const render = () => {
    const lines = [`Search for “${escapeText(clip(query, MAX_QUERY))}”`];
    lines.push(documents.length ? "__Documents of this server__" : "No documents of this server match.", ...documents.slice(0, shown.documents));
    if (data.messages === undefined) lines.push("*This channel is not recorded, so no messages were searched.*");
    else lines.push(messages.length ? "__Messages of this channel__" : "No messages of this channel match.", ...messages.slice(0, shown.messages));
    const hidden = documents.length - shown.documents + messages.length - shown.messages;
    if (hidden) lines.push(`*…and ${hidden} more ${hidden === 1 ? "hit" : "hits"}: search for something narrower to see them.*`);
    return lines.join("\n");
  };
  let text = render();
  while (text.length > limit && shown.documents + shown.messages > 0) {
    if (shown.documents > shown.messages) shown.documents--;
    else shown.messages--;
    text = render();
  }
  return text;
}

export const search: Subcommand = {
  name: "search",
  define: (sub) =>
    sub
      .setName("search")
      .setDescription("Search this server's documents and this channel's recorded messages")
      .addStringOption((option) => option.setName("text").setDescription("What to look for").setRequired(true).setMaxLength(MAX_QUERY)),

  async execute(ctx) {
    const query = ctx.interaction.options.getString("text", true);
    const settings = await ctx.guildSettings();
    const data = await ctx.transport.run<SearchData>(SEARCH, {
      query,
      guildId: ctx.interaction.guildId,
      first: settings?.rag?.topK ?? DEFAULT_HITS,
      language: settings?.language ?? null,
      conversationId: ctx.binding?.conversationId ?? null,
      inChannel: ctx.binding !== undefined,
    });
    await whisper(ctx, searchText(query, data));
  },
};
