/**
 * `npm run cli -- doctor` as operators run it, in a child process, against a real migrated database (a
 * PostgreSQL database cloned from the template, or a PGlite folder). Each test breaks the database the way it
 * breaks in the field (a concurrent index build that failed, a migration not applied, a message on a key the
 * ring lost, too many servers for max_connections), expects the doctor to name it, and puts it back.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import type { Knex } from "knex";
import { loadConfig } from "../../src/config";
import { createDatabase } from "../../src/db/database";
import { MIGRATIONS_DIR } from "../../src/db/migration-source";
import { encryptContent } from "../../src/modules/message/encryption";
import { testConfig, testDbKind } from "../helpers/db";
import { parleyCli, type RunResult, cliTarget, type CliTarget } from "../helpers/cli";

interface Row {
  check: string;
  status: "PASS" | "WARN" | "FAIL";
  detail: string;
}

const CHECKS = ["migrations", "extensions", "indexes", "connections", "statement timeout", "server version", "encryption"];
const LAST_MIGRATION = fs
  .readdirSync(MIGRATIONS_DIR)
  .filter((file) => /\.(ts|js)$/.test(file) && !file.endsWith(".d.ts"))
  .sort()
  .pop()!
  .replace(/\.(ts|js)$/, "");

const KEY1 = randomBytes(32).toString("base64");
const KEY2 = randomBytes(32).toString("base64");

let target: CliTarget;

beforeAll(async () => {
  target = await cliTarget({ migrated: true });
});

afterAll(async () => {
  await target?.dispose();
});

/** Opens the target for `work` and closes it again: on PGlite the CLI cannot open a folder held open here. */
async function onTarget<T>(work: (knex: Knex) => Promise<T>): Promise<T> {
  const db = createDatabase(testConfig(target.env.DATABASE_URL, target.env));
  try {
    return await work(db.maintenance);
  } finally {
    await db.close();
  }
}

const doctor = (args: string[] = [], env: Record<string, string> = {}) => parleyCli(["doctor", ...args], { LOG_LEVEL: "silent", ...target.env, ...env });

/** The --json report, keyed by check. */
async function doctorJson(args: string[] = [], env: Record<string, string> = {}): Promise<{ result: RunResult; ok: boolean; checks: Record<string, Row> }> {
  const result = await doctor(["--json", ...args], env);
  const report = JSON.parse(result.stdout) as { ok: boolean; checks: Row[] };
  expect(report.checks.map((row) => row.check)).toEqual(CHECKS);
  return { result, ok: report.ok, checks: Object.fromEntries(report.checks.map((row) => [row.check, row])) };
}

