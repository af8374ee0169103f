/**
 * Retention (issue 19.4): the pass against a real database, on a fake clock (`now` is a parameter; nothing
 * waits), then `npm run cli -- retention` as operators run it, in a few child processes. Each kind of row goes
 * exactly past its age and not a millisecond before; inactive conversations are archived per origin as
 * archiveConversation archives them; archived ones are deleted with their files; work goes in batches under one
 * lock; a dry run counts what the real run then does; a bad policy stored by SQL changes nothing.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { Knex } from "knex";
import knexFactory from "knex";
import pino from "pino";
import { createNotificationListener, EVENTS_CHANNEL, type NotificationListener } from "../../src/db/notifications";
import { TranscriptJobs } from "../../src/modules/transcript/transcript.jobs";
import { RETENTION_LOCK, runRetention, type RetentionDeps, type RetentionOptions, type RetentionReport } from "../../src/modules/ops/retention";
import { RetentionJob } from "../../src/modules/ops/retention.job";
import { RetentionPolicyError } from "../../src/modules/ops/retention.policy";
import type { JobOutcome } from "../../src/modules/jobs";
import { createTestDatabase, testDbKind, type TestDatabase } from "../helpers/db";
import { cliTarget, parleyCli, type CliTarget } from "../helpers/cli";

const DAY = 86_400_000;
/** Tests of a second database session holding the lock, which the embedded database has no other of: registered on PostgreSQL only. */
const onPostgres = (name: string, fn: () => Promise<void>) => (testDbKind() === "postgres" ? it(name, fn) : undefined);
/** The fake clock: a fixed instant; rows are placed relative to it, and later passes move it ahead. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const ago = (days: number, ms = 0) => new Date(NOW.getTime() - days * DAY + ms);
const later = (days: number, ms = 0) => new Date(NOW.getTime() + days * DAY + ms);
const SHA = "a".repeat(64);

let test: TestDatabase;
let knex: Knex;
let deps: RetentionDeps;
let transcripts: TranscriptJobs;
let storageDir: string;
let owner: string;
let listener: NotificationListener;
const events: Record<string, unknown>[] = [];

beforeAll(async () => {
  storageDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-retention-"));
  test = await createTestDatabase({ TRANSCRIPT_DIR: storageDir });
  knex = test.db.knex;
  const log = pino({ level: "silent" });
  transcripts = new TranscriptJobs(test.db.maintenance, test.config, log);
  deps = { db: test.db, config: test.config, log, transcripts };
  listener = await createNotificationListener(test.db, test.url, log);
  listener.on(EVENTS_CHANNEL, (event) => events.push(event));
  [{ id: owner }] = await knex("users").insert({ displayName: "retention-owner", role: "member" }).returning("id");
});

afterAll(async () => {
  await listener?.dispose();
  await transcripts?.dispose();
  await test?.dispose();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

beforeEach(async () => {
  await knex.raw("truncate metrics, audit_logs, backup_logs, system_alerts, query_history, conversations, system_configs, data_exports cascade");
  events.length = 0;
});

const setPolicy = (value: unknown) => knex("system_configs").insert({ key: "retention", value: JSON.stringify(value) }).onConflict("key").merge();
const pass = (options: Partial<RetentionOptions> = {}) => runRetention(deps, { now: NOW, ...options });
const counts = (report: RetentionReport) => Object.fromEntries(report.categories.map((c) => [c.key, c.files === undefined ? c.count : [c.count, c.files]]));
const count = async (table: string, where: Record<string, unknown> = {}) => Number((await knex(table).where(where).count({ n: "*" }))[0].n);

/** One column of the rows (pluck does not map camelCase names back). */
async function values(query: Knex.QueryBuilder, column: string): Promise<unknown[]> {
  return ((await query.select(column)) as Record<string, unknown>[]).map((row) => row[column]);
}

interface ConversationRow {
  origin?: "web" | "discord" | "api";
  status?: "active" | "archived";
  updatedAt: Date;
  endedAt?: Date | null;
}

