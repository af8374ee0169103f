/**
 * What Discord users are told when something fails: a short sentence per error code. The message of a
 * BAD_USER_INPUT error is Parley's own explanation of the input and is shown; nothing else from an error
 * (internal messages, SQL, stacks) reaches Discord. Internal errors give a reference that the logs carry.
 */
import { DiscordAPIError } from "discord.js";
import { ErrorCode } from "../graphql/errors";
import { OperationError } from "./transport";

const TEXT: Partial<Record<string, string>> = {
  [ErrorCode.FORBIDDEN]: "Parley refused this: the bot is not allowed to do it. A Parley admin can check the bot's access.",
  [ErrorCode.NOT_FOUND]: "Parley has no such conversation (any more).",
  [ErrorCode.CONFLICT]: "That clashes with a change made meanwhile; try again.",
  [ErrorCode.UNAUTHENTICATED]: "The bot cannot sign in to Parley; ask the server admin to check its API key.",
  [ErrorCode.PAYLOAD_TOO_LARGE]: "That is too large for Parley.",
};

/** A spent HARD budget: whose, how much, and when it resets (Discord shows <t:…:R> in the reader's time). */
function budgetSpent(extensions: Record<string, unknown>): string {
  const whose = extensions.subject === "guild" ? "This server's" : "The conversation's";
  const resets = typeof extensions.resetsAt === "string" ? ` It resets <t:${Math.floor(Date.parse(extensions.resetsAt) / 1000)}:R>.` : "";
  return `${whose} AI budget for this period is spent ($${Number(extensions.spent).toFixed(2)} of $${Number(extensions.limit).toFixed(2)}).${resets}`;
}

const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

export function userMessage(error: unknown): string {
  if (error instanceof OperationError) {
    if (error.reason === "CONVERSATION_ARCHIVED") return "This channel's conversation is archived.";
    if (error.code === ErrorCode.BAD_USER_INPUT) return `Parley did not accept that: ${clip(error.message, 300)}`;
    if (error.code === ErrorCode.RATE_LIMITED) return `Parley is busy; try again in ${error.retryAfterSeconds ?? 60} s.`;
    if (error.code === ErrorCode.BUDGET_EXCEEDED) return budgetSpent(error.errors[0]?.extensions ?? {});
    return TEXT[error.code] ?? `Something went wrong in Parley (reference ${error.requestId ?? "none"}).`;
  }
  if (error instanceof DiscordAPIError) return "Discord refused what the bot tried to do; the bot's logs have the details.";
  return "Something went wrong; the bot's logs have the details.";
}
