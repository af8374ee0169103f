/**
 * The retention job: every server runs a retention pass (retention.ts) every RETENTION_INTERVAL_MINUTES, and
 * the advisory lock lets one of them do it while the others skip. The first pass comes one interval after the
 * start, like the other sweeps. A pass that fails (the database away, a bad policy stored by SQL) is logged and
 * tried again at the next interval; a bad policy changes nothing until an admin fixes it.
 */
import type { JobObserver, JobOutcome } from "../jobs";
import { RetentionPolicyError } from "./retention.policy";
import { retentionTotal, runRetention, type RetentionDeps, type RetentionReport } from "./retention";

export interface RetentionJobOptions {
  /** Time between passes; 0: no timer (run() still works). @default 3600000 (an hour) */
  intervalMs?: number;
  /** The pass's clock (tests move it ahead instead of waiting). @default () => new Date() */
  clock?: () => Date;
  /** See RetentionOptions. */
  batchSize?: number;
  deleteBatchSize?: number;
}

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionReport | undefined> | undefined;
  private readonly stop = new AbortController();
  private readonly intervalMs: number;
  private readonly clock: () => Date;

  /** Told of every pass (metrics). */
  observe: JobObserver | undefined;

  constructor(
    private readonly deps: RetentionDeps,
    private readonly options: RetentionJobOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 3_600_000;
    this.clock = options.clock ?? (() => new Date());
  }

  /** A pass every intervalMs until disposed; the timer does not keep the process alive. */
  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  /** One pass now (one under way is joined); undefined when it failed, which is logged. Never rejects. */
  run(): Promise<RetentionReport | undefined> {
    return (this.running ??= this.pass().finally(() => (this.running = undefined)));
  }

  private async pass(): Promise<RetentionReport | undefined> {
    const started = performance.now();
    let outcome: JobOutcome = "ok";
    const { log } = this.deps;
    try {
      const { batchSize, deleteBatchSize } = this.options;
      const report = await runRetention(this.deps, { now: this.clock(), batchSize, deleteBatchSize, signal: this.stop.signal });
      if (report.status === "skipped") log.debug("retention pass skipped: another server holds the lock");
      if (report.status === "done" && retentionTotal(report) > 0) {
        const counts = Object.fromEntries(report.categories.filter((c) => c.count > 0).map((c) => [c.key, c.count]));
        log.info({ runId: report.runId, counts, interrupted: report.interrupted }, "retention pass done");
      }
      return report;
    } catch (error) {
      outcome = "failed";
      if (error instanceof RetentionPolicyError) {
        log.error({ problems: error.problems }, "the stored retention policy is invalid: nothing was archived, deleted or purged; set a valid one with setSystemConfig (README, Retention)");
      } else {
        log.warn({ err: error }, "retention pass failed; tried again at the next interval");
      }
      return undefined;
    } finally {
      this.observe?.("retention", outcome, (performance.now() - started) / 1000);
    }
  }

  /** Stops the timer, and a pass under way after its current batch; waits for it. */
  async dispose(): Promise<void> {
    clearInterval(this.timer);
    this.stop.abort();
    await this.running;
  }
}