async function conversation({ origin = "web", status = "active", updatedAt, endedAt = null }: ConversationRow): Promise<string> {
  // last_seq 1: room for the one message withFiles adds, without an update (which would move updated_at).
  const row = { ownerId: owner, title: `${origin} ${status}`, origin, status, updatedAt, endedAt, createdAt: updatedAt, lastSeq: 1 };
  const [{ id }] = await knex("conversations").insert(row).returning("id");
  return id;
}

/** A message, a READY transcript and a file artifact, both files in the storage; returns their keys. */
async function withFiles(conversationId: string): Promise<string[]> {
  const [{ id: messageId }] = await knex("messages").insert({ conversationId, seq: 1, role: "assistant", content: "here" }).returning("id");
  const transcriptKey = `transcripts/${conversationId}/${randomUUID()}-1.csv`;
  await knex("transcripts").insert({ conversationId, format: "csv", status: "ready", storageKey: transcriptKey, fileSizeBytes: 4, messageCount: 1, sha256: SHA });
  const artifactId = randomUUID();
  const artifactKey = `artifacts/${conversationId}/${artifactId}/${randomUUID()}`;
  await knex("artifacts").insert({ id: artifactId, rootId: artifactId, conversationId, messageId, version: 1, kind: "file", title: "a file", storageKey: artifactKey, sizeBytes: 4, sha256: SHA, status: "ready" });
  for (const key of [transcriptKey, artifactKey]) await transcripts.storage.put(key, Readable.from([Buffer.from("data")]), "text/plain");
  return [transcriptKey, artifactKey];
}

const stored = (key: string) => fs.existsSync(path.join(storageDir, key));

/** Notifications arrive on their own connection: waited for (a bounded number of short polls), never timed. */
async function eventsFor(ids: string[], type: string): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 500 && ids.some((id) => !events.some((e) => e.c === id && e.t === type)); i++) await new Promise((r) => setTimeout(r, 10));
  return events.filter((e) => e.t === type && ids.includes(e.c as string));
}

