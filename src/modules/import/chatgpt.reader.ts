/**
 * ChatGPT's data export (conversations.json): one JSON array of conversations, each a tree of nodes
 * (`mapping`: node id → { id, message, parent, children }) whose `current_node` is the leaf the user last saw.
 * An edited message or a regenerated answer is a second child of the same parent, so the conversation as the
 * user left it is the path from current_node up through the parents to the root, read root first; the other
 * branches are not imported.
 *
 * The file can be larger than memory: stream-json parses it as it is read and hands over one conversation at
 * a time (that conversation, with its whole tree, is in memory; the rest of the file is not).
 */
import fs from "node:fs";
import streamArray from "stream-json/streamers/stream-array.js";
import { MessageRole } from "../message/message.enums";
import { ImportFormatError, type ImportItem, type OnBytes, type SkipLog, type SourceMessage } from "./import.types";

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

const ROLES: Record<string, MessageRole> = {
  user: MessageRole.USER,
  assistant: MessageRole.ASSISTANT,
  system: MessageRole.SYSTEM,
  tool: MessageRole.TOOL,
};

/** Epoch seconds (a float in the export) as a Date; null when absent or not a time. */
function epoch(value: unknown): Date | null {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) return null;
  const date = new Date(Math.round(value * 1000));
  return Number.isNaN(date.getTime()) ? null : date;
}

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/**
 * The text of a message's content and how many parts of it were not text. "text" and "multimodal_text" carry
 * `parts` (strings, and objects such as image pointers); "code", "execution_output", "tether_quote" and most
 * others carry `text`; a few carry `result` or `content`.
 */
export function contentText(content: unknown): { text: string; dropped: number } {
  if (!isObject(content)) return { text: "", dropped: 0 };
  if (Array.isArray(content.parts)) {
    const strings = content.parts.filter((part): part is string => typeof part === "string");
    return { text: strings.join(""), dropped: content.parts.length - strings.length };
  }
  const found = text(content.text) ?? text(content.result) ?? text(content.content);
  return found === undefined ? { text: "", dropped: 1 } : { text: found, dropped: 0 };
}

/** The path from the root to current_node (root first); empty when current_node is not in the mapping. */
function currentBranch(mapping: Json, currentNode: unknown): Json[] {
  const path: Json[] = [];
  const seen = new Set<string>();
  let id = typeof currentNode === "string" ? currentNode : undefined;
  // A broken export (a cycle, a parent that is missing) ends the walk rather than looping.
  while (id !== undefined && !seen.has(id) && isObject(mapping[id])) {
    seen.add(id);
    const node = mapping[id] as Json;
    path.push(node);
    id = typeof node.parent === "string" ? node.parent : undefined;
  }
  return path.reverse();
}

/** A conversation element of the array, or undefined when it is not one. */
const isConversation = (value: unknown): value is Json => isObject(value) && isObject(value.mapping);

/** The items of one conversation object; `index` counts from 1 in the file. */
export function* conversationItems(raw: Json, index: number, skips: SkipLog): Generator<ImportItem> {
  const sourceId = text(raw.id) ?? text(raw.conversation_id) ?? (typeof raw.current_node === "string" ? `node:${raw.current_node}` : undefined);
  const mapping = raw.mapping as Json;
  const branch = currentBranch(mapping, raw.current_node);
  if (!sourceId || branch.length === 0) {
    skips.note("no-current-node", `conversation #${index}${sourceId ? ` (${sourceId})` : ""}`);
    return;
  }
  yield {
    kind: "conversation",
    conversation: {
      sourceId,
      title: text(raw.title) ?? "",
      createdAt: epoch(raw.create_time),
      updatedAt: epoch(raw.update_time),
      parameters: {},
      where: `conversation #${index} (${sourceId})`,
    },
  };
  for (const node of branch) {
    const nodeId = text(node.id) ?? "?";
    const where = `${sourceId}/${nodeId}`;
    const message = node.message;
    if (!isObject(message)) {
      skips.note("no-message", where);
      continue;
    }
    const metadata = isObject(message.metadata) ? message.metadata : {};
    const author = isObject(message.author) ? message.author : {};
    if (metadata.is_visually_hidden_from_conversation === true) {
      skips.note("hidden", where);
      continue;
    }
    const role = ROLES[text(author.role) ?? ""];
    if (!role) {
      skips.note("unknown-role", where);
      continue;
    }
    const { text: content, dropped } = contentText(message.content);
    if (content.trim() === "") {
      skips.note("empty", where);
      continue;
    }
    if (dropped > 0) skips.note("non-text-dropped", where, dropped);
    const extra: Json = {};
    if (role === MessageRole.TOOL && text(author.name)) extra.toolName = author.name;
    // An assistant message addressed to a tool (code for the python tool, a browser query): keep to whom.
    if (text(message.recipient) && message.recipient !== "all") extra.recipient = message.recipient;
    const imported: SourceMessage = {
      sourceId: text(message.id) ?? nodeId,
      role,
      content,
      createdAt: epoch(message.create_time),
      model: text(metadata.model_slug) ?? null,
      promptTokens: null,
      completionTokens: null,
      costUsd: null,
      latencyMs: null,
      toolCalls: null,
      metadata: extra,
      where,
    };
    yield { kind: "message", message: imported };
  }
}

/**
 * The conversations of the export, one at a time, as the file is read. A file that is not a JSON array, or
 * whose first element is not a conversation, is refused (ImportFormatError) before anything is yielded; a later
 * element that is not a conversation is skipped and noted.
 */
export async function* readChatGpt(file: string, skips: SkipLog, onBytes: OnBytes): AsyncGenerator<ImportItem> {
  const total = (await fs.promises.stat(file)).size;
  const input = fs.createReadStream(file);
  const elements = input.pipe(streamArray.withParserAsStream());
  input.on("error", (error) => elements.destroy(error));
  let index = 0;
  try {
    for await (const { value } of elements as AsyncIterable<{ key: number; value: unknown }>) {
      index++;
      if (!isConversation(value)) {
        if (index === 1) throw new ImportFormatError("this is not a ChatGPT export: its first element is not a conversation with a mapping");
        skips.note("invalid-conversation", `conversation #${index}`);
        continue;
      }
      yield* conversationItems(value, index, skips);
      onBytes(input.bytesRead, total);
    }
  } catch (error) {
    if (error instanceof ImportFormatError) throw error;
    if (index > 0) throw new Error(`the file breaks off after conversation #${index} (what came before is imported): ${(error as Error).message}`);
    // Nothing was read yet: the file is not a JSON array at all.
    throw new ImportFormatError(`this is not a ChatGPT export (a JSON array of conversations): ${(error as Error).message}`);
  } finally {
    input.destroy();
  }
  onBytes(total, total);
}
