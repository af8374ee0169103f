/**
 * Parley's import format (JSONL): one JSON object per line, read line by line so that a file of any size
 * takes constant memory. A conversation line starts a conversation; the message lines after it are its
 * messages, in order, until the next conversation line.
 *
 *   {"type":"conversation","id":"<source id>","title":"Trip ideas","createdAt":"2026-11-23T10:00:00Z","updatedAt":…,"parameters":{…}}
 *   {"type":"message","id":"<source id>","role":"user","content":"Lisbon or Porto?","createdAt":"2026-11-23T10:00:05Z",
 *    "model":null,"promptTokens":null,"completionTokens":null,"costUsd":null,"latencyMs":null,"toolCalls":null,"metadata":{}}
 *
 * Required: type, id (1 to 200 characters, unique per conversation in the file: it is the idempotency key), and
 * for messages role (user, assistant, system, tool; any case) and content (a string; empty only with toolCalls).
 * Everything else is optional (null or absent); other keys are ignored, so a Parley JSON transcript's
 * conversation and messages convert with one jq line (README, Importing). A bad line is skipped and reported
 * with its number; a file whose first line is not a JSON object with a type is refused.
 */
import fs from "node:fs";
import readline from "node:readline";
import { BadUserInputError } from "../../graphql/errors";
import { checkJson } from "../../graphql/json-input";
import { MessageRole } from "../message/message.enums";
import { ImportFormatError, type ImportItem, type OnBytes, type SkipLog, type SourceConversation, type SourceMessage } from "./import.types";

type Json = Record<string, unknown>;

const MAX_ID = 200;

class BadLine extends Error {}

function id(line: Json): string {
  if (typeof line.id !== "string" || line.id.length < 1 || line.id.length > MAX_ID) throw new BadLine(`id must be a string of 1 to ${MAX_ID} characters`);
  return line.id;
}

function optionalTime(line: Json, field: string): Date | null {
  const value = line[field];
  if (value == null) return null;
  const date = typeof value === "string" ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new BadLine(`${field} must be an ISO date and time`);
  return date;
}

function optionalNumber(line: Json, field: string, integer: boolean): number | null {
  const value = line[field];
  if (value == null) return null;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value)) || value > 2 ** 31 - 1) {
    throw new BadLine(`${field} must be a non-negative ${integer ? "integer" : "number"}`);
  }
  return value;
}

function optionalString(line: Json, field: string): string | null {
  const value = line[field];
  if (value == null) return null;
  if (typeof value !== "string") throw new BadLine(`${field} must be a string`);
  return value;
}

/** checkJson's refusals (shape, size, depth, NUL) as a bad line. */
function json<T>(line: Json, field: string, shape: "object" | "array"): T | null {
  const value = line[field];
  if (value == null) return null;
  try {
    checkJson(value, field, shape);
  } catch (error) {
    if (error instanceof BadUserInputError) throw new BadLine(error.message);
    throw error;
  }
  return value as T;
}

export function conversationLine(line: Json, where: string): SourceConversation {
  const title = optionalString(line, "title") ?? "";
  return {
    sourceId: id(line),
    title,
    createdAt: optionalTime(line, "createdAt"),
    updatedAt: optionalTime(line, "updatedAt"),
    parameters: json<Json>(line, "parameters", "object") ?? {},
    where,
  };
}

const ROLES = Object.values(MessageRole) as string[];

export function messageLine(line: Json, where: string): SourceMessage {
  const role = typeof line.role === "string" ? line.role.toLowerCase() : "";
  if (!ROLES.includes(role)) throw new BadLine(`role must be one of ${ROLES.join(", ")}`);
  if (typeof line.content !== "string") throw new BadLine("content must be a string");
  const toolCalls = json<unknown[]>(line, "toolCalls", "array");
  if (line.content.trim() === "" && !toolCalls?.length) throw new BadLine("content must not be empty");
  return {
    sourceId: id(line),
    role: role as MessageRole,
    content: line.content,
    createdAt: optionalTime(line, "createdAt"),
    model: optionalString(line, "model"),
    promptTokens: optionalNumber(line, "promptTokens", true),
    completionTokens: optionalNumber(line, "completionTokens", true),
    costUsd: optionalNumber(line, "costUsd", false),
    latencyMs: optionalNumber(line, "latencyMs", true),
    toolCalls,
    metadata: json<Json>(line, "metadata", "object") ?? {},
    where,
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export async function* readJsonl(file: string, skips: SkipLog, onBytes: OnBytes): AsyncGenerator<ImportItem> {
  const total = (await fs.promises.stat(file)).size;
  const input = fs.createReadStream(file, { encoding: "utf8" });
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let number = 0;
  let seenFirst = false;
  /** Whether message lines have a conversation to go to: false before the first one and after a bad one. */
  let inConversation = false;
  try {
    for await (const text of lines) {
      number++;
      if (number % 1000 === 0) onBytes(input.bytesRead, total);
      if (text.trim() === "") continue;
      const where = `line ${number}`;
      const line = parse(text);
      const isLine = typeof line === "object" && line !== null && !Array.isArray(line) && typeof (line as Json).type === "string";
      if (!seenFirst && !isLine) {
        throw new ImportFormatError(`this is not a Parley JSONL file: line ${number} is not a JSON object with a "type" (see README, Importing)`);
      }
      seenFirst = true;
      if (line === undefined) {
        skips.note("not-json", where);
        continue;
      }
      try {
        if (!isLine) throw new BadLine("not a JSON object with a type");
        const fields = line as Json;
        if (fields.type === "conversation") {
          inConversation = false; // until this line proves valid
          const conversation = conversationLine(fields, where);
          inConversation = true;
          yield { kind: "conversation", conversation };
        } else if (fields.type === "message") {
          if (!inConversation) {
            skips.note("orphan-message", where);
            continue;
          }
          yield { kind: "message", message: messageLine(fields, where) };
        } else throw new BadLine(`type must be "conversation" or "message"`);
      } catch (error) {
        if (!(error instanceof BadLine)) throw error;
        skips.note("invalid-line", `${where}: ${error.message}`);
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
  onBytes(total, total);
}

