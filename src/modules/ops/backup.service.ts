/**
 * Backups and restores of the whole database, with the tools this field trusts: pg_dump/pg_restore on
 * PostgreSQL (custom format), PGlite's own data-folder dump (a tar.gz) on the embedded database. The dump is
 * streamed to a storage backend (the transcripts' disk and S3 backends: the file appears only when complete,
 * and S3 takes it as a multipart upload) through a hash, so the file's SHA-256 and size are known when it is.
 * The checksum is stored twice: on the run's backup_logs row and beside the file as `<file>.sha256`, in
 * sha256sum's format, so that a restore (or `sha256sum -c`) can check a file found on its own.
 *
 * A restore checks before it touches anything: the checksum, that the file is a backup of this kind of
 * database, and that the target is empty (unless forced). Then it restores, and applies the migrations the
 * backup predates.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import type { Knex } from "knex";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { MEMORY_DIR, type BackupConfig, type Config } from "../../config";
import { createDatabase, type Database } from "../../db/database";
import { lockPgliteDir } from "../../db/pglite-lock";
import type { Progress } from "../../progress";
import { ForbiddenError } from "../../graphql/errors";
import { newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";
import type { Actor } from "../actor";
import { isAdmin, viewerOf } from "../user/viewer";
import { DiskStorage } from "../transcript/disk.storage";
import type { TranscriptStorage } from "../transcript/transcript.storage";
import { BackupFormat, BackupLog, BackupStatus, BackupTrigger, type BackupStorageKind } from "./backup.model";
import { archiveTableCount, BackupError, checkedTool, spawnPgDump, runPgRestore } from "./backup.tools";

const S3_PREFIX = "backups/";
const EXTENSION: Record<BackupFormat, string> = { [BackupFormat.PG_DUMP]: "dump", [BackupFormat.PGLITE]: "tar.gz" };
const ERROR_MAX = 1000;
/** The first bytes of each format: pg_dump's custom format, and gzip (PGlite's tar.gz). */
const MAGIC: Record<BackupFormat, Buffer> = { [BackupFormat.PG_DUMP]: Buffer.from("PGDMP"), [BackupFormat.PGLITE]: Buffer.from([0x1f, 0x8b]) };

/** A backend for backup files, and what an operator pastes to restore one of its keys. */
interface BackupStore {
  kind: BackupStorageKind;
  storage: TranscriptStorage;
  keyOf(name: string): string;
  filePath(key: string): string;
}

export function backupStore(config: BackupConfig, kind: BackupStorageKind): BackupStore {
  if (kind === "disk") {
    return { kind, storage: new DiskStorage(config.dir), keyOf: (name) => name, filePath: (key) => path.join(config.dir, key) };
  }
  const s3 = config.s3;
  if (!s3) throw new BackupError("Backups to S3 need S3_BUCKET and the other S3_* settings (see README, Backups)");
  // Loaded only when used: the AWS SDK is large (see storage.factory.ts).
  const { S3Storage } = require("../transcript/s3.storage") as typeof import("../transcript/s3.storage");
  return { kind, storage: new S3Storage(s3), keyOf: (name) => S3_PREFIX + name, filePath: (key) => `s3://${s3.bucket}/${key}` };
}

