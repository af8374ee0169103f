/**
 * Checks for client-supplied JSON (metadata, parameters, tool calls): the shape the column expects, a size
 * bound, and no NUL characters (PostgreSQL text and jsonb cannot hold them).
 */
import { BadUserInputError } from "./errors";

export const MAX_JSON_BYTES = 64 * 1024;

export function checkJson(value: unknown, field: string, shape: "object" | "array"): void {
  const isShape = shape === "array" ? Array.isArray(value) : typeof value === "object" && value !== null && !Array.isArray(value);
  if (!isShape) throw new BadUserInputError(`${field} must be a JSON ${shape}`, { field });
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > MAX_JSON_BYTES) {
    throw new BadUserInputError(`${field} must be at most ${MAX_JSON_BYTES} bytes of JSON`, { field });
  }
  if (text.includes("\\u0000")) throw new BadUserInputError(`${field} must not contain NUL characters`, { field });
}

export function checkText(value: string, field: string): void {
  if (value.includes("\u0000")) throw new BadUserInputError(`${field} must not contain NUL characters`, { field });
}
