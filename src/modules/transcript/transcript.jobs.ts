/**
 * Runs exports and owns the storage backend. One per server process.
 *
 * A transcript row is its own job record. The server that runs an export holds a lease on the row:
 * `attempts` says which run it is and `heartbeatAt` is refreshed every quarter of
 * TRANSCRIPT_JOB_TIMEOUT_SECONDS while the run lasts. Every write the run makes to the row names its
 * attempt, so a run that lost its row (conversation deleted) or was taken over stops and deletes its own
 * file instead of overwriting anything.
 *
 * No acknowledged export is lost: a PENDING row whose server died keeps a stale heartbeat, and every server
 * sweeps for such rows when it starts and then periodically, takes them over (attempts + 1) and runs them
 * again from the beginning; after MAX_ATTEMPTS runs the export is FAILED instead. A server shutting down
 * stops its runs and releases their leases (heartbeatAt null), so another server takes them at once.
 */
import type { Knex } from "knex";
import type { JobObserver, JobOutcome } from "../jobs";
import type { Logger } from "pino";
import type { Config } from "../../config";
import { Conversation } from "../conversation/conversation.model";
import { Transcript } from "./transcript.model";
import { TranscriptStatus } from "./transcript.enums";
import { StorageUnavailableError, type TranscriptStorage } from "./transcript.storage";
import { createStorage } from "./storage.factory";
import { exportConversation, ExportError, exportSpec, type ExportSpec } from "./transcript.export";
import { CONTENT_TYPES } from "./transcript.serializers";
import { unavailableError } from "../../graphql/errors";

/** Runs of one export (the first plus takeovers) before it is given up as FAILED. */
export const MAX_ATTEMPTS = 3;
/** Stale exports one sweep takes over at most, so that one server does not take every job at once. */
const SWEEP_BATCH = 4;

class RunStopped extends Error {}

/** The message a FAILED transcript shows: short and safe (no paths, SQL or S3 details). */
export function failureMessage(error: unknown): string {
  if (error instanceof ExportError || error instanceof StorageUnavailableError) return error.message;
  return "The export failed unexpectedly";
}

export function storageKeyOf(transcript: Transcript): string {
  return `transcripts/${transcript.conversationId}/${transcript.id}-${transcript.attempts}.${transcript.format}`;
}

/** The export a transcript row asks for, with its conversation's current title and settings. */
export function specOf(transcript: Transcript, conversation: Conversation): ExportSpec {
  return exportSpec(conversation, {
    id: transcript.id,
    format: transcript.format,
    createdAt: transcript.createdAt,
    createdBy: transcript.createdBy,
    fromSeq: transcript.fromSeq ?? 1,
    toSeq: transcript.snapshotSeq ?? 0,
    from: transcript.fromTime,
    to: transcript.toTime,
    includeToolCalls: transcript.includeToolCalls,
    includeSystem: transcript.includeSystem,
  });
}

/**
 * The storage keys of a conversation's transcripts, read inside the transaction that deletes it. FOR UPDATE
 * on every one of its rows: an export finishing meanwhile waits for the delete, then finds its row gone and
 * removes its file itself, so no file is missed by both.
 */
export async function lockTranscriptKeys(trx: Knex.Transaction, conversationId: string): Promise<string[]> {
  const rows: { storageKey: string | null }[] = await trx("transcripts").where({ conversationId }).forUpdate().select("storageKey");
  return rows.flatMap((row) => (row.storageKey ? [row.storageKey] : []));
}

export class TranscriptJobs {
  readonly storage: TranscriptStorage;
  private readonly runs = new Map<string, { stop: AbortController; done: Promise<unknown> }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The periodic sweep in progress, awaited on dispose so that its queries do not outlive the pool. */
  private sweeping: Promise<unknown> | undefined;
  private disposed = false;

  constructor(
    private readonly knex: Knex,
    private readonly config: Pick<Config, "transcripts" | "encryption">,
    private readonly log: Logger,
    storage?: TranscriptStorage,
  ) {
    this.storage = storage ?? createStorage(config.transcripts);
  }

  private get timeoutSeconds(): number {
    return this.config.transcripts.jobTimeoutSeconds;
  }

  /** Told of every sweep and export (metrics). */
  observe: JobObserver | undefined;

  /** Takes over stale exports now, then every half timeout (at most every minute). */
  start(): void {
    const sweep = () => {
      const started = performance.now();
      const done = (outcome: JobOutcome) => this.observe?.("transcript-sweep", outcome, (performance.now() - started) / 1000);
      this.sweeping = this.sweep().then(
        () => done("ok"),
        (error: unknown) => {
          done("failed");
          this.log.warn({ err: error }, "transcript sweep failed");
        },
      );
    };
    sweep();
    this.sweepTimer = setInterval(sweep, Math.min(60, this.timeoutSeconds / 2) * 1000);
    this.sweepTimer.unref();
  }

  /** Claims PENDING exports whose server stopped answering, and runs them here; cleans up the storage. Returns how many claimed. */
  async sweep(): Promise<number> {
    if (this.disposed) return 0;
    const stale = this.knex("transcripts")
      .select("id")
      .where("status", TranscriptStatus.PENDING)
      .where((q) => q.whereNull("heartbeatAt").orWhere("heartbeatAt", "<", this.knex.raw("now() - make_interval(secs => ?)", [this.timeoutSeconds])))
      .orderBy("createdAt")
      .limit(SWEEP_BATCH)
      .forUpdate()
      .skipLocked();
    const claimed = (await Transcript.query(this.knex)
      .patch({ attempts: this.knex.raw("attempts + 1"), heartbeatAt: this.knex.raw("now()") } as unknown as Partial<Transcript>)
      .whereIn("id", stale)
      .where("status", TranscriptStatus.PENDING)
      .returning("*")) as unknown as Transcript[];
    for (const transcript of claimed) {
      this.log.info({ transcriptId: transcript.id, attempt: transcript.attempts }, "taking over an interrupted transcript export");
      this.runInBackground(transcript);
    }
    // Leftovers of writes that failed while the storage was away (S3: multipart uploads not yet aborted).
    await this.storage.cleanUp().catch((error: unknown) => this.log.warn({ err: error }, "transcript storage cleanup failed; retried on the next sweep"));
    return claimed.length;
  }

