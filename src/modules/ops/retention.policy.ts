/**
 * The retention policy: how long Parley keeps what ages. It lives in system_configs under one key, `retention`,
 * as JSON, and is checked here and nowhere else: setSystemConfig refuses a bad one (BAD_USER_INPUT, nothing
 * stored), and the retention pass refuses one that got in by SQL (nothing purged).
 *
 *   archiveInactiveDays   per origin (web, discord, api): an ACTIVE conversation with no activity (its updated_at,
 *                         which every message, rename or change of parameters moves) for this many days is archived
 *   deleteArchivedDays    an ARCHIVED conversation is deleted this many days after it was archived (ended_at), with
 *                         its messages, transcripts and artifacts and their files
 *   metricsDays           metrics rows, by recorded_at
 *   auditLogDays          audit_logs rows, by created_at; at least MIN_AUDIT_LOG_DAYS, so a policy cannot empty the
 *                         record of who changed what (the policy change included) faster than that
 *   backupLogDays         backup_logs rows, by started_at, except completed backups whose file is still kept
 *   resolvedAlertDays     system_alerts resolved this long ago (open ones stay), with their webhook deliveries
 *   queryHistoryDays      query_history rows (knowledge questions and answers), by created_at
 *   dataExportDays        data exports (users' archives of their data) and their files, by created_at; a PENDING
 *                         one stays until it ends
 *
 * Each is a whole number of days from 1 to MAX_DAYS; a field left out (or null) keeps that kind forever, and no
 * policy at all (no row, or a null value) keeps everything. A day is 24 hours counted back from the pass's clock.
 */
import { BadUserInputError } from "../../graphql/errors";
import { ConversationOrigin } from "../conversation/conversation.enums";

/** The system_configs key. */
export const RETENTION_KEY = "retention";
/** A hundred years: longer is "forever", which is null. */
export const MAX_DAYS = 36_500;
/** The audit log outlives a policy change by at least this long. */
export const MIN_AUDIT_LOG_DAYS = 30;

export const ORIGINS = Object.values(ConversationOrigin);

/** The policy's fields that are a number of days (archiveInactiveDays is one per origin). */
export const LOG_KEYS = ["metricsDays", "auditLogDays", "backupLogDays", "resolvedAlertDays", "queryHistoryDays", "dataExportDays"] as const;
export type LogKey = (typeof LOG_KEYS)[number];

export type Days = number | null;

export interface RetentionPolicy {
  archiveInactiveDays: Record<ConversationOrigin, Days>;
  deleteArchivedDays: Days;
  metricsDays: Days;
  auditLogDays: Days;
  backupLogDays: Days;
  resolvedAlertDays: Days;
  queryHistoryDays: Days;
  dataExportDays: Days;
}

const KEYS = ["archiveInactiveDays", "deleteArchivedDays", ...LOG_KEYS] as const;

/** A policy that is not one: every problem is named, and nothing was stored or purged. */
export class RetentionPolicyError extends BadUserInputError {
  constructor(readonly problems: string[]) {
    super(`Bad retention policy: ${problems.join("; ")}`, { field: "value", problems });
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function days(value: unknown, path: string, problems: string[], min = 1): Days {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= MAX_DAYS) return value;
  const why = min > 1 ? ` (at least ${min}: the audit log must outlive a change of this policy)` : "";
  problems.push(`${path} must be a whole number of days from ${min} to ${MAX_DAYS}${why}, or null to keep forever; got ${JSON.stringify(value)}`);
  return null;
}

/**
 * The policy `value` (a system_configs value) says, or null for none. Throws RetentionPolicyError naming every
 * problem: not an object, an unknown key or origin, a number of days that is not a whole number in range.
 */
export function parseRetentionPolicy(value: unknown): RetentionPolicy | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw new RetentionPolicyError([`it must be a JSON object such as { "metricsDays": 365 }, got ${JSON.stringify(value)}`]);
  const problems: string[] = [];
  for (const key of Object.keys(value)) {
    if (!(KEYS as readonly string[]).includes(key)) problems.push(`unknown key "${key}" (known: ${KEYS.join(", ")})`);
  }
  const archive = { web: null, discord: null, api: null } as Record<ConversationOrigin, Days>;
  const perOrigin = value.archiveInactiveDays;
  if (isObject(perOrigin)) {
    for (const [origin, originDays] of Object.entries(perOrigin)) {
      if (!(ORIGINS as string[]).includes(origin)) problems.push(`archiveInactiveDays: unknown origin "${origin}" (known: ${ORIGINS.join(", ")})`);
      else archive[origin as ConversationOrigin] = days(originDays, `archiveInactiveDays.${origin}`, problems);
    }
  } else if (perOrigin !== undefined && perOrigin !== null) {
    problems.push(`archiveInactiveDays must be an object of days per origin such as { "web": 90, "discord": 30 }, got ${JSON.stringify(perOrigin)}`);
  }
  const policy: RetentionPolicy = {
    archiveInactiveDays: archive,
    deleteArchivedDays: days(value.deleteArchivedDays, "deleteArchivedDays", problems),
    metricsDays: days(value.metricsDays, "metricsDays", problems),
    auditLogDays: days(value.auditLogDays, "auditLogDays", problems, MIN_AUDIT_LOG_DAYS),
    backupLogDays: days(value.backupLogDays, "backupLogDays", problems),
    resolvedAlertDays: days(value.resolvedAlertDays, "resolvedAlertDays", problems),
    queryHistoryDays: days(value.queryHistoryDays, "queryHistoryDays", problems),
    dataExportDays: days(value.dataExportDays, "dataExportDays", problems),
  };
  if (problems.length) throw new RetentionPolicyError(problems);
  return policy;
}
