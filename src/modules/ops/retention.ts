/**
 * The retention pass: applies the policy stored under system_configs `retention` (retention.policy.ts) once.
 * In this order: purge the logs past their age, delete conversations archived long enough, archive the
 * conversations inactive long enough (so nothing this pass writes, its audit rows included, is purged by it).
 * A dry run counts the same rows with the same conditions and changes nothing.
 *
 * Everything is compared with the pass's `now`, a parameter (never the database's now()): the server's job
 * passes its clock, tests pass a date years ahead instead of waiting. Work goes in batches, each one statement
 * or one short transaction, so no statement holds many row locks or runs long, and concurrent writers only
 * ever wait for one batch; rows a writer holds are skipped (SKIP LOCKED) and left to the next pass.
 *
 * One pass at a time: on PostgreSQL a session advisory lock on one connection of the maintenance pool (no
 * statement timeout), held for the whole pass, on which the pass also runs, so a pass costs one connection;
 * another server (or the CLI) finding it held skips its pass. PGlite has one process (the folder lock) and one
 * connection, which a session lock would take from every request for the whole pass: there the statements
 * share the connection with the API between batches, and only the in-process guard below applies.
 *
 * Deliberately not here: rate_limits (the rate limiter sweeps expired windows itself), query_cache (the answer
 * cache sweeper), alert_deliveries on their own (they go with their alert: the webhook re-sends an alert of
 * its last days that has no delivery row), and the usage ledger ai_requests (the spend record, which the
 * cost_tracking roll-ups must keep agreeing with).
 */
import { randomUUID } from "node:crypto";
import type { Knex } from "knex";
import type { Logger } from "pino";
import pino from "pino";
import type { Config } from "../../config";
import type { Database } from "../../db/database";
import { withSessionLock } from "../../db/session-lock";
import { EVENTS_CHANNEL } from "../../db/notifications";
import { actorFor, type Actor } from "../actor";
import { audit } from "../audit/audit.service";
import { deleteConversationRows, removeConversationFiles, type ConversationFiles } from "../conversation/conversation.service";
import { ConversationStatus } from "../conversation/conversation.enums";
import type { LiveEvent } from "../live/live.hub";
import { TranscriptJobs } from "../transcript/transcript.jobs";
import { LOG_KEYS, ORIGINS, parseRetentionPolicy, RETENTION_KEY, type Days, type LogKey, type RetentionPolicy } from "./retention.policy";

/** pg_try_advisory_lock key of the retention pass: any fixed number no other lock of Parley's uses. */
export const RETENTION_LOCK = 6_230_174_508_821;
const DAY_MS = 86_400_000;

export interface RetentionDeps {
  db: Database;
  config: Config;
  log: Logger;
  /** Its storage removes the files of deleted conversations: the server's export jobs, or the CLI's own. */
  transcripts: TranscriptJobs;
}

export interface RetentionOptions {
  /** The pass's clock: every age is counted back from it. */
  now: Date;
  /** Count what would go, change nothing. @default false */
  dryRun?: boolean;
  /** Rows per statement when purging logs and archiving. @default 500 */
  batchSize?: number;
  /** Conversations per deleting transaction (each takes its messages, transcripts and artifacts along). @default 50 */
  deleteBatchSize?: number;
  /** Stops the pass between two batches (shutdown); the rest waits for the next pass. */
  signal?: AbortSignal;
}

export interface RetentionCategoryResult {
  /** The policy field this category follows, e.g. "archiveInactiveDays.web" or "metricsDays". */
  key: string;
  what: string;
  /** Null: kept forever (the policy does not set it). */
  days: Days;
  /** Rows older than this go; null when kept forever. */
  before: Date | null;
  /** Rows archived, deleted or purged (a dry run: that would be). */
  count: number;
  /** Deleted conversations only: their stored files (transcripts, artifacts). */
  files?: number;
}

export interface RetentionReport {
  /**
   * done: the policy was applied; dry-run: counted only; no-policy: none is set, so nothing goes; skipped: another
   * pass (another server, the CLI) holds the lock, and this one did nothing.
   */
  status: "done" | "dry-run" | "no-policy" | "skipped";
  now: Date;
  /** The request id of the audit rows this pass wrote. */
  runId: string;
  categories: RetentionCategoryResult[];
  /** Stopped between two batches (signal): the rest waits for the next pass. */
  interrupted: boolean;
}

interface LogCategory {
  key: LogKey;
  what: string;
  table: string;
  /** The row's age is counted from this column. */
  column: string;
  /** Rows that must stay whatever their age. */
  keep?: string;
  /** The rows' storage_key names a stored file, removed once its row's batch is committed. */
  files?: true;
}

