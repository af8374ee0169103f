/**
 * `npm run cli -- doctor`: checks the database Parley is pointed at, the way a deploy's validation script
 * would, and reports one row per check (PASS, WARN or FAIL). Only a FAIL makes the run fail: a WARN is
 * something an operator should know (pgvector missing, a server-wide statement timeout) that Parley works with.
 *
 * Every check runs in a read-only transaction of its own on the maintenance pool: the doctor never changes
 * the database it examines, a check that errors (a catalog the role may not read) becomes that check's FAIL
 * without aborting the others, and its scans (every message's key id) are not cut by a statement timeout.
 */
import type { Knex } from "knex";
import type { Config } from "../../config";
import type { Database } from "../../db/database";
import { MAINTENANCE_POOL_MAX } from "../../db/knex-config";
import { ExtensionlessMigrationSource } from "../../db/migration-source";
import { decryptContent, type ContentRow } from "../message/encryption";
import { indexLanguage, MESSAGE_SEARCH_INDEX, REBUILD_INDEX } from "../search/message-search.service";

export type CheckStatus = "PASS" | "WARN" | "FAIL";

export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorReport {
  checks: CheckResult[];
  summary: Record<"pass" | "warn" | "fail", number>;
  /** No check failed (warnings allowed). */
  ok: boolean;
}

export interface DoctorOptions {
  /** Parley processes (servers, separate Discord adapters) that share this database. @default 1 */
  servers?: number;
}

/** README, Quick start: "PostgreSQL 15 or later". Nothing older is tested (the bench and CI run 15). */
export const MIN_POSTGRES_MAJOR = 15;
/** knowledge/vector-index.ts builds HNSW indexes, which pgvector has since 0.5.0. */
const MIN_PGVECTOR = [0, 5, 0];
/** db/notifications.ts: each process holds one LISTEN connection of its own, outside both pools. */
const LISTEN_CONNECTIONS = 1;
/** How many of the newest encrypted messages are decrypted to prove the ring's keys are the right ones. */
const ENCRYPTION_SAMPLE = 20;
/** Names listed in one detail line before "and N more". */
const LIST_MAX = 5;

interface CheckContext {
  config: Config;
  kind: Database["kind"];
  servers: number;
  /** Migration names (without extension) this code has, in order. */
  known: string[];
  /** Migration names the database has applied; empty when knex_migrations does not exist. */
  applied: string[];
}

type Check = (trx: Knex.Transaction, ctx: CheckContext) => Promise<Omit<CheckResult, "check">>;

const pass = (detail: string) => ({ status: "PASS" as const, detail });
const warn = (detail: string) => ({ status: "WARN" as const, detail });
const fail = (detail: string) => ({ status: "FAIL" as const, detail });
const EMBEDDED = pass("n/a (embedded)");

/** Rows of a raw query (pg and PGlite both answer with { rows }). Aliases are single words: no case mapping. */
async function rows<T>(knex: Knex, sql: string, bindings: Knex.RawBinding[] = []): Promise<T[]> {
  return ((await knex.raw(sql, bindings)) as { rows: T[] }).rows;
}

function list(names: string[]): string {
  const shown = names.slice(0, LIST_MAX).join(", ");
  return names.length > LIST_MAX ? `${shown} and ${names.length - LIST_MAX} more` : shown;
}

async function tableExists(knex: Knex, table: string): Promise<boolean> {
  const [row] = await rows<{ present: boolean }>(knex, "select to_regclass(?) is not null as present", [table]);
  return row.present;
}

async function appliedMigrations(knex: Knex): Promise<string[]> {
  if (!(await tableExists(knex, "knex_migrations"))) return [];
  return (await rows<{ name: string }>(knex, "select name from knex_migrations order by id")).map((row) => row.name);
}

