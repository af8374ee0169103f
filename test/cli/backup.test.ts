/**
 * Backups that restore. The round trips seed a database, back it up, wipe it, restore it, and compare a digest
 * of every table's rows before and after: through the CLI (disk), and through the service to S3 (a real
 * S3-compatible server, with a dump large enough to go up in several parts). Then the ways a restore must
 * refuse with nothing changed (a truncated or corrupt file, a wrong checksum, the other database's format, a
 * database that is not empty), the PostgreSQL tools missing or too old, migrations applied after restoring an
 * older backup, the schedule with a fake clock, and the admin query.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { Knex } from "knex";
import { PGlite } from "@electric-sql/pglite";
import { loadConfig, type Config } from "../../src/config";
import { createDatabase, type Database } from "../../src/db/database";
import { restoreBackup, runBackup } from "../../src/modules/ops/backup.service";
import { BackupScheduler } from "../../src/modules/ops/backup.scheduler";
import { BackupStatus } from "../../src/modules/ops/backup.model";
import { Role } from "../../src/modules/user/role.enum";
import { createLogger } from "../../src/logger";
import { testConfig, testDbKind } from "../helpers/db";
import { cliTarget, parleyCli, type CliTarget } from "../helpers/cli";
import { s3Env, startS3, S3_BUCKET, type TestS3 } from "../helpers/s3";
import { createTestApp } from "../helpers/server";

const exec = promisify(execFile);
const kind = testDbKind();
/** Tests of PostgreSQL's tools and of several servers, which the embedded database has neither of: registered on PostgreSQL only. */
const onPostgres = (name: string, fn: () => Promise<void>) => (kind === "postgres" ? test(name, fn) : undefined);

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "parley-backup-test-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

type Digests = Record<string, { rows: number; md5: string }>;

/** Every table of the public schema: its row count and an md5 of its rows' text, in a fixed order. */
async function digests(knex: Knex): Promise<Digests> {
  const tables = (await knex.raw("select tablename from pg_tables where schemaname = 'public' order by tablename")).rows as { tablename: string }[];
  const result: Digests = {};
  for (const { tablename } of tables) {
    const row = (await knex.raw(`select count(*)::int as rows, md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as md5 from "${tablename}" t`)).rows[0];
    result[tablename] = { rows: Number(row.rows), md5: row.md5 };
  }
  return result;
}

/** The demo data set plus what the seed does not write: encrypted messages' bytes, vectors, big jsonb. */
async function seed(db: Database): Promise<void> {
  await db.migrate();
  const quiet = jest.spyOn(console, "log").mockImplementation(() => undefined); // the seed prints a demo key
  try {
    await db.maintenance.seed.run();
  } finally {
    quiet.mockRestore();
  }
  await db.maintenance("metrics").insert(
    Array.from({ length: 20 }, (_, i) => ({ clientBotId: "bot", metricType: "bulk", metricData: JSON.stringify({ i, blob: randomBytes(64).toString("base64") }), recordedAt: new Date(Date.UTC(2026, 0, 1, 0, i)) })),
  );
}

async function wipe(target: CliTarget): Promise<void> {
  if (kind === "postgres") await target.use((db) => db.maintenance.raw("drop schema public cascade; create schema public"));
  else fs.rmSync(target.env.PGLITE_DIR, { recursive: true, force: true });
}

/** What is in the target database: 0 tables when empty. */
async function tableCount(target: CliTarget): Promise<number> {
  if (kind === "pglite" && !fs.existsSync(path.join(target.env.PGLITE_DIR, "PG_VERSION"))) return 0;
  return target.use(async (db) => Number((await db.maintenance.raw("select count(*)::int as n from pg_tables where schemaname = 'public'")).rows[0].n));
}

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function configOf(target: CliTarget, env: Record<string, string> = {}): Config {
  return testConfig(target.env.DATABASE_URL, { ...target.env, ...env });
}

