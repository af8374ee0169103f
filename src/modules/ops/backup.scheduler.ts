/**
 * Scheduled backups (BACKUP_INTERVAL_HOURS): every server checks now and then whether one is due, and the
 * one that gets the advisory lock takes it and prunes what BACKUP_KEEP lets go. Due means: no scheduled backup
 * has completed or is under way within the interval, and none failed within the last hour (a failing pg_dump
 * is retried hourly, not at every check). The lock is a session lock held on one pooled connection for the
 * whole run, so two servers never back up at once; the rows decide whether one is due, so a restarted server
 * does not take one more.
 *
 * The embedded database has one process (the folder lock) and one connection, which a session lock would
 * take from every request for the run: there the check runs without the lock.
 */
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { Config } from "../../config";
import type { Database } from "../../db/database";
import { withSessionLock } from "../../db/session-lock";
import type { JobObserver, JobOutcome } from "../jobs";
import { BackupLog, BackupStatus, BackupTrigger } from "./backup.model";
import { pruneScheduledBackups, runBackup } from "./backup.service";

/** pg_try_advisory_lock key of the schedule: any fixed number no other lock of Parley's uses. */
const SCHEDULE_LOCK = 5_104_330_913_557;
const HOUR_MS = 3_600_000;
/** How often a server looks, at most: a due backup starts within this. */
const CHECK_MS = 5 * 60_000;
const RETRY_AFTER_FAILURE_MS = HOUR_MS;

export type ScheduleResult = { ran: false; reason: "off" | "not-due" | "locked" | "failed" } | { ran: true; backup: BackupLog; pruned: BackupLog[] };

export class BackupScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ScheduleResult> | undefined;
  /** Told of every backup it runs (metrics). */
  observe: JobObserver | undefined;

  constructor(
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  start(): void {
    if (this.config.backup.intervalHours === 0) return;
    this.timer = setInterval(() => void this.tick(), Math.min(CHECK_MS, this.config.backup.intervalHours * HOUR_MS));
    this.timer.unref();
  }

  /** One check (and backup, if due); a check under way is joined. */
  tick(): Promise<ScheduleResult> {
    return (this.running ??= this.check().finally(() => (this.running = undefined)));
  }

  private async check(): Promise<ScheduleResult> {
    if (this.config.backup.intervalHours === 0) return { ran: false, reason: "off" };
    const now = this.clock();
    try {
      if (this.db.kind === "pglite") return await this.runIfDue(this.db.maintenance, now);
      const knex = this.db.maintenance;
      return (await withSessionLock(knex, SCHEDULE_LOCK, () => this.runIfDue(knex, now))) ?? { ran: false, reason: "locked" };
    } catch (error) {
      this.log.error({ err: error }, "scheduled backup failed");
      return { ran: false, reason: "failed" };
    }
  }

  private async runIfDue(knex: Knex, now: Date): Promise<ScheduleResult> {
    const interval = new Date(now.getTime() - this.config.backup.intervalHours * HOUR_MS);
    const retry = new Date(now.getTime() - Math.min(RETRY_AFTER_FAILURE_MS, this.config.backup.intervalHours * HOUR_MS));
    const recent = await BackupLog.query(knex)
      .where({ trigger: BackupTrigger.SCHEDULED })
      .where((q) =>
        q.where((ok) => ok.whereNot({ status: BackupStatus.FAILED }).where("startedAt", ">", interval)).orWhere((failed) => failed.where({ status: BackupStatus.FAILED }).where("startedAt", ">", retry)),
      )
      .first();
    if (recent) return { ran: false, reason: "not-due" };
    const started = performance.now();
    let outcome: JobOutcome = "ok";
    try {
      const backup = await runBackup(this.db, this.config, { trigger: BackupTrigger.SCHEDULED, now });
      const pruned = await pruneScheduledBackups(knex, this.config.backup, now);
      this.log.info({ backup: backup.filePath, bytes: backup.fileSizeBytes, pruned: pruned.length }, "scheduled backup completed");
      return { ran: true, backup, pruned };
    } catch (error) {
      outcome = "failed";
      throw error;
    } finally {
      this.observe?.("backup", outcome, (performance.now() - started) / 1000);
    }
  }

  /** Stops the timer and waits for a backup under way. */
  async dispose(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