const migrations: Check = async (trx, { known, applied }) => {
  if (applied.length === 0) return fail(`nothing applied (${known.length} pending): run npm run migrate`);
  const done = new Set(applied);
  const pending = known.filter((name) => !done.has(name));
  const ours = new Set(known);
  const unknown = applied.filter((name) => !ours.has(name));
  const problems = [
    ...(pending.length ? [`${pending.length} pending: ${list(pending)} (run npm run migrate)`] : []),
    // knex refuses to migrate such a database ("the migration directory is corrupt"): older code on newer data.
    ...(unknown.length ? [`${unknown.length} applied but unknown to this code (the database is newer than the code): ${list(unknown)}`] : []),
  ];
  if (problems.length) return fail(problems.join("; "));
  const locked = (await tableExists(trx, "knex_migrations_lock")) && (await rows(trx, "select 1 from knex_migrations_lock where is_locked = 1")).length > 0;
  if (locked) {
    return warn(`${applied.length} applied, none pending, but the migration lock is held: a migration is running, or one crashed (then npx knex migrate:unlock)`);
  }
  return pass(`${applied.length} applied, none pending`);
};

function versionBelow(version: string, minimum: number[]): boolean {
  const parts = version.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < minimum.length; i++) {
    if ((parts[i] ?? 0) !== minimum[i]) return (parts[i] ?? 0) < minimum[i];
  }
  return false;
}

/**
 * plpgsql (the updated_at triggers) is required. pgvector is optional (migrations/lib/vectors.ts): without it
 * documents and full-text search work and vectors are refused, so its absence is a WARN, unless vector columns
 * exist without it, which no Parley path makes. Everything else Parley needs (gen_random_uuid) is core.
 */
const extensions: Check = async (trx) => {
  const installed = new Map(
    (await rows<{ name: string; version: string }>(trx, "select extname as name, extversion as version from pg_extension")).map((row) => [row.name, row.version]),
  );
  if (!installed.has("plpgsql")) return fail("plpgsql is missing: the migrations' triggers need it");
  const columns = await rows<{ tbl: string; col: string }>(
    trx,
    "select table_name as tbl, column_name as col from information_schema.columns where table_schema = current_schema() and udt_name = 'vector'",
  );
  const vector = installed.get("vector");
  if (vector === undefined) {
    if (columns.length) return fail(`vector columns without the vector extension: ${list(columns.map((c) => `${c.tbl}.${c.col}`))}`);
    const [available] = await rows<{ present: boolean }>(trx, "select exists (select 1 from pg_available_extensions where name = 'vector') as present");
    return warn(
      `plpgsql; vector not installed (optional: semantic search off)${available.present ? "; the server has it: npm run cli -- enable-vectors" : ""}`,
    );
  }
  if (versionBelow(vector, MIN_PGVECTOR)) return fail(`vector ${vector} is older than ${MIN_PGVECTOR.join(".")}, which the HNSW indexes need`);
  if (columns.length === 0 && (await tableExists(trx, "document_chunks"))) {
    return warn(`plpgsql; vector ${vector} installed but the vector columns are missing: npm run cli -- enable-vectors`);
  }
  return pass(`plpgsql; vector ${vector} (semantic search on)`);
};

/**
 * Valid and ready: an interrupted CREATE INDEX CONCURRENTLY (reindex-message-search, the search migration)
 * leaves an index PostgreSQL maintains on every write but never reads. Expected: rather than a list of the
 * migrations' 130-odd index names kept by hand, what the catalog itself implies: the migrations index every
 * foreign key (cascading deletes and the loaders' lookups by parent depend on it), and the message search
 * index the search service names.
 */