/** All tables equal, and the backup's own row (STARTED when the dump was taken) completed by the restore. */
function expectSameRows(before: Digests, after: Digests): void {
  const { backup_logs: _before, ...beforeRest } = before;
  const { backup_logs: _after, ...afterRest } = after;
  expect(afterRest).toEqual(beforeRest);
  expect(Object.keys(afterRest).length).toBeGreaterThan(30);
  expect(afterRest.messages.rows).toBeGreaterThan(0);
}

describe(`backup and restore through the CLI, to disk (${kind})`, () => {
  let target: CliTarget;
  const backupDir = () => path.join(work, "cli");
  const cli = (args: string[]) => parleyCli(args, { LOG_LEVEL: "silent", BACKUP_DIR: backupDir(), ...target.env });

  beforeAll(async () => {
    target = await cliTarget();
    await target.use(seed);
  });
  afterAll(() => target?.dispose());

  test("backs up, and the wiped database restores with every table's rows identical", async () => {
    const backup = await cli(["backup", "--to", "disk"]);
    expect(backup.stderr).not.toMatch(/Error/);
    expect(backup.code).toBe(0);
    const file = /Backed up to (\S+) \((\d+) bytes, sha256 ([0-9a-f]{64})\)/.exec(backup.stdout);
    expect(file).not.toBeNull();
    const [, filePath, size, hash] = file!;
    expect(path.dirname(filePath)).toBe(backupDir());
    expect(filePath).toMatch(kind === "postgres" ? /parley-postgres-\d{8}T\d{6}Z-[0-9a-f-]{36}\.dump$/ : /parley-pglite-\d{8}T\d{6}Z-[0-9a-f-]{36}\.tar\.gz$/);
    expect(fs.statSync(filePath).size).toBe(Number(size));
    expect(sha256(filePath)).toBe(hash);
    expect(fs.readFileSync(`${filePath}.sha256`, "utf8")).toBe(`${hash}  ${path.basename(filePath)}\n`);
    // `sha256sum -c` reads the file beside it, as operators check one.
    await expect(exec("sha256sum", ["-c", `${path.basename(filePath)}.sha256`], { cwd: backupDir() })).resolves.toBeDefined();

    const before = await target.use((db) => digests(db.maintenance));
    const log = await target.use((db) => db.maintenance("backup_logs").select());
    expect(log).toEqual([
      expect.objectContaining({ status: "completed", trigger: "manual", backupType: kind === "postgres" ? "pg_dump" : "pglite", storage: "disk", filePath, fileSizeBytes: Number(size), sha256: hash, errorMessage: null }),
    ]);

    await wipe(target);
    expect(await tableCount(target)).toBe(0);
    const restore = await cli(["restore", filePath]);
    expect(restore.stderr).not.toMatch(/Error|failed/);
    expect(restore.code).toBe(0);
    expect(restore.stdout).toContain(`sha256 ${hash} checked`);

    const after = await target.use((db) => digests(db.maintenance));
    expectSameRows(before, after);
    const restoredLog = await target.use((db) => db.maintenance("backup_logs").select());
    expect(restoredLog).toEqual([expect.objectContaining({ id: log[0].id, status: "completed", sha256: hash, fileSizeBytes: Number(size) })]);

    // Into a database that is not empty: refused, nothing changed; with --force: replaced.
    await target.use((db) => db.maintenance("metrics").insert({ clientBotId: "after", metricType: "later", metricData: "{}", recordedAt: new Date() }));
    const changed = await target.use((db) => digests(db.maintenance));
    const refused = await cli(["restore", filePath]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(kind === "postgres" ? /The database is not empty .* pass --force/ : /already holds a database: .* pass --force/);
    expect(await target.use((db) => digests(db.maintenance))).toEqual(changed);
    const forced = await cli(["restore", filePath, "--force"]);
    expect(forced.code).toBe(0);
    expectSameRows(before, await target.use((db) => digests(db.maintenance)));

    const listed = await cli(["backups"]);
    expect(listed.stdout).toContain(filePath);
    expect(listed.stdout).toContain("completed");
    // Five CLI processes and eight more opens of the database, one after another (on PGlite each starts the embedded
    // server): 18 s on a quiet 2-core machine, over 60 s once in CI with the machine loaded.
  }, 180_000);
});

describe(`backup and restore with S3 (${kind})`, () => {
  let s3: TestS3;
  let target: CliTarget;

  beforeAll(async () => {
    s3 = await startS3();
    target = await cliTarget();
    await target.use(async (db) => {
      await seed(db);
      // ~9 MB that does not compress: the dump goes up as a multipart upload of 5 MiB parts.
      const rows = Array.from({ length: 90 }, (_, i) => ({ clientBotId: "big", metricType: "noise", metricData: JSON.stringify({ i, noise: randomBytes(75_000).toString("base64") }), recordedAt: new Date() }));
      for (let i = 0; i < rows.length; i += 10) await db.maintenance("metrics").insert(rows.slice(i, i + 10));
    });
  });
  afterAll(async () => {
    await target?.dispose();
    await s3?.dispose();
  });

  test("backs up to the bucket in parts, and restores from s3://bucket/key with identical rows", async () => {
    const config = configOf(target, { ...s3Env(s3.endpoint), TRANSCRIPT_STORAGE: "disk" });
    const progress: number[] = [];
    const backup = await target.use((db) => runBackup(db, config, { to: "s3", onProgress: ({ done, total }) => progress.push(done / total) }));
    expect(backup).toMatchObject({ status: BackupStatus.COMPLETED, storage: "s3" });
    expect(backup.filePath).toBe(`s3://${S3_BUCKET}/${backup.storageKey}`);
    expect(backup.fileSizeBytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(await s3.objectKeys("backups/")).toEqual([backup.storageKey, `${backup.storageKey}.sha256`]);
    expect(s3.pendingUploads()).toEqual([]);
    expect(progress.at(-1)).toBe(1);
    expect(progress.every((value, i) => i === 0 || value >= progress[i - 1])).toBe(true);

    const before = await target.use((db) => digests(db.maintenance));
    await wipe(target);
    const result = await restoreBackup(config, { file: backup.filePath! });
    expect(result).toMatchObject({ sha256: backup.sha256, fileSizeBytes: backup.fileSizeBytes, migrated: [] });
    expectSameRows(before, await target.use((db) => digests(db.maintenance)));
  });
});

describe(`restores that must refuse, with nothing changed (${kind})`, () => {
  let source: CliTarget;
  let target: CliTarget;
  let good: string;

  beforeAll(async () => {
    source = await cliTarget();
    await source.use(seed);
    const backup = await source.use((db) => runBackup(db, configOf(source, { BACKUP_DIR: path.join(work, "refuse") })));
    good = backup.filePath!;
    target = await cliTarget();
  });
  afterAll(async () => {
    await source?.dispose();
    await target?.dispose();
  });

  /** A copy of `bytes` with a sidecar of its own checksum, or of `checksumOf`'s. */
  function file(name: string, bytes: Buffer, checksumOf: Buffer = bytes): string {
    const copy = path.join(work, name);
    fs.writeFileSync(copy, bytes);
    fs.writeFileSync(`${copy}.sha256`, `${createHash("sha256").update(checksumOf).digest("hex")}  ${name}\n`);
    return copy;
  }

  async function refused(options: { file: string; sha256?: string; force?: boolean }, message: RegExp): Promise<void> {
    await expect(restoreBackup(configOf(target), options)).rejects.toThrow(message);
    expect(await tableCount(target)).toBe(0);
  }

  test("a truncated file, and a file whose checksum is not the backup's", async () => {
    const bytes = fs.readFileSync(good);
    await refused({ file: file("truncated.bin", bytes.subarray(0, bytes.length - 1000), bytes) }, /Checksum mismatch: the file is corrupt or truncated.*nothing was restored/);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    await refused({ file: file("flipped.bin", flipped, bytes) }, /Checksum mismatch/);
    await refused({ file: good, sha256: "0".repeat(64) }, /Checksum mismatch/);
    await refused({ file: good, sha256: "not-a-checksum" }, /not a SHA-256/);
  });

  test("no checksum to check against, and files that are not a backup of this database", async () => {
    const bare = path.join(work, "bare.dump");
    fs.copyFileSync(good, bare);
    await refused({ file: bare }, /No checksum to check .* pass --sha256/);
    await refused({ file: path.join(work, "missing.dump") }, /No such file/);
    await refused({ file: file("text.txt", Buffer.from("hello, this is not a backup\n")) }, /not a Parley backup; nothing was restored/);
    if (kind === "postgres") {
      const embedded = new PGlite();
      await embedded.waitReady; // dumpDataDir on an instance still starting never settles
      const tar = Buffer.from(await (await embedded.dumpDataDir("gzip")).arrayBuffer());
      await embedded.close();
      await refused({ file: file("embedded.tar.gz", tar) }, /a backup of the embedded database \(restore it without DATABASE_URL\)/);
      // The right magic, then garbage: pg_restore cannot read it, and says so before anything is restored.
      await refused({ file: file("garbage.dump", Buffer.concat([Buffer.from("PGDMP"), randomBytes(4000)])) }, /not a backup pg_restore can read/);
    } else {
      await refused({ file: file("postgres.dump", Buffer.concat([Buffer.from("PGDMP"), randomBytes(100)])) }, /a pg_dump backup of PostgreSQL \(restore it with DATABASE_URL\)/);
      await refused({ file: file("garbage.tar.gz", Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(4000)])) }, /not a readable tar.gz .*nothing was restored/);
      await refused({ file: file("other.tar.gz", zlib.gzipSync(randomBytes(4000))) }, /a tar.gz but not of a database folder .*nothing was restored/);
      expect(fs.readdirSync(path.dirname(target.env.PGLITE_DIR)).filter((entry) => entry.includes(".restore-"))).toEqual([]);
    }
  });

  test("a restore of an older backup applies the newer migrations after it", async () => {
    // The backup of a database one migration behind, made with the tool itself.
    const older = await cliTarget();
    try {
      const last = await older.use(async (db) => {
        await db.migrate();
        const [, undone] = (await db.maintenance.migrate.down()) as [number, string[]];
        return undone[0];
      });
      let bytes: Buffer;
      if (kind === "postgres") {
        bytes = (await exec("pg_dump", ["--format=custom", "--no-owner", "--no-acl", `--dbname=${older.env.DATABASE_URL}`], { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 })).stdout;
      } else {
        bytes = await older.use(async (db) => {
          await db.pglite!.waitReady; // dumpDataDir on an instance still starting never settles
          return Buffer.from(await (await db.pglite!.dumpDataDir("gzip")).arrayBuffer());
        });
      }
      const backup = file(kind === "postgres" ? "older.dump" : "older.tar.gz", bytes);
      const result = await restoreBackup(configOf(target), { file: backup });
      expect(result.migrated).toEqual([path.basename(last).replace(/\.(ts|js)$/, "")]);
      expect(await target.use((db) => db.isReady())).toBe(true);
    } finally {
      await older.dispose();
      await wipe(target);
    }
  });

  onPostgres("pg_dump missing or older than the server: a clear error, and the run logged FAILED", async () => {
    const fake = path.join(work, "old-bin");
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, "pg_dump"), "#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n", { mode: 0o755 });
    const attempts: [Record<string, string>, RegExp][] = [
      [{ PG_BIN_DIR: path.join(work, "nowhere") }, /pg_dump was not found in PG_BIN_DIR .* install the PostgreSQL client tools/],
      [{ PG_BIN_DIR: fake }, /pg_dump 11 is older than the database server \(PostgreSQL \d+\)/],
    ];
    for (const [env, message] of attempts) {
      await expect(source.use((db) => runBackup(db, configOf(source, { BACKUP_DIR: path.join(work, "never"), ...env })))).rejects.toThrow(message);
    }
    const failed = await source.use((db) => db.maintenance("backup_logs").where({ status: "failed" }).orderBy("startedAt"));
    expect(failed.map((row) => row.errorMessage)).toEqual([expect.stringMatching(attempts[0][1]), expect.stringMatching(attempts[1][1])]);
    expect(fs.existsSync(path.join(work, "never"))).toBe(false);
  });
});