describe("npm run cli -- doctor", () => {
  it("passes a healthy migrated database: a table of PASS and WARN lines, then the summary, exit 0", async () => {
    const result = await doctor();
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^check\s+status\s+detail$/);
    const rows = lines.slice(1, 1 + CHECKS.length).map((line) => /^(.+?)\s{2,}(PASS|WARN|FAIL)\s{2}(.+)$/.exec(line));
    expect(rows.map((match) => match?.[1])).toEqual(CHECKS);
    for (const match of rows) expect(["PASS", "WARN"]).toContain(match![2]);
    // The status column starts at the same place on every line.
    expect(new Set(lines.slice(0, 1 + CHECKS.length).map((line) => line.search(/(PASS|WARN|FAIL|status) /))).size).toBe(1);
    expect(lines.at(-1)).toMatch(/^healthy: \d passed, \d warnings?, 0 failed$/);

    const { ok, checks } = await doctorJson();
    expect(ok).toBe(true);
    expect(checks.migrations).toMatchObject({ status: "PASS", detail: expect.stringMatching(/^\d+ applied, none pending$/) });
    expect(checks.indexes).toMatchObject({ status: "PASS", detail: expect.stringContaining("every foreign key indexed") });
    expect(checks.encryption).toMatchObject({ status: "PASS", detail: expect.stringContaining("not configured") });
    for (const name of ["connections", "statement timeout", "server version"]) {
      if (testDbKind() === "pglite") expect(checks[name]).toEqual({ check: name, status: "PASS", detail: "n/a (embedded)" });
      else expect(checks[name].detail).not.toContain("n/a");
    }
    if (testDbKind() === "postgres") {
      expect(checks.connections.detail).toMatch(/^15 needed \(1 process × \(DATABASE_POOL_MAX 10 \+ 4 maintenance \+ 1 LISTEN\)\), \d+ allowed/);
      expect(checks["server version"].detail).toMatch(/^PostgreSQL \d+/);
    }
  });

  it("fails on an index a concurrent build left invalid and on a foreign key without its index, naming both", async () => {
    await onTarget(async (knex) => {
      // Two users of one role: a unique index on role cannot be built, and a concurrent build leaves it INVALID.
      await knex("users").insert([{ displayName: "doctor a" }, { displayName: "doctor b" }]);
      await expect(knex.raw("create unique index concurrently doctor_role_unique on users (role)")).rejects.toThrow();
      await knex.raw("drop index api_keys_user_id_index");
    });
    try {
      const { result, ok, checks } = await doctorJson();
      expect(result.code).toBe(1);
      expect(ok).toBe(false);
      expect(checks.indexes.status).toBe("FAIL");
      expect(checks.indexes.detail).toContain("doctor_role_unique on users (invalid)");
      expect(checks.indexes.detail).toContain("api_keys.api_keys_user_id_foreign");
      expect(checks.migrations.status).toBe("PASS");

      const table = await doctor();
      expect(table.code).toBe(1);
      expect(table.stdout).toMatch(/^indexes\s+FAIL\s+.*doctor_role_unique/m);
      expect(table.stdout.trimEnd().split("\n").at(-1)).toMatch(/^NOT healthy: \d passed, \d warnings?, 1 failed$/);
    } finally {
      await onTarget(async (knex) => {
        await knex.raw("drop index if exists doctor_role_unique");
        await knex.raw("create index api_keys_user_id_index on api_keys (user_id)");
        await knex("users").whereIn("displayName", ["doctor a", "doctor b"]).delete();
      });
    }
    expect((await doctor()).code).toBe(0);
  });

  it("fails while a migration is pending, and when the database has applied one this code does not know", async () => {
    await onTarget(async (knex) => {
      await knex.migrate.down();
      await knex("knex_migrations").insert({ name: "20991231000000_from_the_future", batch: 99, migrationTime: new Date() });
    });
    try {
      const { result, checks } = await doctorJson();
      expect(result.code).toBe(1);
      expect(checks.migrations.status).toBe("FAIL");
      expect(checks.migrations.detail).toContain(`1 pending: ${LAST_MIGRATION} (run npm run migrate)`);
      expect(checks.migrations.detail).toContain("the database is newer than the code): 20991231000000_from_the_future");
    } finally {
      await onTarget(async (knex) => {
        await knex("knex_migrations").where({ name: "20991231000000_from_the_future" }).delete();
        await knex.migrate.latest();
      });
    }
  });

  it("decrypts the newest encrypted messages with the ring, and fails on a key id the ring lacks or on wrong key bytes", async () => {
    const ring1 = { MESSAGE_ENCRYPTION_KEYS: `k1:${KEY1}` };
    const conversationId = await onTarget(async (knex) => {
      const [user] = await knex("users").insert({ displayName: "doctor writer" }).returning("id");
      const [conversation] = await knex("conversations").insert({ ownerId: user.id, title: "doctor" }).returning("id");
      const sealed = encryptContent(loadConfig(ring1).encryption!, conversation.id, 1, "on k1");
      await knex("messages").insert({ conversationId: conversation.id, seq: 1, role: "user", authorId: user.id, content: null, ...sealed });
      return conversation.id as string;
    });
    try {
      const good = await doctorJson([], ring1);
      expect(good.result.code).toBe(0);
      expect(good.checks.encryption).toMatchObject({ status: "PASS", detail: expect.stringContaining("the 1 newest encrypted messages decrypt; by key: k1 1") });

      await onTarget(async (knex) => {
        const lost = loadConfig({ MESSAGE_ENCRYPTION_KEYS: `gone:${KEY2}` }).encryption!;
        await knex("messages").insert({ conversationId, seq: 2, role: "user", content: null, ...encryptContent(lost, conversationId, 2, "on a lost key") });
      });
      const lostKey = await doctorJson([], ring1);
      expect(lostKey.result.code).toBe(1);
      expect(lostKey.checks.encryption.status).toBe("FAIL");
      expect(lostKey.checks.encryption.detail).toContain('1 on key "gone", which MESSAGE_ENCRYPTION_KEYS lacks');
      expect(lostKey.checks.encryption.detail).not.toContain("do not decrypt"); // k1's message still does

      // k1 under its id but with other bytes: only decrypting shows it.
      const wrongBytes = await doctorJson([], { MESSAGE_ENCRYPTION_KEYS: `k1:${KEY2}` });
      expect(wrongBytes.checks.encryption.detail).toContain("1 of the 2 newest encrypted messages do not decrypt with their key");

      const noRing = await doctorJson();
      expect(noRing.checks.encryption).toMatchObject({ status: "FAIL", detail: expect.stringContaining("MESSAGE_ENCRYPTION_KEYS is unset") });
    } finally {
      await onTarget(async (knex) => {
        await knex("conversations").where({ id: conversationId }).delete();
        await knex("users").where({ displayName: "doctor writer" }).delete();
      });
    }
  });

  it("refuses a --servers that is not a whole number from 1", async () => {
    const result = await doctor(["--servers", "0"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("--servers must be a whole number from 1");
  });
});

// PGlite has no server settings to check (they read "n/a (embedded)", asserted above): these exist on PostgreSQL only,
// rather than being reported as skipped there.
if (testDbKind() === "postgres") describe("npm run cli -- doctor, settings on PostgreSQL", () => {
  it("fails when --servers processes would need more connections than max_connections allows", async () => {
    const max = await onTarget(async (knex) => Number((await knex.raw("show max_connections")).rows[0].max_connections));
    const servers = Math.ceil(max / 15) + 1; // 15 a process: pool 10, maintenance 4, LISTEN 1
    const { result, checks } = await doctorJson(["--servers", String(servers)]);
    expect(result.code).toBe(1);
    expect(checks.connections.status).toBe("FAIL");
    expect(checks.connections.detail).toContain(`${servers * 15} needed (${servers} processes`);
    expect(checks.connections.detail).toContain(`(max_connections ${max} − `);

    const fits = await doctorJson(["--servers", "2"], { DATABASE_POOL_MAX: "5" });
    expect(fits.checks.connections).toMatchObject({ status: "PASS", detail: expect.stringMatching(/^20 needed \(2 processes × \(DATABASE_POOL_MAX 5 /) });
  });

  it("warns, without failing, when the database sets a statement timeout the maintenance jobs would meet", async () => {
    await onTarget((knex) => knex.raw("do $$ begin execute format('alter database %I set statement_timeout = 3000', current_database()); end $$"));
    try {
      const { result, checks } = await doctorJson();
      expect(result.code).toBe(0);
      expect(checks["statement timeout"]).toMatchObject({ status: "WARN", detail: expect.stringContaining("sets statement_timeout 3000 ms") });
    } finally {
      await onTarget((knex) => knex.raw("do $$ begin execute format('alter database %I reset statement_timeout', current_database()); end $$"));
    }
  });
});