describe("the retention pass", () => {
  it("does nothing without a policy (no row, or null)", async () => {
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: ago(10_000) });
    await conversation({ updatedAt: ago(10_000) });
    expect((await pass()).status).toBe("no-policy");
    await setPolicy(null);
    expect((await pass()).status).toBe("no-policy");
    expect(await count("metrics")).toBe(1);
    expect(await count("conversations", { status: "active" })).toBe(1);
  });

  it("purges each kind of log exactly past its age and not a millisecond before; a dry run counts the same rows and changes nothing", async () => {
    await setPolicy({ metricsDays: 365, auditLogDays: 90, backupLogDays: 30, resolvedAlertDays: 7, queryHistoryDays: 60 });
    // For each kind: a row just past its age (goes) and one exactly at it (stays).
    for (const [at, tag] of [[ago(365, -1), "old"], [ago(365), "edge"]] as const) {
      await knex("metrics").insert({ clientBotId: "bot", metricType: tag, recordedAt: at });
    }
    for (const [at, tag] of [[ago(90, -1), "old"], [ago(90), "edge"]] as const) {
      await knex("audit_logs").insert({ action: `test.${tag}`, createdAt: at });
    }
    for (const [at, tag] of [[ago(60, -1), "old"], [ago(60), "edge"]] as const) {
      await knex("query_history").insert({ question: tag, createdAt: at });
    }
    const backup = (status: string, startedAt: Date, extra: Record<string, unknown> = {}) =>
      knex("backup_logs").insert({ backupType: "pg_dump", status, startedAt, errorMessage: "tag", ...extra });
    await backup("failed", ago(30, -1)); // goes
    await backup("failed", ago(30)); // stays: exactly its age
    await backup("completed", ago(3000)); // stays: its file is kept, and restore finds it by this row
    await backup("completed", ago(30, -1), { prunedAt: ago(1) }); // goes: the file is gone
    const alert = async (resolvedAt: Date | null) =>
      (await knex("system_alerts").insert({ source: "test", severity: "info", message: "m", resolvedAt, createdAt: ago(1000) }).returning("id"))[0].id as string;
    const resolvedOld = await alert(ago(7, -1)); // goes, with its delivery
    await alert(ago(7)); // stays
    await alert(null); // open: stays whatever its age
    await knex("alert_deliveries").insert({ alertId: resolvedOld, status: "delivered" });

    const expected = {
      metricsDays: 1,
      auditLogDays: 1,
      backupLogDays: 2,
      resolvedAlertDays: 1,
      queryHistoryDays: 1,
      dataExportDays: [0, 0],
      deleteArchivedDays: [0, 0],
      "archiveInactiveDays.web": 0,
      "archiveInactiveDays.discord": 0,
      "archiveInactiveDays.api": 0,
    };
    const dry = await pass({ dryRun: true });
    expect(dry.status).toBe("dry-run");
    expect(counts(dry)).toEqual(expected);
    expect(dry.categories.find((c) => c.key === "metricsDays")!.before).toEqual(ago(365));
    expect(await count("metrics")).toBe(2);

    const done = await pass();
    expect(done.status).toBe("done");
    expect(counts(done)).toEqual(expected);
    expect(await values(knex("metrics"), "metricType")).toEqual(["edge"]);
    expect((await knex("audit_logs").where("action", "like", "test.%").pluck("action")).sort()).toEqual(["test.edge"]);
    expect(await knex("query_history").pluck("question")).toEqual(["edge"]);
    expect(await knex("backup_logs").orderBy("startedAt").select("status", "startedAt")).toEqual([
      { status: "completed", startedAt: ago(3000) },
      { status: "failed", startedAt: ago(30) },
    ]);
    expect(await values(knex("system_alerts").orderBy("resolvedAt"), "resolvedAt")).toEqual([ago(7), null]);
    expect(await count("alert_deliveries")).toBe(0);
    // One summary row says what the policy took, under the pass's request id, with no actor.
    const [summary] = await knex("audit_logs").where({ action: "retention.run" }).select("actorId", "requestId", "details");
    expect(summary).toMatchObject({ actorId: null, requestId: done.runId, details: { counts: { metricsDays: 1, queryHistoryDays: 1 } } });

    expect(counts(await pass({ dryRun: true }))).toEqual({ ...expected, metricsDays: 0, auditLogDays: 0, backupLogDays: 0, resolvedAlertDays: 0, queryHistoryDays: 0 });
  });

  it("deletes data exports past their age with their files, and never one still being written", async () => {
    await setPolicy({ dataExportDays: 30 });
    const exportRow = async (status: "ready" | "failed" | "pending", createdAt: Date) => {
      const storageKey = status === "ready" ? `exports/${owner}/${randomUUID()}-1.json` : null;
      const ready = status === "ready" ? { storageKey, sha256: SHA, fileSizeBytes: 4, counts: JSON.stringify({ conversations: 0 }) } : {};
      await knex("data_exports").insert({ userId: owner, status, createdAt, ...ready, ...(status === "failed" ? { error: "storage away" } : {}) });
      if (storageKey) await transcripts.storage.put(storageKey, Readable.from([Buffer.from("{}\n")]), "application/json");
      return storageKey;
    };
    const oldReady = await exportRow("ready", ago(30, -1)); // goes, with its file
    await exportRow("failed", ago(31)); // goes (no file)
    const edge = await exportRow("ready", ago(30)); // stays: exactly its age
    await exportRow("pending", ago(400)); // stays: still being written (its run will end it)

    expect(counts(await pass({ dryRun: true }))).toMatchObject({ dataExportDays: [2, 1] });
    expect(await count("data_exports")).toBe(4);
    expect(stored(oldReady!)).toBe(true);

    expect(counts(await pass())).toMatchObject({ dataExportDays: [2, 1] });
    expect((await knex("data_exports").orderBy("createdAt").select("status")).map((row) => row.status)).toEqual(["pending", "ready"]);
    expect(stored(oldReady!)).toBe(false);
    expect(stored(edge!)).toBe(true);
  });

  it("archives conversations inactive past their origin's age as archiveConversation does, and leaves the rest", async () => {
    await setPolicy({ archiveInactiveDays: { web: 90, discord: 30, api: null } });
    const webOld = await conversation({ origin: "web", updatedAt: ago(90, -1) });
    const webEdge = await conversation({ origin: "web", updatedAt: ago(90) });
    const discordOld = await conversation({ origin: "discord", updatedAt: ago(31) });
    const discordRecent = await conversation({ origin: "discord", updatedAt: ago(29) });
    const apiAncient = await conversation({ origin: "api", updatedAt: ago(5000) });
    const archivedBefore = await conversation({ origin: "web", status: "archived", updatedAt: ago(400), endedAt: ago(400) });

    const dry = await pass({ dryRun: true });
    expect(counts(dry)).toMatchObject({ "archiveInactiveDays.web": 1, "archiveInactiveDays.discord": 1, "archiveInactiveDays.api": 0 });
    expect(await count("conversations", { status: "archived" })).toBe(1);

    const done = await pass();
    expect(counts(done)).toMatchObject({ "archiveInactiveDays.web": 1, "archiveInactiveDays.discord": 1, "archiveInactiveDays.api": 0 });
    const rows = await knex("conversations").select("id", "status", "endedAt");
    const byId = Object.fromEntries(rows.map((row) => [row.id, row]));
    expect(byId[webOld]).toMatchObject({ status: "archived", endedAt: NOW });
    expect(byId[discordOld]).toMatchObject({ status: "archived", endedAt: NOW });
    for (const id of [webEdge, discordRecent, apiAncient]) expect(byId[id]).toMatchObject({ status: "active", endedAt: null });
    expect(byId[archivedBefore]).toMatchObject({ status: "archived", endedAt: ago(400) }); // untouched
    // Like archiveConversation: an audit row each (no actor: the policy did it), and the owner's inbox is told.
    const audits = await knex("audit_logs").where({ action: "conversation.archive" }).orderBy("targetId").select("actorId", "targetType", "targetId", "details", "requestId");
    expect(audits).toEqual(
      [webOld, discordOld].sort().map((id) => ({
        actorId: null,
        targetType: "conversation",
        targetId: id,
        requestId: done.runId,
        details: expect.objectContaining({ reason: "retention", policy: id === webOld ? "archiveInactiveDays.web" : "archiveInactiveDays.discord", days: id === webOld ? 90 : 30 }),
      })),
    );
    expect(await eventsFor([webOld, discordOld], "conversation")).toEqual(
      expect.arrayContaining([webOld, discordOld].map((c) => ({ t: "conversation", c, o: owner }))),
    );
    expect(counts(await pass({ dryRun: true }))["archiveInactiveDays.web"]).toBe(0);
  });

  it("deletes archived conversations past their age from when they were archived, with their messages, transcripts, artifacts and files", async () => {
    await setPolicy({ deleteArchivedDays: 365 });
    const old = await conversation({ status: "archived", updatedAt: ago(2), endedAt: ago(365, -1) });
    const oldFiles = await withFiles(old);
    const edge = await conversation({ status: "archived", updatedAt: ago(2), endedAt: ago(365) });
    const edgeFiles = await withFiles(edge);
    // Archived by hand without ended_at: its age counts from updated_at.
    const legacy = await conversation({ status: "archived", updatedAt: ago(400), endedAt: null });
    const active = await conversation({ updatedAt: ago(5000) });
    expect([...oldFiles, ...edgeFiles].every(stored)).toBe(true);

    const dry = await pass({ dryRun: true });
    expect(counts(dry).deleteArchivedDays).toEqual([2, 2]);
    expect(oldFiles.every(stored)).toBe(true);

    const done = await pass();
    expect(counts(done).deleteArchivedDays).toEqual([2, 2]);
    expect((await knex("conversations").pluck("id")).sort()).toEqual([edge, active].sort());
    for (const table of ["messages", "transcripts", "artifacts"]) expect(await values(knex(table).distinct("conversationId"), "conversationId")).toEqual([edge]);
    expect(oldFiles.some(stored)).toBe(false);
    expect(edgeFiles.every(stored)).toBe(true);
    const audits = await knex("audit_logs").where({ action: "conversation.delete" }).select("actorId", "targetId", "details");
    expect(audits.map((a) => a.targetId).sort()).toEqual([old, legacy].sort());
    expect(audits.find((a) => a.targetId === old)).toMatchObject({ actorId: null, details: { ownerId: owner, title: "web archived", reason: "retention", days: 365 } });
    // Open streams of a deleted conversation end: the same event deleteConversation sends.
    expect(await eventsFor([old, legacy], "deleted")).toHaveLength(2);
  });

  it("deletes a conversation it archived exactly deleteArchivedDays later, on a clock moved ahead", async () => {
    await setPolicy({ archiveInactiveDays: { web: 10 }, deleteArchivedDays: 20 });
    const idle = await conversation({ updatedAt: ago(11) });
    await pass();
    expect(await knex("conversations").where({ id: idle }).first("status", "endedAt")).toEqual({ status: "archived", endedAt: NOW });
    expect(counts(await pass({ now: later(20) })).deleteArchivedDays).toEqual([0, 0]);
    expect(await count("conversations")).toBe(1);
    expect(counts(await pass({ now: later(20, 1) })).deleteArchivedDays).toEqual([1, 0]);
    expect(await count("conversations")).toBe(0);
  });

  it("works in batches of the given size: a statement (or deleting transaction) per batch, and the totals add up", async () => {
    await setPolicy({ metricsDays: 1, archiveInactiveDays: { api: 1 }, deleteArchivedDays: 1 });
    await knex("metrics").insert(Array.from({ length: 7 }, (_, i) => ({ clientBotId: "bot", metricType: `m${i}`, recordedAt: ago(2, i) })));
    for (let i = 0; i < 5; i++) await conversation({ origin: "api", updatedAt: ago(2, i) });
    for (let i = 0; i < 5; i++) await conversation({ status: "archived", updatedAt: ago(2, i), endedAt: ago(2, i) });
    const statements: string[] = [];
    const record = (query: { sql: string }) => statements.push(query.sql);
    test.db.maintenance.on("query", record);
    let report: RetentionReport;
    try {
      report = await pass({ batchSize: 3, deleteBatchSize: 2 });
    } finally {
      test.db.maintenance.off("query", record);
    }
    expect(counts(report)).toMatchObject({ metricsDays: 7, "archiveInactiveDays.api": 5, deleteArchivedDays: [5, 0] });
    const startingWith = (start: string) => statements.filter((sql) => sql.trimStart().startsWith(start)).length;
    expect(startingWith("with doomed as (select id from metrics")).toBe(3); // 3 + 3 + 1
    expect(startingWith("with picked as")).toBe(2); // api only (web and discord are kept): 3 + 2
    expect(startingWith("select id, owner_id as owner")).toBe(3); // 2 + 2 + 1
    expect(await count("conversations", { status: "active" })).toBe(0);
  });

  it("refuses a bad policy stored by SQL and changes nothing; the job logs it as a failed run", async () => {
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: ago(1000) });
    await conversation({ updatedAt: ago(1000) });
    await setPolicy({ metricsDays: 1, archiveInactiveDays: { web: -3 } });
    const error = await pass().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetentionPolicyError);
    expect((error as Error).message).toMatch(/archiveInactiveDays\.web must be a whole number of days from 1 to 36500.*got -3/);
    await expect(pass({ dryRun: true })).rejects.toThrow(RetentionPolicyError);

    const runs: JobOutcome[] = [];
    const job = new RetentionJob(deps, { clock: () => later(100) });
    job.observe = (name, outcome) => runs.push(outcome);
    expect(await job.run()).toBeUndefined();
    await job.dispose();
    expect(runs).toEqual(["failed"]);
    expect(await count("metrics")).toBe(1);
    expect(await count("conversations", { status: "active" })).toBe(1);
    expect(await count("audit_logs")).toBe(0);
  });

  it("runs as a job on its own clock, reported to the job metrics", async () => {
    await setPolicy({ metricsDays: 30 });
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: NOW });
    const runs: [string, JobOutcome][] = [];
    let clock = later(30);
    const job = new RetentionJob(deps, { intervalMs: 0, clock: () => clock });
    job.observe = (name, outcome) => runs.push([name, outcome]);
    try {
      expect(counts((await job.run())!).metricsDays).toBe(0); // exactly 30 days: kept
      clock = later(30, 1);
      expect(counts((await job.run())!).metricsDays).toBe(1);
    } finally {
      await job.dispose();
    }
    expect(runs).toEqual([["retention", "ok"], ["retention", "ok"]]);
  });

  it("runs one pass at a time in a process: a second one started meanwhile is skipped", async () => {
    await setPolicy({ metricsDays: 1 });
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: ago(2) });
    const [first, second] = await Promise.all([pass(), pass()]);
    expect(first.status).toBe("done");
    expect(second).toMatchObject({ status: "skipped", categories: [] });
    expect(counts(first).metricsDays).toBe(1);
  });

  it("stops between batches when told to (shutdown): nothing more is done, and it says so", async () => {
    await setPolicy({ metricsDays: 1 });
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: ago(2) });
    const stop = new AbortController();
    stop.abort();
    const report = await pass({ signal: stop.signal });
    expect(report).toMatchObject({ status: "done", interrupted: true });
    expect(await count("metrics")).toBe(1);
  });

  onPostgres("losing its connection mid-pass: batches done stay done, the one under way is undone whole, and the next pass finishes", async () => {
    await setPolicy({ deleteArchivedDays: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await conversation({ status: "archived", updatedAt: ago(2, i), endedAt: ago(2, i) }));
    const files = new Map<string, string[]>();
    for (const id of ids) files.set(id, await withFiles(id));
    const stalled = ids[3];
    // Deleting this one row sleeps, so the pass is caught holding an open deleting transaction; its backend is ended there.
    await knex.raw(`create function test_stall() returns trigger language plpgsql as $$ begin perform pg_sleep(60); return old; end $$`);
    await knex.raw(`create trigger test_stall before delete on conversations for each row when (old.id = '${stalled}') execute function test_stall()`);
    try {
      const running = pass({ deleteBatchSize: 2 }).then(() => "finished", (error: Error) => error.message);
      let sleeping: { pid: number }[] = [];
      for (let i = 0; i < 600 && !sleeping.length; i++) {
        sleeping = (await knex.raw(`select pid from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`)).rows;
        if (!sleeping.length) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(sleeping).toHaveLength(1);
      await knex.raw("select pg_terminate_backend(?)", [sleeping[0].pid]);
      expect(await running).toMatch(/terminat/i);
    } finally {
      await knex.raw("drop trigger test_stall on conversations");
      await knex.raw("drop function test_stall()");
    }
    // Each conversation is there whole (its rows and files) or gone whole; the stalled one's batch was undone.
    const left = new Set(await knex("conversations").pluck("id"));
    expect(left.has(stalled)).toBe(true);
    expect(left.size).toBeLessThan(ids.length);
    for (const id of ids) {
      const there = left.has(id);
      expect([id, await count("messages", { conversationId: id }), await count("transcripts", { conversationId: id }), files.get(id)!.map(stored)]).toEqual([id, there ? 1 : 0, there ? 1 : 0, [there, there]]);
    }
    // The lock went with the session; a pass on a fresh connection does the rest.
    expect(counts(await pass()).deleteArchivedDays).toEqual([left.size, 2 * left.size]);
    expect(await count("conversations")).toBe(0);
    expect([...files.values()].flat().some(stored)).toBe(false);
  });

  onPostgres("skips its pass while another session holds the lock, and releases the lock after its own", async () => {
    await setPolicy({ metricsDays: 1 });
    await knex("metrics").insert({ clientBotId: "bot", metricType: "t", recordedAt: ago(2) });
    const other = knexFactory({ client: "pg", connection: test.url, pool: { min: 1, max: 1 } });
    try {
      await other.raw("select pg_advisory_lock(?::bigint)", [RETENTION_LOCK]);
      expect((await pass()).status).toBe("skipped");
      expect((await pass({ dryRun: true })).status).toBe("skipped");
      expect(await count("metrics")).toBe(1);
      await other.raw("select pg_advisory_unlock(?::bigint)", [RETENTION_LOCK]);
      expect(counts(await pass()).metricsDays).toBe(1);
      const { rows } = await other.raw("select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())");
      expect(rows[0].n).toBe(0);
    } finally {
      await other.destroy();
    }
  });
});

