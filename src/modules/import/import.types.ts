/**
 * What the readers of other apps' files hand the writer: conversations and messages in Parley's terms, each
 * named by its id in the source file (the key of idempotency), and the log of what was left out and why.
 */
import { MessageRole } from "../message/message.enums";

export enum ImportSource {
  CHATGPT = "chatgpt",
  JSONL = "jsonl",
}

export interface SourceConversation {
  /** The conversation's id in the source; with the owner and the source it names the Parley conversation. */
  sourceId: string;
  title: string;
  createdAt: Date | null;
  updatedAt: Date | null;
  parameters: Record<string, unknown>;
  /** Where it is in the file, for the summary ("line 3", "conversation #2"). */
  where: string;
}

export interface SourceMessage {
  /** The message's id in the source, unique within its conversation: its request id is derived from it. */
  sourceId: string;
  role: MessageRole;
  content: string;
  /** Null: the time of the message before it (or of its conversation). */
  createdAt: Date | null;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  toolCalls: unknown[] | null;
  metadata: Record<string, unknown>;
  where: string;
}

/** A reader's output, in file order: a conversation, then its messages. */
export type ImportItem = { kind: "conversation"; conversation: SourceConversation } | { kind: "message"; message: SourceMessage };

/** The file is not in the format at all: refused before anything was written. */
export class ImportFormatError extends Error {
  override name = "ImportFormatError";
}

/** Why something was left out (or cut short); the summary lists the counts per reason. */
export const SKIP_REASONS = {
  "not-json": "line is not JSON",
  "invalid-line": "line is not a valid conversation or message",
  "orphan-message": "message line without a valid conversation line before it",
  "invalid-conversation": "not a conversation object with a mapping",
  "no-current-node": "conversation without a current_node in its mapping",
  "no-message": "node without a message",
  hidden: "message hidden from the conversation",
  empty: "message without text",
  "unknown-role": "author role Parley does not have",
  "too-long": "message longer than MAX_MESSAGE_LENGTH",
  "nul-character": "text with a NUL character (PostgreSQL cannot store it)",
  "duplicate-id": "message id seen before in the same conversation",
  archived: "conversation is archived in Parley (read-only)",
  "non-text-dropped": "non-text content parts dropped from an imported message",
} as const;

export type SkipReason = keyof typeof SKIP_REASONS;

/** How many examples (line numbers, node ids) the summary keeps per reason. */
const EXAMPLES = 5;

/** Counts per reason with the first few places; constant memory whatever the file's size. */
export class SkipLog {
  readonly reasons = new Map<SkipReason, { count: number; examples: string[] }>();

  note(reason: SkipReason, where: string, count = 1): void {
    let entry = this.reasons.get(reason);
    if (!entry) this.reasons.set(reason, (entry = { count: 0, examples: [] }));
    entry.count += count;
    if (entry.examples.length < EXAMPLES) entry.examples.push(where);
  }

  count(reason: SkipReason): number {
    return this.reasons.get(reason)?.count ?? 0;
  }
}

export interface ImportSummary {
  source: ImportSource;
  owner: { id: string; displayName: string };
  conversations: { imported: number; completed: number; present: number };
  messages: { imported: number; present: number };
  skipped: SkipLog;
}

/** Progress of a reader through its file, in bytes. */
export type OnBytes = (done: number, total: number) => void;