  /** Runs the export of a row this process holds the lease of, without waiting for it. */
  runInBackground(transcript: Transcript): void {
    void this.run(transcript);
  }

  /** Runs the export of a row this process holds the lease of; resolves to the row as it ends (never rejects). */
  run(transcript: Transcript): Promise<Transcript | undefined> {
    const stop = new AbortController();
    const done = this.execute(transcript, stop.signal).finally(() => this.runs.delete(transcript.id));
    this.runs.set(transcript.id, { stop, done });
    return done;
  }

  private async execute(transcript: Transcript, stopped: AbortSignal): Promise<Transcript | undefined> {
    const started = performance.now();
    const mine = { id: transcript.id, status: TranscriptStatus.PENDING, attempts: transcript.attempts };
    const log = this.log.child({ transcriptId: transcript.id, attempt: transcript.attempts });
    if (transcript.attempts > MAX_ATTEMPTS) {
      return this.settle(mine, { status: TranscriptStatus.FAILED, error: `The export was interrupted ${MAX_ATTEMPTS} times` });
    }
    const key = storageKeyOf(transcript);
    let stored = false;
    let lost = false;
    const heartbeat = setInterval(() => {
      this.knex("transcripts")
        .where(mine)
        .update({ heartbeatAt: this.knex.raw("now()") })
        .then((rows) => (lost ||= rows === 0))
        .catch((error: unknown) => log.warn({ err: error }, "transcript heartbeat failed"));
    }, (this.timeoutSeconds / 4) * 1000);
    try {
      const conversation = await Conversation.query(this.knex).findById(transcript.conversationId);
      if (!conversation) return undefined; // deleted, and the transcript with it
      const result = await exportConversation(
        this.knex,
        this.config.encryption,
        specOf(transcript, conversation),
        async (body) => {
          await this.storage.put(key, body, CONTENT_TYPES[transcript.format]);
          stored = true;
        },
        () => {
          if (lost || stopped.aborted) throw new RunStopped();
        },
      );
      const ready = await this.settle(mine, { status: TranscriptStatus.READY, storageKey: key, ...result });
      if (!ready) await this.removeFiles([key]); // the row went away (or to another server) meanwhile
      else log.info({ messages: result.messageCount, bytes: result.fileSizeBytes }, "transcript ready");
      this.observe?.("transcript-export", "ok", (performance.now() - started) / 1000);
      return ready;
    } catch (error) {
      // A rejected put stored nothing (TranscriptStorage.put); deleting anyway would only fail again, and
      // log a key to clean up by hand, while the storage is away.
      if (stored) await this.removeFiles([key]);
      if (error instanceof RunStopped) {
        if (stopped.aborted) await this.knex("transcripts").where(mine).update({ heartbeatAt: null }).catch(() => undefined);
        return undefined;
      }
      if (unavailableError(error)) {
        // The database, not the export, failed: pause until it answers, then run the export again from the start
        // (same attempt, same key). Past the job timeout another server may have taken it over; then this run's
        // writes name an attempt that is no longer the row's and change nothing.
        log.warn({ err: error }, "transcript export paused: the database is unavailable");
        return (await this.databaseBack(stopped)) ? this.execute(transcript, stopped) : undefined;
      }
      log.error({ err: error }, "transcript export failed");
      this.observe?.("transcript-export", "failed", (performance.now() - started) / 1000);
      return this.settle(mine, { status: TranscriptStatus.FAILED, error: failureMessage(error) }).catch((settleError: unknown) => {
        log.error({ err: settleError }, "could not mark the transcript FAILED"); // the sweep retries it later
        return undefined;
      });
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * Waits (backing off from 250 ms to 2 s) until the database answers: true then; false when the run was stopped
   * or the database stayed away past the job timeout (the row stays PENDING and the sweep takes it over later).
   */
  private async databaseBack(stopped: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + this.timeoutSeconds * 1000;
    for (let delay = 250; !stopped.aborted && Date.now() < deadline; delay = Math.min(delay * 2, 2000)) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (await this.knex.raw("select 1").then(() => true, () => false)) return !stopped.aborted;
    }
    return false;
  }

  /** Ends this run's lease with `patch`; undefined when the row is no longer this run's. */
  private async settle(mine: Record<string, unknown>, patch: Partial<Transcript>): Promise<Transcript | undefined> {
    const [row] = (await Transcript.query(this.knex)
      .patch({ ...patch, heartbeatAt: null, completedAt: this.knex.raw("now()") } as unknown as Partial<Transcript>)
      .where(mine)
      .returning("*")) as unknown as Transcript[];
    return row;
  }

  /** Deletes files; failures are logged (with the keys, to clean up by hand), never thrown. */
  async removeFiles(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.storage.delete(keys);
    } catch (error) {
      this.log.error({ err: error, keys }, "could not delete transcript files");
    }
  }

  /** Stops the sweeps and the runs of this process, releasing their rows to other servers. */
  async dispose(): Promise<void> {
    this.disposed = true;
    clearInterval(this.sweepTimer);
    await this.sweeping; // it may still start runs
    const runs = [...this.runs.values()];
    for (const run of runs) run.stop.abort();
    await Promise.all(runs.map((run) => run.done));
    this.storage.dispose();
  }
}
