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

const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

export function userMessage(error: unknown): string {
  if (error instanceof OperationError) {
    if (error.reason === "CONVERSATION_ARCHIVED") return "This channel's conversation is archived.";
    if (error.code === ErrorCode.BAD_USER_INPUT) return `Parley did not accept that: ${clip(error.message, 300)}`;
    if (error.code === ErrorCode.RATE_LIMITED) return `Parley is busy; try again in ${error.retryAfterSeconds ?? 60} s.`;
    return TEXT[error.code] ?? `Something went wrong in Parley (reference ${error.requestId ?? "none"}).`;
  }
  if (error instanceof DiscordAPIError) return "Discord refused what the bot tried to do; the bot's logs have the details.";
  return "Something went wrong; the bot's logs have the details.";
}
