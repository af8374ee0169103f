/**
 * Checks for client-supplied JSON (metadata, parameters, tool calls): the shape the column expects, a size
 * bound, a nesting bound, and no NUL characters (PostgreSQL text and jsonb cannot hold them).
 */
import { BadUserInputError } from "./errors";

export const MAX_JSON_BYTES = 64 * 1024;
/** Deeper documents are refused: real metadata is shallow, and deep ones overflow recursive code (JSON.stringify). */
export const MAX_JSON_DEPTH = 64;

export function checkJson(value: unknown, field: string, shape: "object" | "array"): void {
  const isShape = shape === "array" ? Array.isArray(value) : typeof value === "object" && value !== null && !Array.isArray(value);
  if (!isShape) throw new BadUserInputError(`${field} must be a JSON ${shape}`, { field });
  // Walked without recursion, so that depth is checked before anything recursive touches the value.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (typeof node === "string") checkText(node, field);
    if (typeof node !== "object" || node === null) continue;
    if (depth > MAX_JSON_DEPTH) throw new BadUserInputError(`${field} must be nested at most ${MAX_JSON_DEPTH} levels deep`, { field });
    for (const [key, child] of Object.entries(node)) {
      checkText(key, field);
      stack.push([child, depth + 1]);
    }
  }
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_JSON_BYTES) {
    throw new BadUserInputError(`${field} must be at most ${MAX_JSON_BYTES} bytes of JSON`, { field });
  }
}

export function checkText(value: string, field: string): void {
  if (value.includes("\u0000")) throw new BadUserInputError(`${field} must not contain NUL characters`, { field });
}

/**
 * A required name-like text (a source, a model name): trimmed, 1 to `max` characters as PostgreSQL counts them
 * (code points), no NUL. Returns the trimmed text.
 */
export function trimmedText(value: string, field: string, max: number): string {
  const trimmed = value.trim();
  const length = [...trimmed].length;
  if (length < 1 || length > max) throw new BadUserInputError(`${field} must be 1 to ${max} characters (not counting surrounding spaces)`, { field });
  checkText(trimmed, field);
  return trimmed;
}

/** A Discord id (snowflake: digits), such as a guild's. */
export function checkDiscordId(value: string, field: string): void {
  if (!/^\d{1,25}$/.test(value)) throw new BadUserInputError(`${field} must be a Discord id (digits)`, { field });
}
