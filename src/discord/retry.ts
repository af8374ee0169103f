/**
 * Trying again: "nothing lost" means a write that failed for a reason that may pass (the database briefly
 * gone, a rate limit, Discord answering 5xx) is repeated with the same input, so idempotency keys make the
 * repeat harmless, until it succeeds, fails for good, or the adapter stops.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { DiscordAPIError } from "discord.js";
import { OperationError } from "./transport";

export interface RetryPolicy {
  /** First wait; doubled after every failure. @default 250 */
  baseMs: number;
  /** Longest wait. @default 30000 */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 250, maxMs: 30_000 };

/** The adapter stopped while a task waited to be tried again. */
export class StoppedError extends Error {
  override name = "StoppedError";
}

/** Worth another try: a transient Parley error, a Discord 5xx or 429, or no answer at all (network, timeout). */
export function isTransient(error: unknown): boolean {
  if (error instanceof OperationError) return error.transient;
  if (error instanceof DiscordAPIError) return error.status >= 500 || error.status === 429;
  return !(error instanceof StoppedError);
}

/** Waits `ms`, or throws StoppedError when `signal` aborts first. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw new StoppedError("the Discord adapter stopped");
  }
}

/** The wait before try `attempt` (1 = the first repeat): doubling from baseMs up to maxMs, or a rate limit's own. */
export function backoff(policy: RetryPolicy, attempt: number, error?: unknown): number {
  const told = error instanceof OperationError ? error.retryAfterSeconds : undefined;
  if (told !== undefined) return told * 1000;
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 20));
}

/** Runs `task` until it succeeds or fails with an error that is not transient; `onRetry` hears every failure retried. */
export async function retrying<T>(
  task: () => Promise<T>,
  options: { policy: RetryPolicy; signal: AbortSignal; onRetry: (error: unknown, attempt: number) => void },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (options.signal.aborted) throw new StoppedError("the Discord adapter stopped");
    try {
      return await task();
    } catch (error) {
      if (!isTransient(error)) throw error;
      options.onRetry(error, attempt);
      await pause(backoff(options.policy, attempt, error), options.signal);
    }
  }
}
