/**
 * The answer-cache sweeper: deletes expired cached answers in batches, every few minutes. Expired entries are
 * never served anyway (cachedAnswer asks expires_at > now()), so the sweep only keeps the table and its indexes
 * small; a sweep that fails (the database away) is logged and tried again at the next interval.
 */
import type { Knex } from "knex";
import type { JobObserver, JobOutcome } from "../jobs";
import type { Logger } from "pino";
import { deleteExpiredAnswers } from "./answer-cache.service";

export interface AnswerCacheSweeperOptions {
  /** @default 300000 (5 minutes) */
  intervalMs?: number;
  /** Rows per DELETE, so that no statement holds many row locks or runs long. @default 1000 */
  batchSize?: number;
}

export class AnswerCacheSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private disposed = false;
  private readonly intervalMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly knex: Knex,
    private readonly log: Logger,
    { intervalMs = 300_000, batchSize = 1000 }: AnswerCacheSweeperOptions = {},
  ) {
    this.intervalMs = intervalMs;
    this.batchSize = batchSize;
  }

  /** Sweeps every intervalMs until disposed; the timer does not keep the process alive. */
  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /** One sweep, batch after batch until a batch comes back short; returns how many entries it deleted. */
  sweep(): Promise<number> {
    // One sweep at a time: a slow one is joined, not doubled.
    return (this.running ??= this.run().finally(() => (this.running = undefined)));
  }

  /** Told of every sweep (metrics). */
  observe: JobObserver | undefined;

  private async run(): Promise<number> {
    const started = performance.now();
    let total = 0;
    let outcome: JobOutcome = "ok";
    try {
      while (!this.disposed) {
        const deleted = await deleteExpiredAnswers(this.knex, this.batchSize);
        total += deleted;
        if (deleted < this.batchSize) break;
      }
    } catch (error) {
      outcome = "failed";
      this.log.warn({ err: error }, "answer cache sweep failed");
    }
    this.observe?.("answer-cache-sweep", outcome, (performance.now() - started) / 1000);
    return total;
  }

  /** Stops the timer and waits for a sweep under way, so the database can be closed after. */
  async dispose(): Promise<void> {
    this.disposed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