const indexes: Check = async (trx, ctx) => {
  const all = await rows<{ name: string; tbl: string; valid: boolean; ready: boolean }>(
    trx,
    `select ic.relname as name, tc.relname as tbl, i.indisvalid as valid, i.indisready as ready
       from pg_index i
       join pg_class ic on ic.oid = i.indexrelid
       join pg_class tc on tc.oid = i.indrelid
       join pg_namespace n on n.oid = tc.relnamespace
      where n.nspname = current_schema()
      order by tc.relname, ic.relname`,
  );
  const broken = all.filter((index) => !index.valid || !index.ready);
  const unindexed = await rows<{ name: string; tbl: string }>(
    trx,
    // indkey is an int2vector (subscripts from 0): an index serves the key when its leading columns are the key's.
    // Partial ones count: the migrations cover some keys with partial indexes that together span every row
    // (service_grants: one per kind of grant).
    `select c.conname as name, c.conrelid::regclass::text as tbl
       from pg_constraint c
       join pg_namespace n on n.oid = c.connamespace
      where c.contype = 'f' and n.nspname = current_schema()
        and not exists (
          select 1 from pg_index i
           where i.indrelid = c.conrelid and i.indisvalid
             and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
             and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
      order by 2, 1`,
  );
  const problems: string[] = [];
  const notes: string[] = [];
  if (broken.length) {
    const names = broken.map((index) => `${index.name} on ${index.tbl} (${index.valid ? "not ready" : "invalid"})`);
    problems.push(`${broken.length} not usable: ${list(names)}; drop them (drop index concurrently) and rerun what built them`);
  }
  if (unindexed.length) problems.push(`foreign keys without an index: ${list(unindexed.map((fk) => `${fk.tbl}.${fk.name}`))}`);
  if (ctx.applied.some((name) => name.endsWith("_message_search"))) {
    const language = await indexLanguage(trx, MESSAGE_SEARCH_INDEX);
    const leftover = all.some((index) => index.name === REBUILD_INDEX);
    if (language === null) {
      problems.push(`${MESSAGE_SEARCH_INDEX} is missing${leftover ? ` (a reindex-message-search cut short left ${REBUILD_INDEX})` : ""}: run npm run cli -- reindex-message-search`);
    } else {
      if (language !== ctx.config.knowledge.searchLanguage) {
        notes.push(`${MESSAGE_SEARCH_INDEX} is for "${language}" but SEARCH_LANGUAGE is "${ctx.config.knowledge.searchLanguage}": searches read the whole table until npm run cli -- reindex-message-search`);
      }
      if (leftover) notes.push(`${REBUILD_INDEX} is left from a reindex-message-search cut short: run it again`);
    }
  }
  if (problems.length) return fail([...problems, ...notes].join("; "));
  const summary = `${all.length} indexes valid and ready, every foreign key indexed`;
  return notes.length ? warn(`${summary}; ${notes.join("; ")}`) : pass(summary);
};

/**
 * Every process may open its API pool, its maintenance pool (exports run on it) and one LISTEN connection;
 * all of them together must fit in what PostgreSQL lets ordinary roles open, or requests wait for connections
 * that are never made (SERVICE_UNAVAILABLE) when the load comes.
 */
const connections: Check = async (trx, ctx) => {
  if (ctx.kind === "pglite") return EMBEDDED;
  const [limits] = await rows<{ max: number; superuser: number; reserved: number; rolesuper: boolean; rolelimit: number; dblimit: number; open: number }>(
    trx,
    `select current_setting('max_connections')::int as max,
            current_setting('superuser_reserved_connections')::int as superuser,
            coalesce(current_setting('reserved_connections', true), '0')::int as reserved,
            (select rolsuper from pg_roles where rolname = current_user) as rolesuper,
            (select rolconnlimit from pg_roles where rolname = current_user) as rolelimit,
            (select datconnlimit from pg_database where datname = current_database()) as dblimit,
            (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as open`,
  );
  const perProcess = ctx.config.databasePoolMax + MAINTENANCE_POOL_MAX + LISTEN_CONNECTIONS;
  const needed = ctx.servers * perProcess;
  // reserved_connections (PostgreSQL 16) is for roles granted pg_use_reserved_connections; Parley's role is not assumed to be.
  const bounds = [{ available: limits.max - limits.superuser - limits.reserved, what: `max_connections ${limits.max} − ${limits.superuser + limits.reserved} reserved` }];
  // Superusers are exempt from the role's and the database's CONNECTION LIMIT.
  if (!limits.rolesuper && limits.rolelimit >= 0) bounds.push({ available: limits.rolelimit, what: "the role's connection limit" });
  if (!limits.rolesuper && limits.dblimit >= 0) bounds.push({ available: limits.dblimit, what: "the database's connection limit" });
  const bound = bounds.reduce((low, next) => (next.available < low.available ? next : low));
  const sum =
    `${needed} needed (${ctx.servers} process${ctx.servers === 1 ? "" : "es"} × (DATABASE_POOL_MAX ${ctx.config.databasePoolMax} + ` +
    `${MAINTENANCE_POOL_MAX} maintenance + ${LISTEN_CONNECTIONS} LISTEN)), ${bound.available} allowed (${bound.what}); ${limits.open} open now`;
  if (needed > bound.available) return fail(`${sum}: lower DATABASE_POOL_MAX or raise the limit`);
  // A migration, reencrypt or export from the CLI takes up to a maintenance pool more.
  if (bound.available - needed < MAINTENANCE_POOL_MAX) return warn(`${sum}: no room left for a CLI job (up to ${MAINTENANCE_POOL_MAX}) or psql`);
  return pass(sum);
};

