/**
 * Cutting a document's text into chunks for search: each chunk at most `size` characters, cut at the best
 * boundary available — a paragraph break, else a sentence end, else a space, else anywhere (a word longer than a
 * chunk) — and each chunk after the first starts `overlap` characters or so before the previous one ended, at a
 * word boundary, so a sentence cut in two is whole in one of the chunks. Offsets are kept, so a hit can point
 * back into the source text.
 *
 * Characters here are UTF-16 code units, as JavaScript counts them; a cut never splits a surrogate pair.
 */

export interface TextChunk {
  content: string;
  /** Offsets of the chunk in the source text: text.slice(charStart, charEnd) is the chunk before trimming. */
  charStart: number;
  charEnd: number;
}

export interface ChunkOptions {
  size: number;
  overlap: number;
}

const PARAGRAPH = /\n\s*\n/g;
const SENTENCE_END = /[.!?。！？](?:["'”’)\]]*)(?=\s)/g;
const SPACE = /\s/g;

/** The last end of a `pattern` match in text[from, to), or -1. */
function lastBoundary(text: string, from: number, to: number, pattern: RegExp): number {
  let found = -1;
  pattern.lastIndex = from;
  for (let match = pattern.exec(text); match && match.index < to; match = pattern.exec(text)) {
    const end = match.index + match[0].length;
    if (end <= to) found = end;
    if (match[0].length === 0) pattern.lastIndex++;
  }
  return found;
}

/** Where to end a chunk that starts at `start`: the best boundary in its second half, else the hard limit. */
function cutAt(text: string, start: number, size: number): number {
  const limit = Math.min(text.length, start + size);
  if (limit === text.length) return limit;
  // Boundaries in the first half would make many small chunks; a cut mid-word is better than that.
  const floor = start + Math.floor(size / 2);
  for (const pattern of [PARAGRAPH, SENTENCE_END, SPACE]) {
    const end = lastBoundary(text, floor, limit, pattern);
    if (end > floor) return end;
  }
  const code = text.charCodeAt(limit - 1);
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit; // not between the halves of a surrogate pair
}

/** Where the next chunk starts: about `overlap` before `end`, moved forward to a word start, never at or before `start`. */
function nextStart(text: string, start: number, end: number, overlap: number): number {
  if (overlap === 0) return end;
  let next = Math.max(start + 1, end - overlap);
  while (next < end && !/\s/.test(text[next - 1])) next++;
  return next < end ? next : end;
}

/** The chunks of `text`, blank ones left out. */
export function chunkText(text: string, { size, overlap }: ChunkOptions): TextChunk[] {
  const chunks: TextChunk[] = [];
  let start = 0;
  while (start < text.length) {
    const end = cutAt(text, start, size);
    const raw = text.slice(start, end);
    const content = raw.trim();
    if (content) {
      const lead = raw.length - raw.trimStart().length;
      chunks.push({ content, charStart: start + lead, charEnd: start + lead + content.length });
    }
    if (end >= text.length) break;
    start = nextStart(text, start, end, overlap);
  }
  return chunks;
}
