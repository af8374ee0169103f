/**
 * Runs file exports in the background and owns the storage backend. One per server process. Two kinds of
 * export share the machinery: transcripts (a conversation as JSON or CSV) and data exports (everything of one
 * user, modules/privacy). A kind (FileJob) says what its table is and how its file is written; the lease,
 * takeover, timeouts and clean-up below are the same for both.
 *
 * A job row is its own job record. The server that runs an export holds a lease on the row:
 * `attempts` says which run it is and `heartbeatAt` is refreshed every quarter of
 * TRANSCRIPT_JOB_TIMEOUT_SECONDS while the run lasts. Every write the run makes to the row names its
 * attempt, so a run that lost its row (conversation or user deleted) or was taken over stops and deletes its
 * own file instead of overwriting anything.
 *
 * No acknowledged export is lost: a PENDING row whose server died keeps a stale heartbeat, and every server
 * sweeps for such rows when it starts and then periodically, takes them over (attempts + 1) and runs them
 * again from the beginning; after MAX_ATTEMPTS runs the export is FAILED instead. A server shutting down
 * stops its runs and releases their leases (heartbeatAt null), so another server takes them at once.
 */
import type { Readable } from "node:stream";
import type { Knex } from "knex";
import type { Model, ModelClass } from "objection";
import type { JobObserver, JobOutcome } from "../jobs";
import type { Logger } from "pino";
import type { Config, EncryptionConfig } from "../../config";
import { Conversation } from "../conversation/conversation.model";
import { Transcript } from "./transcript.model";
import { TranscriptStatus } from "./transcript.enums";
import { StorageUnavailableError, type TranscriptStorage } from "./transcript.storage";
import { createStorage } from "./storage.factory";
import { exportConversation, ExportError, exportSpec, type ExportSpec } from "./transcript.export";
import { CONTENT_TYPES } from "./transcript.serializers";
import { unavailableError } from "../../graphql/errors";
import { dataExportJob } from "../privacy/data-export.job";

/** Runs of one export (the first plus takeovers) before it is given up as FAILED. */
export const MAX_ATTEMPTS = 3;
/** Stale exports one sweep takes over at most (per kind), so that one server does not take every job at once. */
const SWEEP_BATCH = 4;

class RunStopped extends Error {}

/** The message a FAILED export shows: short and safe (no paths, SQL or S3 details). */
export function failureMessage(error: unknown): string {
  if (error instanceof ExportError || error instanceof StorageUnavailableError) return error.message;
  return "The export failed unexpectedly";
}

/**
 * The columns every job table has: the lease (attempts, heartbeat_at) and what a run settles (status
 * pending → ready or failed, storage_key, error, completed_at). Statuses are TranscriptStatus's values.
 */
export interface JobRow extends Model {
  id: string;
  attempts: number;
}

/** What a run hands its kind's writer. */
export interface JobRun {
  knex: Knex;
  encryption: EncryptionConfig | undefined;
  /** Stores the file (once) under the run's key; on rejection nothing is stored. */
  put(body: Readable, contentType: string): Promise<void>;
  /** Throws when the run must stop (its row was lost or taken over, the server is stopping): call between pages. */
  checkpoint(): void;
}