const LOGS: LogCategory[] = [
  { key: "metricsDays", what: "metrics", table: "metrics", column: "recorded_at" },
  { key: "auditLogDays", what: "audit log entries", table: "audit_logs", column: "created_at" },
  // A completed backup's row is how restore finds its file: it goes only once the file is gone (pruned_at).
  { key: "backupLogDays", what: "backup log entries", table: "backup_logs", column: "started_at", keep: "(status = 'completed' and pruned_at is null)" },
  // Open alerts are work to do; a resolved one goes with its webhook deliveries (cascade).
  { key: "resolvedAlertDays", what: "resolved alerts", table: "system_alerts", column: "resolved_at" },
  { key: "queryHistoryDays", what: "query history (knowledge questions)", table: "query_history", column: "created_at" },
  // A user's archive of their data: a copy of everything, not kept longer than asked; one being written stays.
  { key: "dataExportDays", what: "data exports", table: "data_exports", column: "created_at", keep: "status = 'pending'", files: true },
];

/** An archived conversation's age: from ended_at, which archiving sets; a row archived by hand without it, updated_at. */
const ARCHIVED_AT = "coalesce(ended_at, updated_at)";

/** The statements of one pass: on the lock's connection (PostgreSQL), or the shared one (PGlite). */
interface Session {
  rows<T>(sql: string, bindings?: readonly Knex.RawBinding[]): Promise<T[]>;
  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
}

function session(knex: Knex, connection?: unknown): Session {
  return {
    async rows<T>(sql: string, bindings: readonly Knex.RawBinding[] = []) {
      const query = knex.raw(sql, bindings as Knex.RawBinding[]);
      return ((await (connection ? query.connection(connection) : query)) as { rows: T[] }).rows;
    },
    transaction: (work) => knex.transaction(work, connection ? { connection } : {}),
  };
}

/** Maintenance knex instances with a pass under way in this process. */
const running = new WeakSet<Knex>();

/**
 * One retention pass. Throws RetentionPolicyError (nothing changed) when the stored policy is invalid; resolves
 * to status "skipped" when another pass holds the lock.
 */
export async function runRetention(deps: RetentionDeps, options: RetentionOptions): Promise<RetentionReport> {
  const knex = deps.db.maintenance;
  const runId = randomUUID();
  const skipped: RetentionReport = { status: "skipped", now: options.now, runId, categories: [], interrupted: false };
  // Marked before the first await, so that a second call in this process is refused at once.
  if (running.has(knex)) return skipped;
  running.add(knex);
  try {
    if (deps.db.kind === "pglite") return await pass(deps, session(knex), runId, options);
    return (await withSessionLock(knex, RETENTION_LOCK, (connection) => pass(deps, session(knex, connection), runId, options))) ?? skipped;
  } finally {
    running.delete(knex);
  }
}