/** Counts and hashes what passes through; tells once when the first bytes came, and the count after each chunk. */
class Digest extends Transform {
  private readonly hash = createHash("sha256");
  bytes = 0;
  constructor(
    private readonly onFirstBytes: () => void,
    private readonly onBytes: (bytes: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    if (this.bytes === 0) this.onFirstBytes();
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}

/** `<hex>  <name>\n`, what sha256sum writes and `sha256sum -c` reads. */
const checksumLine = (sha256: string, name: string) => `${sha256}  ${name}\n`;

function fileName(kind: Database["kind"], format: BackupFormat, id: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  // The run's id in the name: a restore finds the run's own row in what it restored (see markRestored).
  return `parley-${kind}-${stamp}-${id}.${EXTENSION[format]}`;
}

export interface BackupOptions {
  /** @default BACKUP_STORAGE */
  to?: BackupStorageKind;
  /** @default MANUAL */
  trigger?: BackupTrigger;
  /** The run's start time (the schedule's clock). @default the database's now() */
  now?: Date;
  /** Tables dumped so far out of all of them (PostgreSQL), or bytes written out of the dump's size (PGlite). */
  onProgress?: (progress: Progress) => void;
}

/**
 * Where pg_dump and pg_restore connect: DATABASE_LISTEN_URL when it is set, the direct connection beside a pooler
 * in transaction mode, which would hand one tool's statements to several server connections.
 */
const directUrl = (config: Config): string => config.databaseListenUrl ?? config.databaseUrl!;

/** The dump as a stream, and the size of the job for progress. */
async function openDump(db: Database, config: Config, onProgress?: (progress: Progress) => void): Promise<{ stream: Readable; progress(bytes: number): void; done(): void }> {
  if (db.kind === "pglite") {
    // The data folder as one tar.gz; PGlite takes it between two statements (it holds its query lock meanwhile).
    await db.pglite!.waitReady; // dumpDataDir on an instance still starting never settles
    const blob = await db.pglite!.dumpDataDir("gzip");
    const total = blob.size;
    return {
      stream: Readable.fromWeb(blob.stream() as import("node:stream/web").ReadableStream),
      progress: (bytes) => onProgress?.({ done: bytes, total }),
      done: () => onProgress?.({ done: total, total }),
    };
  }
  const tool = await checkedTool(db.maintenance, config.backup, "pg_dump");
  const tables = await db.maintenance.raw("select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'");
  const total = Number(tables.rows[0].n);
  const dump = spawnPgDump(tool, directUrl(config));
  return {
    stream: dump.stream,
    progress: () => onProgress?.({ done: Math.min(dump.tablesDone(), total), total }),
    done: () => onProgress?.({ done: total, total }),
  };
}

/**
 * Takes a backup: a backup_logs row first (STARTED), IN_PROGRESS once the dump produces bytes, and COMPLETED
 * with the file's path, size and SHA-256, or FAILED with the error, which is then thrown as a BackupError.
 */
export async function runBackup(db: Database, config: Config, options: BackupOptions = {}): Promise<BackupLog> {
  const store = backupStore(config.backup, options.to ?? config.backup.storage);
  try {
    return await backUp(db, config, store, options);
  } finally {
    store.storage.dispose();
  }
}

async function backUp(db: Database, config: Config, store: BackupStore, options: BackupOptions): Promise<BackupLog> {
  const knex = db.maintenance;
  const format = db.kind === "pglite" ? BackupFormat.PGLITE : BackupFormat.PG_DUMP;
  const id = randomUUID();
  const startedAt = options.now ?? new Date();
  // The file's key is in the row from the start: the dump holds the row as it was then (see afterRestore).
  const key = store.keyOf(fileName(db.kind, format, id, startedAt));
  const row = await BackupLog.query(knex).insertAndFetch({
    id,
    backupType: format,
    status: BackupStatus.STARTED,
    trigger: options.trigger ?? BackupTrigger.MANUAL,
    startedAt,
    storage: store.kind,
    storageKey: key,
    filePath: store.filePath(key),
  });
  const startedReally = Date.now();
  let marking: Promise<unknown> = Promise.resolve();
  try {
    const dump = await openDump(db, config, options.onProgress);
    const digest = new Digest(() => {
      marking = BackupLog.query(knex)
        .patch({ status: BackupStatus.IN_PROGRESS })
        .where({ id: row.id, status: BackupStatus.STARTED })
        .then(
          () => undefined,
          () => undefined, // only the log's intermediate state: the outcome is written below either way
        );
    }, dump.progress);
    const body = dump.stream.pipe(digest);
    dump.stream.once("error", (error) => digest.destroy(error));
    await store.storage.put(key, body, "application/octet-stream");
    await marking;
    const sha256 = digest.hex();
    await store.storage.put(`${key}.sha256`, Readable.from([checksumLine(sha256, path.posix.basename(key))]), "text/plain");
    dump.done();
    return await BackupLog.query(knex).patchAndFetchById(row.id, {
      status: BackupStatus.COMPLETED,
      // On the schedule's clock when it gave the start: the run's real duration after it.
      completedAt: options.now ? new Date(options.now.getTime() + (Date.now() - startedReally)) : new Date(),
      fileSizeBytes: digest.bytes,
      sha256,
    });
  } catch (error) {
    await marking;
    const message = failureMessage(error);
    await BackupLog.query(knex)
      .patch({ status: BackupStatus.FAILED, completedAt: new Date(), errorMessage: message.slice(0, ERROR_MAX), storageKey: null, filePath: null })
      .where({ id: row.id })
      .catch(() => undefined); // the database itself may be what failed; the error below says what happened
    throw new BackupError(`Backup failed: ${message}`, { cause: error });
  }
}

/** The operator's message: storage failures carry the backend's reason in their cause. */
function failureMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof BackupError) return error.message;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

/** Deletes a backup's file and its checksum from the backend it went to. */
export async function removeBackupFile(config: BackupConfig, row: Pick<BackupLog, "storage" | "storageKey">): Promise<void> {
  if (!row.storage || !row.storageKey) return;
  const store = backupStore(config, row.storage);
  try {
    await store.storage.delete([row.storageKey, `${row.storageKey}.sha256`]);
  } finally {
    store.storage.dispose();
  }
}

/**
 * Removes the files of the scheduled backups past the newest `keep` completed ones and marks their rows pruned.
 * Manual backups are never pruned: an operator made them on purpose. Returns the rows pruned.
 */
export async function pruneScheduledBackups(knex: Knex, config: BackupConfig, now: Date): Promise<BackupLog[]> {
  const old = await BackupLog.query(knex)
    .where({ trigger: BackupTrigger.SCHEDULED, status: BackupStatus.COMPLETED })
    .whereNull("prunedAt")
    .orderBy([{ column: "startedAt", order: "desc" }, { column: "id", order: "desc" }])
    .offset(config.keep);
  const pruned: BackupLog[] = [];
  for (const row of old) {
    await removeBackupFile(config, row);
    pruned.push(await BackupLog.query(knex).patchAndFetchById(row.id, { prunedAt: now }));
  }
  return pruned;
}

/** Admins only: backup runs, newest first. */
export async function listBackups(ctx: Actor, args: ConnectionArgs): Promise<ConnectionShape<BackupLog>> {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("Backups are for admins");
  return newestFirstPage(() => BackupLog.query(ctx.db.knex), pageRequest(args, ctx.config), "startedAt", "started_at");
}

// ---------------------------------------------------------------------------------------------------------
// Restore

export interface RestoreOptions {
  /** A file path, or s3://bucket/key of a backup in S3 (with the S3_* credentials). */
  file: string;
  /** The expected SHA-256 (hex); @default read from `<file>.sha256` */
  sha256?: string;
  /** Replace what the target database holds. */
  force?: boolean;
  /** Tables restored out of all of them (PostgreSQL), or steps (PGlite). */
  onProgress?: (progress: Progress) => void;
}

export interface RestoreResult {
  format: BackupFormat;
  sha256: string;
  fileSizeBytes: number;
  /** Migrations newer than the backup, applied after restoring it. */
  migrated: string[];
}

/** A backup file on this machine: the file itself, or a temp copy of an S3 object (removed by `dispose`). */
interface LocalBackup {
  file: string;
  expected: string | undefined;
  dispose(): Promise<void>;
}

async function readChecksum(text: string | undefined): Promise<string | undefined> {
  return text?.trim().split(/\s+/)[0]?.toLowerCase();
}

async function streamText(body: Readable): Promise<string> {
  let text = "";
  for await (const chunk of body) text += String(chunk);
  return text;
}

async function localCopy(config: BackupConfig, file: string): Promise<LocalBackup> {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(file);
  if (!s3) {
    if (!fs.existsSync(file)) throw new BackupError(`No such file: ${file}`);
    const sidecar = `${file}.sha256`;
    const expected = fs.existsSync(sidecar) ? await readChecksum(fs.readFileSync(sidecar, "utf8")) : undefined;
    return { file, expected, dispose: async () => undefined };
  }
  if (!config.s3) throw new BackupError("Restoring from S3 needs the S3_* settings (see README, Backups)");
  const [, bucket, key] = s3;
  const { S3Storage } = require("../transcript/s3.storage") as typeof import("../transcript/s3.storage");
  const storage = new S3Storage({ ...config.s3, bucket });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-restore-"));
  try {
    const copy = path.join(dir, path.posix.basename(key));
    const fetched = await storage.get(key).catch((error: Error) => {
      throw new BackupError(`Could not read ${file}: ${failureMessage(error)}`);
    });
    await pipeline(fetched.body, fs.createWriteStream(copy));
    const sidecar = await storage.get(`${key}.sha256`).then((stored) => streamText(stored.body), () => undefined);
    return { file: copy, expected: await readChecksum(sidecar), dispose: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    storage.dispose();
  }
}

async function sha256Of(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}

function formatOf(file: string): BackupFormat | undefined {
  const head = Buffer.alloc(8);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  return Object.values(BackupFormat).find((format) => head.subarray(0, MAGIC[format].length).equals(MAGIC[format]));
}

/**
 * Restores a backup into the database the configuration names. Refuses, with nothing changed, when the file's
 * SHA-256 is not the expected one, when it is not a backup of this kind of database, and when the database is
 * not empty (unless `force`).
 */
export async function restoreBackup(config: Config, options: RestoreOptions): Promise<RestoreResult> {
  const local = await localCopy(config.backup, options.file);
  try {
    const expected = options.sha256?.toLowerCase() ?? local.expected;
    if (!expected) throw new BackupError(`No checksum to check ${options.file} against: ${options.file}.sha256 is missing; pass --sha256 with the backup's sha256 (npm run cli -- backups, or the backups query)`);
    if (!/^[0-9a-f]{64}$/.test(expected)) throw new BackupError("The expected checksum is not a SHA-256 (64 hex digits)");
    const { sha256, size } = await sha256Of(local.file);
    if (sha256 !== expected) {
      throw new BackupError(`Checksum mismatch: the file is corrupt or truncated (its sha256 is ${sha256}, the backup's is ${expected}); nothing was restored`);
    }
    const format = formatOf(local.file);
    const wanted = config.databaseUrl ? BackupFormat.PG_DUMP : BackupFormat.PGLITE;
    if (format !== wanted) {
      const what = format === undefined ? "not a Parley backup" : format === BackupFormat.PGLITE ? "a backup of the embedded database (restore it without DATABASE_URL)" : "a pg_dump backup of PostgreSQL (restore it with DATABASE_URL)";
      throw new BackupError(`The file is ${what}; nothing was restored`);
    }
    if (wanted === BackupFormat.PG_DUMP) await restorePostgres(config, local.file, options);
    else await restorePglite(config, local.file, options);
    const migrated = await afterRestore(config, path.basename(options.file), { sha256, size });
    return { format, sha256, fileSizeBytes: size, migrated };
  } finally {
    await local.dispose();
  }
}

/** Tables (and other relations) outside PostgreSQL's own schemas: what "empty" means. */
async function userRelations(knex: Knex): Promise<number> {
  const result = await knex.raw(
    "select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'v', 'm', 'S') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'",
  );
  return Number(result.rows[0].n);
}

function notEmpty(count: number): BackupError {
  return new BackupError(`The database is not empty (${count} tables and other relations): restore into an empty database, or pass --force to replace everything in it; nothing was restored`);
}

async function restorePostgres(config: Config, file: string, options: RestoreOptions): Promise<void> {
  const db = createDatabase(config);
  try {
    const tool = await checkedTool(db.maintenance, config.backup, "pg_restore");
    const total = await archiveTableCount(tool, file);
    const existing = await userRelations(db.maintenance);
    if (existing > 0 && !options.force) throw notEmpty(existing);
    if (existing > 0) {
      // pg_restore's --clean drops only what the backup holds; tables of newer migrations would stay and clash.
      // This drop and the restore are two transactions: a restore that fails after it leaves the database empty
      // (the file is fine; run it again once the cause is fixed).
      await db.maintenance.raw("drop schema public cascade; create schema public");
    }
    let done = 0;
    options.onProgress?.({ done, total });
    await runPgRestore(tool, directUrl(config), file, () => options.onProgress?.({ done: Math.min(++done, total), total }));
    options.onProgress?.({ done: total, total });
  } finally {
    await db.close();
  }
}

/**
 * That `bytes` is a tar.gz of a PostgreSQL data folder (PG_VERSION in it), before PGlite sees it: PGlite fails
 * on other files with a rejection it also leaves unhandled, which would end the process.
 */
function checkDataFolderArchive(bytes: Buffer): void {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(bytes);
  } catch (error) {
    throw new BackupError(`The file is not a readable tar.gz (${(error as Error).message}); nothing was restored`);
  }
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break; // the end-of-archive blocks
    if (header.toString("latin1", 257, 262) !== "ustar") break;
    const name = header.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    if (/^\/?([^/]+\/)?PG_VERSION$/.test(name)) return; // the folder's own, at the top (PGlite writes "/PG_VERSION")
    const size = parseInt(header.toString("latin1", 124, 136).replace(/\0.*$/s, "").trim() || "0", 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new BackupError("The file is a tar.gz but not of a database folder (no PG_VERSION in it); nothing was restored");
}

/** A data folder holds a database once initdb's PG_VERSION is in it. */
const holdsDatabase = (dir: string) => fs.existsSync(path.join(dir, "PG_VERSION"));

async function restorePglite(config: Config, file: string, options: RestoreOptions): Promise<void> {
  const dir = config.pgliteDir;
  if (dir === MEMORY_DIR) throw new BackupError("PGLITE_DIR is memory://: a restore needs a folder to restore into");
  const release = lockPgliteDir(dir); // no server or other command may have the folder meanwhile
  const staging = `${dir}.restore-${randomBytes(4).toString("hex")}`;
  try {
    if (holdsDatabase(dir) && !options.force) throw new BackupError(`${dir} already holds a database: restore into an empty folder, or pass --force to replace it; nothing was restored`);
    options.onProgress?.({ done: 0, total: 2 });
    const bytes = fs.readFileSync(file);
    checkDataFolderArchive(bytes);
    // Unpacked and opened in a folder of its own first: a file PGlite cannot start from changes nothing.
    const loaded = new PGlite(staging, { extensions: { vector }, loadDataDir: new Blob([bytes]) });
    try {
      await loaded.query("select 1");
    } catch (error) {
      throw new BackupError(`The embedded database could not start from the file: ${(error as Error).message}; nothing was restored`);
    } finally {
      await loaded.close().catch(() => undefined);
    }
    fs.rmSync(path.join(staging, "parley.lock"), { force: true }); // the lock of the process that took the backup
    options.onProgress?.({ done: 1, total: 2 });
    // Swapped in entry by entry under the lock, which stays where it is.
    for (const entry of fs.readdirSync(dir)) if (entry !== "parley.lock") fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    for (const entry of fs.readdirSync(staging)) fs.renameSync(path.join(staging, entry), path.join(dir, entry));
    options.onProgress?.({ done: 2, total: 2 });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    release();
  }
}

/**
 * Applies the migrations newer than the backup, and completes the run's own row: the dump was taken while that
 * row said STARTED, so the restored log would otherwise show the backup it came from as never finished.
 */
async function afterRestore(config: Config, name: string, file: { sha256: string; size: number }): Promise<string[]> {
  const db = createDatabase(config);
  try {
    const migrated = await db.migrate();
    const id = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(?:dump|tar\.gz)$/.exec(name)?.[1];
    if (id) {
      await BackupLog.query(db.maintenance)
        .patch({ status: BackupStatus.COMPLETED, sha256: file.sha256, fileSizeBytes: file.size })
        .where({ id })
        .whereIn("status", [BackupStatus.STARTED, BackupStatus.IN_PROGRESS]);
    }
    return migrated;
  } finally {
    await db.close();
  }
}
