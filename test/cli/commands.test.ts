/**
 * The operator commands as operators run them, in child processes: the knex CLI with knexfile.ts, and
 * `npm run cli -- create-key`. On PGlite they also prove the folder lock: nothing opens a folder in use.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { createDatabase } from "../../src/db/database";
import { authenticateApiKey } from "../../src/modules/api-key/api-key.service";
import { Role } from "../../src/modules/user/role.enum";
import { testConfig, testDbKind } from "../helpers/db";
import { knexCli, parleyCli, cliTarget, type CliTarget } from "../helpers/cli";
import { HOSTILE_TEXTS, neutralised } from "../helpers/transcripts";
import { MIGRATIONS_DIR } from "../../src/db/migration-source";

const MIGRATIONS = fs.readdirSync(MIGRATIONS_DIR).filter((file) => /\.(ts|js)$/.test(file) && !file.endsWith(".d.ts")).length;
/** The application's tables (test/db/migrations.test.ts names them). */
const TABLES = 33;

/** The database these commands target: an empty PostgreSQL database, or a PGlite folder in a temp dir. */
let target: CliTarget;

beforeAll(async () => {
  target = await cliTarget();
});

afterAll(async () => {
  await target?.dispose();
});

function openTarget() {
  return createDatabase(testConfig(target.env.DATABASE_URL, target.env));
}

async function tableCount(): Promise<number> {
  const db = openTarget();
  try {
    const { rows } = await db.knex.raw("select count(*)::int as n from pg_tables where schemaname = 'public' and tablename not like 'knex%'");
    return rows[0].n;
  } finally {
    await db.close();
  }
}

describe("knex CLI with knexfile.ts", () => {
  it("runs migrate:latest, migrate:rollback --all and migrate:latest again", async () => {
    const up = await knexCli(["migrate:latest"], target.env);
    expect(up).toMatchObject({ code: 0 });
    expect(up.stdout).toContain(`Batch 1 run: ${MIGRATIONS} migrations`);
    expect(await tableCount()).toBe(TABLES);

    const down = await knexCli(["migrate:rollback", "--all"], target.env);
    expect(down.code).toBe(0);
    expect(await tableCount()).toBe(0);

    const again = await knexCli(["migrate:latest"], target.env);
    expect(again.code).toBe(0);
    expect(await tableCount()).toBe(TABLES);
  });
});

describe("npm run cli -- create-key", () => {
  it("prints a working key for a new user alone on the last line, and reuses the user by name", async () => {
    const first = await parleyCli(["create-key", "--role", "admin", "--name", "Ops"], target.env);
    const second = await parleyCli(["create-key", "--role", "admin", "--name", "Ops"], target.env);
    expect(first.code).toBe(0);
    const keys = [first, second].map((result) => result.stdout.trim().split("\n").pop()!);
    for (const key of keys) expect(key).toMatch(/^pk_[A-Za-z0-9_-]{43}$/);
    expect(keys[0]).not.toBe(keys[1]);

    const db = openTarget();
    try {
      const viewers = await Promise.all(keys.map((key) => authenticateApiKey(db.knex, key)));
      expect(viewers[0]).toMatchObject({ role: Role.ADMIN, displayName: "Ops" });
      expect(viewers[1]!.id).toBe(viewers[0]!.id);
      const stored = await db.knex("api_keys").pluck("key_hash");
      expect(stored.join(" ")).not.toContain(keys[0]); // only hashes are stored
    } finally {
      await db.close();
    }
  });

  it("refuses an unknown role with a usage message", async () => {
    const result = await parleyCli(["create-key", "--role", "root", "--name", "x"], target.env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("--role must be admin, service or member");
  });
});

describe("npm run cli -- export", () => {
  let conversationId: string;
  let out: string;
  let contents: string[];

  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "parley-export-"));
    const db = openTarget();
    try {
      await db.migrate();
      const [user] = await db.knex("users").insert({ displayName: "exporter" }).returning("id");
      const [conversation] = await db.knex("conversations").insert({ ownerId: user.id, title: "cli" }).returning("id");
      conversationId = conversation.id;
      contents = [...HOSTILE_TEXTS, "x".repeat(50_000)];
      // 2,500 more plain messages: the export reads several pages.
      for (let i = 0; i < 2500; i++) contents.push(`plain ${i}`);
      const rows = contents.map((content, i) => ({ conversationId, seq: i + 1, role: "user", content, authorId: user.id }));
      for (let i = 0; i < rows.length; i += 500) await db.knex("messages").insert(rows.slice(i, i + 500));
      await db.knex("conversations").where({ id: conversationId }).update({ lastSeq: rows.length, messageCount: rows.length });
    } finally {
      await db.close();
    }
  });
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it("writes a CSV the API would write, with progress on stderr", async () => {
    const file = path.join(out, "conversation.csv");
    const result = await parleyCli(["export", conversationId, "--format", "csv", "--out", file], target.env);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain(`Exported ${contents.length} messages to ${file}`);
    expect(result.stderr).toContain(`export: ${contents.length}/${contents.length} messages (100%)`);
    const records: string[][] = parse(fs.readFileSync(file));
    expect(records[0][8]).toBe("content");
    expect(records.slice(1).map((record) => record[8])).toEqual(contents.map(neutralised));
    expect(records.slice(1).map((record) => Number(record[1]))).toEqual(contents.map((_, i) => i + 1));
  });

  it("writes JSON for a range, and refuses bad arguments without writing anything", async () => {
    const file = path.join(out, "range.json");
    const result = await parleyCli(["export", conversationId, "--format", "json", "--out", file, "--from-seq", "3", "--to-seq", "12"], target.env);
    expect(result.code).toBe(0);
    const document = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(document.messages.map((m: { content: string }) => m.content)).toEqual(contents.slice(2, 12));
    expect(document.transcript).toMatchObject({ id: null, fromSeq: 3, toSeq: 12 });

    const bad = path.join(out, "bad.csv");
    const refused = await parleyCli(["export", conversationId, "--format", "xml", "--out", bad], target.env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("--format must be csv or json");
    const unknown = await parleyCli(["export", "00000000-0000-4000-8000-000000000000", "--format", "csv", "--out", bad], target.env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("No conversation 00000000-0000-4000-8000-000000000000");
    expect(fs.readdirSync(out).sort()).toEqual(["conversation.csv", "range.json"]);
  });
});

// PostgreSQL servers arbitrate their own clients; only the embedded folder needs Parley's lock.
if (testDbKind() === "pglite") {
describe("the embedded database lock", () => {
  it("makes the CLI and the knex CLI refuse a PGlite folder that is open elsewhere", async () => {
    const holder = openTarget();
    try {
      await holder.knex.raw("select 1");
      for (const result of [
        await parleyCli(["migrate", "status"], target.env),
        await knexCli(["migrate:status"], target.env),
      ]) {
        expect(result.code).not.toBe(0);
        expect(result.stdout + result.stderr).toContain(`is in use by process ${process.pid}`);
      }
    } finally {
      await holder.close();
    }
    expect((await parleyCli(["migrate", "status"], target.env)).code).toBe(0); // released on close
  });
});
}
