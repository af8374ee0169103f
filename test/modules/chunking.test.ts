/**
 * Cutting documents into chunks: sizes, boundaries (paragraph, then sentence, then word), overlap, offsets.
 */
import { chunkText } from "../../src/modules/knowledge/chunking";

const sentence = (i: number) => `Sentence number ${i} talks about topic ${i % 7} at some length.`;

describe("chunkText", () => {
  it("keeps a short text as one chunk, trimmed, with its offsets", () => {
    const text = "  Parley stores chats.  ";
    expect(chunkText(text, { size: 100, overlap: 10 })).toEqual([{ content: "Parley stores chats.", charStart: 2, charEnd: 22 }]);
  });

  it("leaves out blank text", () => {
    expect(chunkText(" \n\n  ", { size: 100, overlap: 10 })).toEqual([]);
  });

  it("cuts at paragraph breaks before sentence ends", () => {
    const first = Array.from({ length: 4 }, (_, i) => sentence(i)).join(" ");
    const second = Array.from({ length: 4 }, (_, i) => sentence(i + 4)).join(" ");
    const text = `${first}\n\n${second}`;
    const chunks = chunkText(text, { size: first.length + 40, overlap: 0 });
    expect(chunks[0].content).toBe(first);
    expect(chunks[1].content).toBe(second);
  });

  it("cuts at sentence ends when no paragraph break fits, and every chunk respects the size", () => {
    const text = Array.from({ length: 40 }, (_, i) => sentence(i)).join(" ");
    const chunks = chunkText(text, { size: 300, overlap: 0 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) {
      expect(chunk.content.length).toBeLessThanOrEqual(300);
      expect(chunk.content).toMatch(/^Sentence number \d+/);
      expect(chunk.content).toMatch(/length\.$/);
      expect(text.slice(chunk.charStart, chunk.charEnd)).toBe(chunk.content);
    }
    // Without overlap the chunks cover the text exactly once.
    expect(chunks.map((c) => c.content).join(" ")).toBe(text);
  });

  it("repeats about `overlap` characters of the previous chunk, starting at a word", () => {
    const text = Array.from({ length: 40 }, (_, i) => sentence(i)).join(" ");
    const chunks = chunkText(text, { size: 300, overlap: 80 });
    for (let i = 1; i < chunks.length; i++) {
      const shared = chunks[i - 1].charEnd - chunks[i].charStart;
      expect(shared).toBeGreaterThan(0);
      expect(shared).toBeLessThanOrEqual(80);
      expect(text[chunks[i].charStart - 1]).toMatch(/\s/);
    }
    expect(chunks[chunks.length - 1].charEnd).toBe(text.length);
  });

  it("cuts a word longer than a chunk, without splitting a surrogate pair", () => {
    const text = "😀".repeat(150); // 300 UTF-16 code units, no spaces
    const chunks = chunkText(text, { size: 101, overlap: 0 });
    for (const chunk of chunks) {
      expect(chunk.content.length).toBeLessThanOrEqual(101);
      expect([...chunk.content].every((ch) => ch === "😀")).toBe(true);
    }
    expect(chunks.map((c) => c.content).join("")).toBe(text);
  });
});