describe(`the schedule (${kind})`, () => {
  let target: CliTarget;
  let db: Database;
  const dir = () => path.join(work, "scheduled");
  const log = createLogger(loadConfig({ LOG_LEVEL: "silent" }));
  const HOUR = 3_600_000;
  const t0 = new Date("2027-01-01T00:00:00Z");
  let now = t0;

  beforeAll(async () => {
    target = await cliTarget({ migrated: true });
    db = createDatabase(configOf(target));
  });
  afterAll(async () => {
    await db?.close();
    await target?.dispose();
  });

  test("backs up when due by the clock, keeps BACKUP_KEEP scheduled backups, and never prunes manual ones", async () => {
    const config = configOf(target, { BACKUP_DIR: dir(), BACKUP_INTERVAL_HOURS: "24", BACKUP_KEEP: "2" });
    const scheduler = new BackupScheduler(db, config, log, () => now);
    const manual = await runBackup(db, config, { now: new Date(t0.getTime() - HOUR) });

    const first = await scheduler.tick();
    expect(first).toMatchObject({ ran: true, pruned: [] });
    now = new Date(t0.getTime() + 23 * HOUR);
    expect(await scheduler.tick()).toEqual({ ran: false, reason: "not-due" });
    now = new Date(t0.getTime() + 25 * HOUR);
    expect(await scheduler.tick()).toMatchObject({ ran: true, pruned: [] });
    now = new Date(t0.getTime() + 50 * HOUR);
    const third = await scheduler.tick();
    expect(third.ran).toBe(true);
    const firstBackup = (first as { backup: { id: string; filePath: string } }).backup;
    expect(third.ran && third.pruned.map((row) => row.id)).toEqual([firstBackup.id]);
    expect(fs.existsSync(firstBackup.filePath)).toBe(false);
    expect(fs.existsSync(`${firstBackup.filePath}.sha256`)).toBe(false);
    expect(fs.existsSync(manual.filePath!)).toBe(true);

    const rows = await db.maintenance("backup_logs").orderBy("startedAt");
    expect(rows.map((row) => [row.trigger, row.status, row.startedAt.toISOString(), row.prunedAt?.toISOString() ?? null])).toEqual([
      ["manual", "completed", new Date(t0.getTime() - HOUR).toISOString(), null],
      ["scheduled", "completed", t0.toISOString(), now.toISOString()],
      ["scheduled", "completed", new Date(t0.getTime() + 25 * HOUR).toISOString(), null],
      ["scheduled", "completed", now.toISOString(), null],
    ]);
    expect(fs.readdirSync(dir()).sort()).toHaveLength(6); // 3 kept backups with their checksums
  });

  onPostgres("two servers: one takes the backup; a failing pg_dump is retried after an hour, not at every check", async () => {
    now = new Date(t0.getTime() + 100 * HOUR);
    const config = configOf(target, { BACKUP_DIR: dir(), BACKUP_INTERVAL_HOURS: "24", BACKUP_KEEP: "2" });
    const other = createDatabase(config);
    try {
      const results = await Promise.all([new BackupScheduler(db, config, log, () => now).tick(), new BackupScheduler(other, config, log, () => now).tick()]);
      expect(results.filter((result) => result.ran)).toHaveLength(1);
      expect(results.filter((result) => !result.ran).map((result) => !result.ran && result.reason)).toEqual([expect.stringMatching(/^(locked|not-due)$/)]);
    } finally {
      await other.close();
    }
    const broken = configOf(target, { BACKUP_DIR: dir(), BACKUP_INTERVAL_HOURS: "24", PG_BIN_DIR: path.join(work, "nowhere") });
    const scheduler = new BackupScheduler(db, broken, log, () => now);
    now = new Date(t0.getTime() + 130 * HOUR);
    expect(await scheduler.tick()).toEqual({ ran: false, reason: "failed" });
    now = new Date(t0.getTime() + 130.5 * HOUR);
    expect(await scheduler.tick()).toEqual({ ran: false, reason: "not-due" });
    now = new Date(t0.getTime() + 131.5 * HOUR);
    expect(await scheduler.tick()).toEqual({ ran: false, reason: "failed" });
    expect(await db.maintenance("backup_logs").where({ status: "failed", trigger: "scheduled" }).count({ n: "*" })).toEqual([{ n: 2 }]);
  });

  onPostgres("pg_dump losing its connection mid-dump: the scheduled run is FAILED with the reason, no file is left, and it is not retried at every check", async () => {
    now = new Date(t0.getTime() + 200 * HOUR);
    const config = configOf(target, { BACKUP_DIR: dir(), BACKUP_INTERVAL_HOURS: "24" });
    const before = fs.readdirSync(dir()).sort();
    // A session holding a table pg_dump must lock: pg_dump waits there, connected, until its backend is ended.
    const holder = await db.maintenance.transaction();
    let result: Promise<unknown>;
    try {
      await holder.raw("lock table metrics in access exclusive mode");
      result = new BackupScheduler(db, config, log, () => now).tick();
      const waiting = async () =>
        (await db.maintenance.raw(`select pid from pg_stat_activity where application_name = 'pg_dump' and wait_event_type = 'Lock' and datname = current_database()`)).rows as { pid: number }[];
      let dumps: { pid: number }[] = [];
      for (let i = 0; i < 600 && !dumps.length; i++) {
        dumps = await waiting();
        if (!dumps.length) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(dumps).toHaveLength(1);
      await db.maintenance.raw("select pg_terminate_backend(?)", [dumps[0].pid]);
    } finally {
      await holder.rollback();
    }
    expect(await result).toEqual({ ran: false, reason: "failed" });
    const [row] = await db.maintenance("backup_logs").where({ trigger: "scheduled" }).orderBy("startedAt", "desc").limit(1);
    expect(row).toMatchObject({ status: "failed", storageKey: null, filePath: null, fileSizeBytes: null });
    expect(row.errorMessage).toMatch(/pg_dump/);
    expect(fs.readdirSync(dir()).sort()).toEqual(before); // neither the dump, its checksum nor a partial file
    now = new Date(t0.getTime() + 200.5 * HOUR);
    expect(await new BackupScheduler(db, config, log, () => now).tick()).toEqual({ ran: false, reason: "not-due" });
  });
});

describe(`the backups query (${kind})`, () => {
  test("admins page through backup runs; members and services are refused", async () => {
    const app = await createTestApp({ BACKUP_DIR: path.join(work, "api") });
    try {
      const admin = await app.makeUser(Role.ADMIN);
      const member = await app.makeUser(Role.MEMBER);
      const service = await app.makeUser(Role.SERVICE);
      const config = { ...app.database.config };
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await runBackup(app.database.db, config, { now: new Date(Date.UTC(2026, 5, 1 + i)) }));
      const query = `query($after: String) { backups(first: 2, after: $after) { totalCount edges { node { id format status trigger startedAt completedAt storage filePath fileSizeBytes sha256 errorMessage prunedAt } } pageInfo { hasNextPage endCursor } } }`;
      const page1 = await app.ok<any>(query, {}, admin.token);
      expect(page1.backups.totalCount).toBe(3);
      expect(page1.backups.edges.map((edge: any) => edge.node.id)).toEqual([made[2].id, made[1].id]);
      expect(page1.backups.edges[0].node).toMatchObject({ format: kind === "postgres" ? "PG_DUMP" : "PGLITE", status: "COMPLETED", trigger: "MANUAL", storage: "disk", sha256: made[2].sha256, fileSizeBytes: made[2].fileSizeBytes, prunedAt: null });
      const page2 = await app.ok<any>(query, { after: page1.backups.pageInfo.endCursor }, admin.token);
      expect(page2.backups.edges.map((edge: any) => edge.node.id)).toEqual([made[0].id]);
      expect(page2.backups.pageInfo.hasNextPage).toBe(false);
      expect(await app.errorCode(query, {}, member.token)).toBe("FORBIDDEN");
      expect(await app.errorCode(query, {}, service.token)).toBe("FORBIDDEN");
      expect(await app.errorCode(query, {})).toBe("UNAUTHENTICATED");
    } finally {
      await app.dispose();
    }
  });
});