async function pass(deps: RetentionDeps, on: Session, runId: string, options: RetentionOptions): Promise<RetentionReport> {
  const { now, dryRun = false, batchSize = 500, deleteBatchSize = 50, signal } = options;
  const [row] = await on.rows<{ value: unknown }>("select value from system_configs where key = ?", [RETENTION_KEY]);
  const policy = parseRetentionPolicy(row?.value); // throws before anything changed
  const report: RetentionReport = { status: dryRun ? "dry-run" : "done", now, runId, categories: [], interrupted: false };
  if (!policy) return { ...report, status: "no-policy" };
  const before = (days: Days) => (days === null ? null : new Date(now.getTime() - days * DAY_MS));
  const stopped = () => (report.interrupted ||= signal?.aborted === true);
  /** Runs `batch` while it finds a full batch to do (and the pass is not stopped); returns the rows it changed. */
  const batches = async (batch: () => Promise<{ done: number; full: boolean }>) => {
    let total = 0;
    while (!stopped()) {
      const { done, full } = await batch();
      total += done;
      if (!full) break;
    }
    return total;
  };
  const actor = actorFor({ db: deps.db, config: deps.config, log: deps.log, transcripts: deps.transcripts }, null, { requestId: runId });

  for (const log of LOGS) {
    const days = policy[log.key];
    const cutoff = before(days);
    const result: RetentionCategoryResult = { key: log.key, what: log.what, days, before: cutoff, count: 0, ...(log.files ? { files: 0 } : {}) };
    report.categories.push(result);
    if (!cutoff) continue;
    const keep = log.keep;
    const where = `${log.column} < ?${keep ? ` and not ${keep}` : ""}`;
    const keys = log.files ? "coalesce(array_agg(storage_key) filter (where storage_key is not null), '{}')" : "'{}'::text[]";
    if (dryRun) {
      const [counted] = await on.rows<{ n: number; keys: string[] }>(`select count(*)::int as n, ${keys} as keys from ${log.table} where ${where}`, [cutoff]);
      Object.assign(result, { count: counted.n }, log.files ? { files: counted.keys.length } : {});
      continue;
    }
    result.count = await batches(async () => {
      const [gone] = await on.rows<{ n: number; keys: string[] }>(
        `with doomed as (select id from ${log.table} where ${where} order by ${log.column} limit ? for update skip locked),
          gone as (delete from ${log.table} where id in (select id from doomed) returning *)
         select count(*)::int as n, ${keys} as keys from gone`,
        [cutoff, batchSize],
      );
      if (gone.keys.length) {
        // After the rows' statement committed (autocommit): a failure to remove is logged by removeFiles, the rows stay gone.
        await deps.transcripts.removeFiles(gone.keys);
        result.files! += gone.keys.length;
      }
      return { done: gone.n, full: gone.n === batchSize };
    });
  }

  const deleteCutoff = before(policy.deleteArchivedDays);
  const deleted: RetentionCategoryResult = { key: "deleteArchivedDays", what: "archived conversations deleted", days: policy.deleteArchivedDays, before: deleteCutoff, count: 0, files: 0 };
  report.categories.push(deleted);
  if (deleteCutoff && dryRun) {
    const [counts] = await on.rows<{ n: number; files: number }>(
      `with doomed as (select id from conversations where status = 'archived' and ${ARCHIVED_AT} < ?)
       select (select count(*)::int from doomed) as n,
         (select count(*)::int from transcripts t join doomed d on d.id = t.conversation_id where t.storage_key is not null)
         + (select count(*)::int from artifacts a join doomed d on d.id = a.conversation_id where a.storage_key is not null) as files`,
      [deleteCutoff],
    );
    Object.assign(deleted, { count: counts.n, files: counts.files });
  } else if (deleteCutoff) {
    deleted.count = await batches(async () => {
      const batch = await deleteArchived(actor, on, deleteCutoff, deleteBatchSize, policy.deleteArchivedDays!);
      deleted.files! += batch.files;
      return batch;
    });
  }

  for (const origin of ORIGINS) {
    const days = policy.archiveInactiveDays[origin];
    const cutoff = before(days);
    const result: RetentionCategoryResult = { key: `archiveInactiveDays.${origin}`, what: `inactive ${origin} conversations archived`, days, before: cutoff, count: 0 };
    report.categories.push(result);
    if (!cutoff) continue;
    const inactive = "status = 'active' and origin = ? and updated_at < ?";
    if (dryRun) {
      result.count = (await on.rows<{ n: number }>(`select count(*)::int as n from conversations where ${inactive}`, [origin, cutoff]))[0].n;
      continue;
    }
    result.count = await batches(async () => {
      // archiveConversation's change, a batch at a time: status and ended_at, an audit row each (no actor: the
      // policy did it), and the inbox event each conversation's owner gets, sent when the statement commits.
      const archived = await on.rows<{ id: string }>(
        `with picked as (
           select id, updated_at from conversations where ${inactive} order by updated_at limit ? for update skip locked),
         archived as (
           update conversations c set status = ?, ended_at = ? from picked where c.id = picked.id
           returning c.id, c.owner_id, picked.updated_at as active),
         audited as (
           insert into audit_logs (action, target_type, target_id, details, request_id)
           select 'conversation.archive', 'conversation', a.id::text,
             jsonb_build_object('reason', 'retention', 'policy', ?::text, 'days', ?::int, 'lastActivityAt', a.active), ?
           from archived a)
         select a.id, ${conversationEventSql("conversation", "a")} as notified from archived a`,
        [origin, cutoff, batchSize, ConversationStatus.ARCHIVED, now, result.key, days, runId],
      );
      return { done: archived.length, full: archived.length === batchSize };
    });
  }

  if (!dryRun && report.categories.some((category) => category.count > 0)) {
    const counts = Object.fromEntries(report.categories.filter((c) => c.count > 0).map((c) => [c.key, c.count]));
    await on.transaction((trx) =>
      audit(actor, { action: "retention.run", targetType: "system_config", targetId: RETENTION_KEY, details: { now: now.toISOString(), counts, interrupted: report.interrupted } }, trx),
    );
  }
  return report;
}

