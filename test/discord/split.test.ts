/**
 * The reply splitter (pure): parts of at most 2,000 characters, cut at the best boundary, code blocks closed
 * and reopened with their language, and stable as a streamed reply grows.
 */
import { openFenceAfter, splitMessage, DISCORD_MESSAGE_LIMIT } from "../../src/discord/split";
import { renderReply } from "../../src/discord/poster";

const words = (n: number, word = "word") => Array.from({ length: n }, (_, i) => `${word}${i}`).join(" ");

/** The text the parts show, without the fences a split added. */
function rejoin(parts: string[]): string {
  let text = "";
  let open: string | null = null;
  for (const part of parts) {
    let body = part;
    if (open && body.startsWith(`${open}\n`)) body = body.slice(open.length + 1);
    // A closing fence the split added: without it, a block is still open.
    const after: string | null = body.endsWith("\n```") ? openFenceAfter(body.slice(0, -4), open) : null;
    if (after) body = body.slice(0, -4);
    text += (text && !text.endsWith("\n") ? "\n" : "") + body;
    open = after;
  }
  return text;
}

describe("splitMessage", () => {
  it("keeps a short reply whole, and gives nothing for blank text", () => {
    expect(splitMessage("hello")).toEqual(["hello"]);
    expect(splitMessage("x".repeat(DISCORD_MESSAGE_LIMIT - 4))).toHaveLength(1);
    expect(splitMessage("  \n\n ")).toEqual([]);
  });

  it("never makes a part over the limit, and loses no word", () => {
    const text = words(2000);
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(DISCORD_MESSAGE_LIMIT);
    expect(parts.join(" ").split(" ")).toEqual(text.split(" "));
  });

  it("cuts at a paragraph break before a line break, and at a line break before a space", () => {
    const paragraph = `${"a".repeat(1200)}\n\n${"b".repeat(300)}\n${"c".repeat(300)} ${"d".repeat(500)}`;
    expect(splitMessage(paragraph)[0]).toBe("a".repeat(1200));
    const lines = `${"a".repeat(1200)}\n${"b".repeat(300)} ${"c".repeat(700)}`;
    expect(splitMessage(lines)[0]).toBe("a".repeat(1200));
    const spaces = `${"a".repeat(1200)} ${"b".repeat(300)} ${"c".repeat(700)}`;
    expect(splitMessage(spaces)[0]).toBe(`${"a".repeat(1200)} ${"b".repeat(300)}`);
  });

  it("cuts a word longer than a message anywhere, but not inside a surrogate pair", () => {
    const parts = splitMessage("😀".repeat(1500));
    expect(parts.length).toBe(2);
    for (const part of parts) expect(part).toMatch(/^(?:😀)+$/u);
    expect(parts.join("")).toBe("😀".repeat(1500));
  });

  it("closes a code block at the cut and reopens it with the same language", () => {
    const code = Array.from({ length: 150 }, (_, i) => `const value${i} = compute(${i}); // line ${i}`).join("\n");
    const text = `Here is the code:\n\n\`\`\`ts\n${code}\n\`\`\`\n\nThat is all.`;
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts[0].startsWith("Here is the code:")).toBe(true);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(DISCORD_MESSAGE_LIMIT);
      expect(openFenceAfter(part)).toBeNull(); // every part renders on its own
    }
    expect(parts[0].endsWith("\n```")).toBe(true);
    for (const part of parts.slice(1, -1)) expect(part.startsWith("```ts\n")).toBe(true);
    expect(parts[parts.length - 1]).toMatch(/^```ts\n[\s\S]*\n```\n\nThat is all\.$/);
    expect(rejoin(parts)).toBe(text);
  });

  it("treats a one-line ```code``` as opening and closing on itself", () => {
    expect(openFenceAfter("see ```x = 1``` here\n```x = 2```")).toBeNull();
    expect(openFenceAfter("```py\nprint(1)")).toBe("```py");
    expect(openFenceAfter("```py\nprint(1)\n```")).toBeNull();
  });

  it("closes a block still open at the end (a reply streamed so far)", () => {
    expect(splitMessage("```js\nlet a = 1;")).toEqual(["```js\nlet a = 1;\n```"]);
  });

  it("keeps earlier parts unchanged as the text grows (streamed replies only edit the last part)", () => {
    const full = `${words(400)}\n\n\`\`\`python\n${Array.from({ length: 120 }, (_, i) => `print(${i})  # ${words(3)}`).join("\n")}\n\`\`\`\n${words(300)}`;
    let settled: string[] = [];
    for (let length = 50; length <= full.length; length += 37) {
      const parts = splitMessage(full.slice(0, length));
      // Every part but the last is final once it has a successor.
      expect(parts.slice(0, settled.length)).toEqual(settled);
      settled = parts.slice(0, -1);
    }
  });
});

describe("renderReply", () => {
  it("shows … until the first chunk and marks an interrupted reply, closing its open code block first", () => {
    expect(renderReply("", "STREAMING")).toBe("…");
    expect(renderReply("partial", "STREAMING")).toBe("partial");
    expect(renderReply("```js\nlet a", "FAILED")).toBe("```js\nlet a\n```\n\n*(The reply was interrupted.)*");
    expect(renderReply("", "FAILED")).toBe("*(The reply was interrupted.)*");
  });
});