/**
 * The API pool sends its own statement_timeout when connecting, so the server's default matters where Parley
 * sends none: on the maintenance pool (migrations, exports, reencrypt, reindex-message-search, which may run
 * for minutes) and, with DATABASE_STATEMENT_TIMEOUT_MS=0, on API statements too.
 */
const statementTimeout: Check = async (trx, ctx) => {
  if (ctx.kind === "pglite") return EMBEDDED;
  // reset_val: the session's value before this transaction's `set local`, i.e. the server, database and role defaults.
  const [row] = await rows<{ ms: number }>(trx, "select reset_val::int as ms from pg_settings where name = 'statement_timeout'");
  const api = ctx.config.databaseStatementTimeoutMs;
  const apiText = api ? `API statements ${api} ms (DATABASE_STATEMENT_TIMEOUT_MS)` : "API statements unbounded (DATABASE_STATEMENT_TIMEOUT_MS=0)";
  if (row.ms === 0) return pass(`${apiText}; the server sets none, so maintenance jobs run unbounded`);
  const cut = `the server (or this database or role) sets statement_timeout ${row.ms} ms: migrations, exports, reencrypt and reindex-message-search are cut there`;
  return warn(api ? `${apiText}; ${cut}` : `API statements get the server's ${row.ms} ms, not no limit; ${cut}`);
};

const serverVersion: Check = async (trx, ctx) => {
  if (ctx.kind === "pglite") return EMBEDDED;
  const [row] = await rows<{ num: number; version: string }>(trx, "select current_setting('server_version_num')::int as num, current_setting('server_version') as version");
  const major = Math.floor(row.num / 10000);
  return major >= MIN_POSTGRES_MAJOR
    ? pass(`PostgreSQL ${row.version} (${MIN_POSTGRES_MAJOR} or later needed)`)
    : fail(`PostgreSQL ${row.version}: Parley needs ${MIN_POSTGRES_MAJOR} or later`);
};

/**
 * With a key ring: the newest encrypted messages decrypt (a key under the right id but with the wrong bytes
 * shows here, as it would to readers), and no message or streamed chunk is on a key id the ring lacks (those
 * are unreadable until the key is back). Without one: nothing is stored encrypted. Counting key ids reads
 * every message's key_id: a scan of the table, which is why this runs without a statement timeout.
 */