/** One kind of export job. */
export interface FileJob<Row extends JobRow> {
  /** The job's label in metrics (parley_background_jobs_total{job}). */
  metric: string;
  /** What logs call it ("transcript") and the log field of its id ("transcriptId"). */
  noun: string;
  logKey: string;
  model: ModelClass<Row>;
  /** The key the run stores its file under: a new one per attempt, so a late write of an old run overwrites nothing. */
  keyOf(row: Row): string;
  /**
   * Writes the row's file through `run.put` and resolves to the columns the READY row gets besides status and
   * storage key; undefined when what it exports is gone (and the row with it, by cascade).
   */
  write(row: Row, run: JobRun): Promise<Partial<Row> | undefined>;
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

export const transcriptJob: FileJob<Transcript> = {
  metric: "transcript-export",
  noun: "transcript",
  logKey: "transcriptId",
  model: Transcript,
  keyOf: storageKeyOf,
  async write(transcript, run) {
    const conversation = await Conversation.query(run.knex).findById(transcript.conversationId);
    if (!conversation) return undefined; // deleted, and the transcript with it
    return exportConversation(
      run.knex,
      run.encryption,
      specOf(transcript, conversation),
      (body) => run.put(body, CONTENT_TYPES[transcript.format]),
      () => run.checkpoint(),
    );
  },
};

/**
 * The kinds every server runs and sweeps for: every process that runs exports must also take over the stale
 * ones of each kind. Listed here, the default of the constructor, so that the processes constructing the
 * runner (server/app.ts, discord/main.ts) need no change per kind.
 */
export const FILE_JOBS: readonly FileJob<JobRow>[] = [transcriptJob as unknown as FileJob<JobRow>, dataExportJob as unknown as FileJob<JobRow>];

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
    private readonly kinds: readonly FileJob<JobRow>[] = FILE_JOBS,
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
      // One label for the sweep of every kind: it is one run over the job tables.
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
    let count = 0;
    for (const kind of this.kinds) count += await this.sweepKind(kind);
    // Leftovers of writes that failed while the storage was away (S3: multipart uploads not yet aborted).
    await this.storage.cleanUp().catch((error: unknown) => this.log.warn({ err: error }, "transcript storage cleanup failed; retried on the next sweep"));
    return count;
  }

  private async sweepKind<Row extends JobRow>(kind: FileJob<Row>): Promise<number> {
    const stale = this.knex(kind.model.tableName)
      .select("id")
      .where("status", TranscriptStatus.PENDING)
      .where((q) => q.whereNull("heartbeatAt").orWhere("heartbeatAt", "<", this.knex.raw("now() - make_interval(secs => ?)", [this.timeoutSeconds])))
      .orderBy("createdAt")
      .limit(SWEEP_BATCH)
      .forUpdate()
      .skipLocked();
    const claimed = (await kind.model
      .query(this.knex)
      .patch({ attempts: this.knex.raw("attempts + 1"), heartbeatAt: this.knex.raw("now()") } as unknown as Partial<Row>)
      .whereIn("id", stale as unknown as readonly string[]) // a subquery: Objection's generic overloads do not take knex's builder
      .where("status", TranscriptStatus.PENDING)
      .returning("*")) as unknown as Row[];
    for (const row of claimed) {
      this.log.info({ [kind.logKey]: row.id, attempt: row.attempts }, `taking over an interrupted ${kind.noun} export`);
      this.runJobInBackground(kind, row);
    }
    return claimed.length;
  }

  /** Runs the export of a transcript this process holds the lease of, without waiting for it. */
  runInBackground(transcript: Transcript): void {
    this.runJobInBackground(transcriptJob, transcript);
  }

  /** Runs the export of a transcript this process holds the lease of; resolves to the row as it ends (never rejects). */
  run(transcript: Transcript): Promise<Transcript | undefined> {
    return this.runJob(transcriptJob, transcript);
  }

  /** runJob without waiting for it. */
  runJobInBackground<Row extends JobRow>(kind: FileJob<Row>, row: Row): void {
    void this.runJob(kind, row);
  }

  /** Runs the job of a row this process holds the lease of; resolves to the row as it ends (never rejects). */
  runJob<Row extends JobRow>(kind: FileJob<Row>, row: Row): Promise<Row | undefined> {
    const stop = new AbortController();
    const id = `${kind.model.tableName}:${row.id}`;
    const done = this.execute(kind, row, stop.signal).finally(() => this.runs.delete(id));
    this.runs.set(id, { stop, done });
    return done;
  }

  private async execute<Row extends JobRow>(kind: FileJob<Row>, row: Row, stopped: AbortSignal): Promise<Row | undefined> {
    const started = performance.now();
    const mine = { id: row.id, status: TranscriptStatus.PENDING, attempts: row.attempts };
    const log = this.log.child({ [kind.logKey]: row.id, attempt: row.attempts });
    if (row.attempts > MAX_ATTEMPTS) {
      return this.settle(kind, mine, { status: TranscriptStatus.FAILED, error: `The export was interrupted ${MAX_ATTEMPTS} times` });
    }
    const key = kind.keyOf(row);
    let stored = false;
    let lost = false;
    const heartbeat = setInterval(() => {
      this.knex(kind.model.tableName)
        .where(mine)
        .update({ heartbeatAt: this.knex.raw("now()") })
        .then((rows) => (lost ||= rows === 0))
        .catch((error: unknown) => log.warn({ err: error }, `${kind.noun} heartbeat failed`));
    }, (this.timeoutSeconds / 4) * 1000);
    try {
      const result = await kind.write(row, {
        knex: this.knex,
        encryption: this.config.encryption,
        put: async (body, contentType) => {
          await this.storage.put(key, body, contentType);
          stored = true;
        },
        checkpoint: () => {
          if (lost || stopped.aborted) throw new RunStopped();
        },
      });
      if (!result) return undefined; // what it exports is gone, and the row with it
      const ready = await this.settle(kind, mine, { status: TranscriptStatus.READY, storageKey: key, ...result });
      if (!ready) await this.removeFiles([key]); // the row went away (or to another server) meanwhile
      else log.info({ ...(result as Record<string, unknown>) }, `${kind.noun} ready`);
      this.observe?.(kind.metric, "ok", (performance.now() - started) / 1000);
      return ready;
    } catch (error) {
      // A rejected put stored nothing (TranscriptStorage.put); deleting anyway would only fail again, and
      // log a key to clean up by hand, while the storage is away.
      if (stored) await this.removeFiles([key]);
      if (error instanceof RunStopped) {
        if (stopped.aborted) await this.knex(kind.model.tableName).where(mine).update({ heartbeatAt: null }).catch(() => undefined);
        return undefined;
      }
      if (unavailableError(error)) {
        // The database, not the export, failed: pause until it answers, then run the export again from the start
        // (same attempt, same key). Past the job timeout another server may have taken it over; then this run's
        // writes name an attempt that is no longer the row's and change nothing.
        log.warn({ err: error }, `${kind.noun} export paused: the database is unavailable`);
        return (await this.databaseBack(stopped)) ? this.execute(kind, row, stopped) : undefined;
      }
      log.error({ err: error }, `${kind.noun} export failed`);
      this.observe?.(kind.metric, "failed", (performance.now() - started) / 1000);
      return this.settle(kind, mine, { status: TranscriptStatus.FAILED, error: failureMessage(error) }).catch((settleError: unknown) => {
        log.error({ err: settleError }, `could not mark the ${kind.noun} FAILED`); // the sweep retries it later
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
  private async settle<Row extends JobRow>(kind: FileJob<Row>, mine: Record<string, unknown>, patch: Record<string, unknown>): Promise<Row | undefined> {
    const [row] = (await kind.model
      .query(this.knex)
      .patch({ ...patch, heartbeatAt: null, completedAt: this.knex.raw("now()") } as unknown as Partial<Row>)
      .where(mine)
      .returning("*")) as unknown as Row[];
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
