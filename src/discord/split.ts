/**
 * Splitting a reply into Discord messages of at most 2,000 characters. A part ends at the last paragraph
 * break that fits, else the last line break, else the last space, else (a very long word) anywhere. A part
 * that ends inside a code block closes it, and the next part reopens it with the same language tag, so every
 * part renders on its own.
 *
 * The split is deterministic and greedy from the start, and a part is cut only from the text it could hold,
 * so once a part has a successor it never changes as the text grows: a streamed reply keeps its earlier
 * messages and only edits the last one (or posts the next).
 */

/** Discord's limit on a message's content (counted here in UTF-16 units, which is never fewer than Discord's count). */
export const DISCORD_MESSAGE_LIMIT = 2000;

const CLOSE = "\n```";

/** The opening line of the code block open after `text` (e.g. "```ts"), given the one open before it; null when none is. */
export function openFenceAfter(text: string, open: string | null = null): string | null {
  let fence = open;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith("```")) continue;
    if (fence) {
      if (/^`{3,}$/.test(line)) fence = null; // a closing fence has nothing after its backticks
    } else if (line.length <= 3 || !line.slice(3).includes("```")) {
      fence = line; // "```lang"; a "```code```" line opens and closes on itself
    }
  }
  return fence;
}

/** Where to end a part of `text` that may hold `budget` characters: [end of this part, start of the next]. */
function cutPoint(text: string, budget: number): [number, number] {
  const paragraph = text.lastIndexOf("\n\n", budget);
  if (paragraph >= budget * 0.5) return [paragraph, paragraph + 2];
  const line = text.lastIndexOf("\n", budget);
  if (line >= budget * 0.3) return [line, line + 1];
  const space = text.lastIndexOf(" ", budget);
  if (space >= budget * 0.3) return [space, space + 1];
  // Never between the two halves of a surrogate pair (an emoji, say).
  const code = text.charCodeAt(budget - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? budget - 1 : budget;
  return [end, end];
}

/**
 * The parts of `text`, each at most `limit` characters; [] for blank text. Leading line breaks of a part are
 * dropped (its predecessor ended there), indentation is kept.
 */
export function splitMessage(text: string, limit = DISCORD_MESSAGE_LIMIT): string[] {
  const parts: string[] = [];
  let rest = text.replace(/\s+$/, "");
  let fence: string | null = null;
  while (rest.trim() !== "") {
    const prefix = fence ? `${fence}\n` : "";
    // Room for a closing fence is always kept, whether one will be needed or not, so that whether the rest
    // fits depends only on its length and can only turn from "fits" to "does not fit" as the text grows.
    const budget = limit - prefix.length - CLOSE.length;
    if (budget < 1) throw new Error(`limit ${limit} leaves no room for text after the fence "${fence}"`);
    if (rest.length <= budget) {
      parts.push(prefix + rest + (openFenceAfter(rest, fence) ? CLOSE : ""));
      break;
    }
    const [end, next] = cutPoint(rest, budget);
    const head = rest.slice(0, end).replace(/\s+$/, "");
    const after = openFenceAfter(head, fence);
    parts.push(prefix + head + (after ? CLOSE : ""));
    fence = after;
    rest = rest.slice(next).replace(/^\n+/, "");
  }
  return parts;
}