describe("npm run cli -- retention", () => {
  // Each case runs the CLI as a child process (seconds each, on PGlite more).
  jest.setTimeout(240_000);
  let target: CliTarget;

  beforeAll(async () => {
    target = await cliTarget({ migrated: true });
  });
  afterAll(async () => {
    await target?.dispose();
  });

  const cli = (args: string[]) => parleyCli(["retention", ...args], { LOG_LEVEL: "silent", TRANSCRIPT_DIR: storageDir, ...target.env });
  const year = 365 * DAY;

  it("--dry-run --json counts what would go and changes nothing; the real run does just that and prints the table", async () => {
    const real = Date.now();
    await target.use(async (db) => {
      const k = db.knex;
      await k("system_configs").insert({ key: "retention", value: JSON.stringify({ metricsDays: 365, archiveInactiveDays: { discord: 30 } }) });
      await k("metrics").insert([
        { clientBotId: "bot", metricType: "old", recordedAt: new Date(real - 2 * year) },
        { clientBotId: "bot", metricType: "new", recordedAt: new Date(real) },
      ]);
      const [{ id }] = await k("users").insert({ displayName: "cli-owner", role: "member" }).returning("id");
      await k("conversations").insert({ ownerId: id, origin: "discord", updatedAt: new Date(real - 40 * DAY) });
    });

    const dry = await cli(["--dry-run", "--json"]);
    expect(dry).toMatchObject({ code: 0, stderr: "" });
    const report = JSON.parse(dry.stdout) as { status: string; categories: { key: string; count: number }[] };
    expect(report.status).toBe("dry-run");
    const dryCounts = Object.fromEntries(report.categories.map((c) => [c.key, c.count]));
    expect(dryCounts).toMatchObject({ metricsDays: 1, "archiveInactiveDays.discord": 1, "archiveInactiveDays.web": 0, auditLogDays: 0 });
    const rowsLeft = (db: { knex: Knex }) => Promise.all([db.knex("metrics").count({ n: "*" }), db.knex("conversations").where({ status: "active" }).count({ n: "*" })]);
    expect((await target.use(rowsLeft)).map(([row]) => Number(row.n))).toEqual([2, 1]);

    const run = await cli([]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Retention as of \d{4}-\d\d-\d\dT/);
    expect(lines[1]).toMatch(/^what\s+kept\s+older than\s+gone$/);
    expect(run.stdout).toMatch(/^metrics\s+365 days\s+\S+Z\s+1$/m);
    expect(run.stdout).toMatch(/^inactive discord conversations archived\s+30 days\s+\S+Z\s+1$/m);
    expect(run.stdout).toMatch(/^inactive web conversations archived\s+forever\s+-\s+-$/m);
    expect(lines.at(-1)).toMatch(/^2 rows archived, deleted or purged\. Audit log entries carry the request id [0-9a-f-]{36}\.$/);
    const after = await target.use(async (db) => ({
      metrics: await values(db.knex("metrics"), "metricType"),
      statuses: await db.knex("conversations").pluck("status"),
    }));
    expect(after).toEqual({ metrics: ["new"], statuses: ["archived"] });
  });

  it("refuses a bad stored policy with the problem named, exit 1, and changes nothing", async () => {
    await target.use((db) => db.knex("system_configs").where({ key: "retention" }).update({ value: JSON.stringify({ metricsDays: 1.5, keepForever: true }) }));
    const before = await target.use((db) => db.knex("metrics").count({ n: "*" }));
    const result = await cli([]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('metricsDays must be a whole number of days from 1 to 36500, or null to keep forever; got 1.5');
    expect(result.stderr).toContain('unknown key "keepForever"');
    expect(await target.use((db) => db.knex("metrics").count({ n: "*" }))).toEqual(before);
  });

  onPostgres("says so and exits 1 while another process holds the lock", async () => {
    await target.use((db) => db.knex("system_configs").where({ key: "retention" }).update({ value: JSON.stringify({ metricsDays: 1 }) }));
    const other = knexFactory({ client: "pg", connection: target.env.DATABASE_URL, pool: { min: 1, max: 1 } });
    try {
      await other.raw("select pg_advisory_lock(?::bigint)", [RETENTION_LOCK]);
      const result = await cli(["--dry-run"]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain("Another Parley process holds the retention lock");
    } finally {
      await other.destroy();
    }
  });
});