const encryption: Check = async (trx, ctx) => {
  if (!(await tableExists(trx, "messages"))) return warn("skipped: there is no messages table yet (migrations pending)");
  const chunks = (await tableExists(trx, "message_chunks")) ? "union all select key_id from message_chunks" : "";
  const byKey = await rows<{ key: string | null; n: number }>(
    trx,
    `select key_id as key, count(*)::int as n from (select key_id from messages ${chunks}) as stored group by key_id order by key_id`,
  );
  const encrypted = byKey.filter((row) => row.key !== null);
  const plain = byKey.find((row) => row.key === null)?.n ?? 0;
  const ring = ctx.config.encryption;
  if (!ring) {
    if (encrypted.length === 0) return pass("not configured: message text is stored plain");
    const total = encrypted.reduce((sum, row) => sum + row.n, 0);
    return fail(`${total} messages or chunks are encrypted (keys ${list(encrypted.map((row) => row.key!))}) but MESSAGE_ENCRYPTION_KEYS is unset: they cannot be read`);
  }
  const missing = encrypted.filter((row) => !ring.keys.has(row.key!));
  const sample = await rows<{ id: string; conversation: string; seq: number; key: string; blob: Uint8Array }>(
    trx,
    `select id, conversation_id as conversation, seq, key_id as key, encrypted_content as blob
       from messages where encrypted_content is not null order by created_at desc, id limit ?`,
    [ENCRYPTION_SAMPLE],
  );
  const undecryptable = sample
    .filter((message) => ring.keys.has(message.key))
    .filter((message) => {
      const row: ContentRow = { content: null, encryptedContent: message.blob, keyId: message.key, conversationId: message.conversation, seq: message.seq };
      try {
        decryptContent(ring, row);
        return false;
      } catch {
        return true;
      }
    });
  const counts = `by key: ${encrypted.map((row) => `${row.key} ${row.n}`).join(", ") || "none"}; plain ${plain}`;
  const problems = [
    ...missing.map((row) => `${row.n} on key "${row.key}", which MESSAGE_ENCRYPTION_KEYS lacks`),
    ...(undecryptable.length
      ? [`${undecryptable.length} of the ${sample.length} newest encrypted messages do not decrypt with their key (wrong key bytes, or altered): ${list(undecryptable.map((m) => m.id))}`]
      : []),
  ];
  if (problems.length) return fail(`${problems.join("; ")} (${counts})`);
  const checked = sample.length ? `the ${sample.length} newest encrypted messages decrypt` : "no encrypted messages yet";
  return pass(`current key "${ring.currentKeyId}"; ${checked}; ${counts}`);
};

const CHECKS: [string, Check][] = [
  ["migrations", migrations],
  ["extensions", extensions],
  ["indexes", indexes],
  ["connections", connections],
  ["statement timeout", statementTimeout],
  ["server version", serverVersion],
  ["encryption", encryption],
];

/** Runs every check against `db` (on its maintenance pool) and reports them in order. */
export async function runDoctor(db: Database, config: Config, options: DoctorOptions = {}): Promise<DoctorReport> {
  const knex = db.maintenance;
  const checks: CheckResult[] = [];
  try {
    await knex.raw("select 1");
  } catch (error) {
    checks.push({ check: "database", status: "FAIL", detail: `cannot connect: ${(error as Error).message}` });
    return report(checks);
  }
  const source = new ExtensionlessMigrationSource();
  const ctx: CheckContext = {
    config,
    kind: db.kind,
    servers: options.servers ?? 1,
    known: (await source.getMigrations()).map((file) => source.getMigrationName(file)),
    applied: await appliedMigrations(knex),
  };
  for (const [name, check] of CHECKS) {
    const result = await knex
      .transaction(async (trx) => {
        await trx.raw("set transaction read only");
        await trx.raw("set local statement_timeout = 0");
        return check(trx, ctx);
      })
      .catch((error: unknown) => fail(`could not check: ${error instanceof Error ? error.message : String(error)}`));
    checks.push({ check: name, ...result });
  }
  return report(checks);
}

function report(checks: CheckResult[]): DoctorReport {
  const count = (status: CheckStatus) => checks.filter((check) => check.status === status).length;
  const summary = { pass: count("PASS"), warn: count("WARN"), fail: count("FAIL") };
  return { checks, summary, ok: summary.fail === 0 };
}

/** The report as an aligned plain-text table and a summary line. */
export function formatDoctorReport({ checks, summary, ok }: DoctorReport): string {
  const header = { check: "check", status: "status", detail: "detail" };
  const width = Math.max(...[header, ...checks].map((row) => row.check.length));
  const line = (row: CheckResult | typeof header) => `${row.check.padEnd(width)}  ${row.status.padEnd(6)}  ${row.detail}`;
  const verdict = ok ? "healthy" : "NOT healthy";
  return [line(header), ...checks.map(line), "", `${verdict}: ${summary.pass} passed, ${summary.warn} warning${summary.warn === 1 ? "" : "s"}, ${summary.fail} failed`].join("\n");
}