/**
 * Deletes up to `limit` conversations archived before `cutoff` as deleteConversation does (rows in one
 * transaction, files after its commit), each with an audit row. An archived conversation stays archived, so
 * the candidates need no lock before deleteConversationRows takes its locks in deleteConversation's order.
 */
async function deleteArchived(actor: Actor, on: Session, cutoff: Date, limit: number, days: number): Promise<{ done: number; full: boolean; files: number }> {
  const candidates = await on.rows<{ id: string; owner: string; title: string; archived: Date }>(
    `select id, owner_id as owner, title, ${ARCHIVED_AT} as archived from conversations
     where status = 'archived' and ${ARCHIVED_AT} < ? order by ${ARCHIVED_AT} limit ?`,
    [cutoff, limit],
  );
  if (candidates.length === 0) return { done: 0, full: false, files: 0 };
  const files: ConversationFiles = { keys: [], artifactKeys: [] };
  const done = await on.transaction(async (trx) => {
    let gone = 0;
    for (const conversation of candidates) {
      const removed = await deleteConversationRows(trx, { id: conversation.id, ownerId: conversation.owner });
      if (!removed) continue; // deleted meanwhile by its owner
      gone += 1;
      files.keys.push(...removed.keys);
      files.artifactKeys.push(...removed.artifactKeys);
      const details = { ownerId: conversation.owner, title: conversation.title, reason: "retention", policy: "deleteArchivedDays", days, archivedAt: new Date(conversation.archived) };
      await audit(actor, { action: "conversation.delete", targetType: "conversation", targetId: conversation.id, details }, trx);
    }
    return gone;
  });
  await removeConversationFiles(actor, files);
  // A full batch of candidates means there may be more, even when some of them had gone meanwhile.
  return { done, full: candidates.length === limit, files: files.keys.length + files.artifactKeys.length };
}

/**
 * publishConversationChanged / publishConversationDeleted (live.hub.ts) as a SQL expression over `row`, a
 * relation with the conversation's id and owner_id, for statements that change many conversations.
 */
function conversationEventSql(type: Extract<LiveEvent, { o: string; c: string }>["t"], row: string): string {
  return `pg_notify('${EVENTS_CHANNEL}', json_build_object('t', '${type}', 'c', ${row}.id, 'o', ${row}.owner_id)::text)`;
}

/** Total rows a report counts. */
export function retentionTotal(report: RetentionReport): number {
  return report.categories.reduce((sum, category) => sum + category.count, 0);
}

/**
 * `npm run cli -- retention`: one pass now, with a storage handle of its own for the files of deleted
 * conversations, and logs on stderr (stdout is the report, --json included).
 */
export async function retentionCommand(db: Database, config: Config, options: { dryRun: boolean; now?: Date }): Promise<RetentionReport> {
  const log = pino({ level: config.logLevel, base: { service: "parley" } }, pino.destination({ dest: 2, sync: true }));
  const transcripts = new TranscriptJobs(db.maintenance, config, log);
  try {
    return await runRetention({ db, config, log, transcripts }, { now: options.now ?? new Date(), dryRun: options.dryRun });
  } finally {
    await transcripts.dispose();
  }
}

const number = (n: number) => n.toLocaleString("en-US");

/** The CLI's table: one row per category, what is kept, from when, and what went (or would). */
export function formatRetentionReport(report: RetentionReport): string {
  if (report.status === "no-policy") {
    return `No retention policy is set (system config "${RETENTION_KEY}"): nothing is archived, deleted or purged. See README, Retention.`;
  }
  if (report.status === "skipped") {
    return "Another Parley process holds the retention lock (a pass is under way there): nothing was done. Try again later.";
  }
  const dry = report.status === "dry-run";
  const rows = report.categories.map((c) => [
    c.what,
    c.days === null ? "forever" : `${number(c.days)} days`,
    c.before ? c.before.toISOString() : "-",
    c.days === null ? "-" : `${number(c.count)}${c.files ? ` (${number(c.files)} files)` : ""}`,
  ]);
  const header = ["what", "kept", "older than", dry ? "would go" : "gone"];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ");
  const total = number(retentionTotal(report));
  const lines = [
    `Retention as of ${report.now.toISOString()}${dry ? " (dry run: nothing was changed)" : ""}`,
    line(header),
    ...rows.map(line),
    dry
      ? `${total} rows would be archived, deleted or purged. Run without --dry-run to apply the policy.`
      : `${total} rows archived, deleted or purged.${retentionTotal(report) > 0 ? ` Audit log entries carry the request id ${report.runId}.` : ""}`,
  ];
  if (report.interrupted) lines.push("Stopped before the end: the rest goes on the next pass.");
  return lines.join("\n");
}
