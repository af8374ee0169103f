/**
 * The migrations themselves and the constraints they put into the database. Runs against PostgreSQL and
 * PGlite alike; everything here goes through knex directly (no GraphQL), so it checks what the database
 * enforces on its own, whoever writes to it.
 */
import fs from "node:fs";
import type { Knex } from "knex";
import { MIGRATIONS_DIR } from "../../src/db/migration-source";
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from "../helpers/db";

const APP_TABLES = [
  "ai_model_prices",
  "ai_models",
  "ai_requests",
  "alert_deliveries",
  "api_keys",
  "artifacts",
  "assistant_versions",
  "assistants",
  "audit_logs",
  "backup_logs",
  "conversations",
  "cost_tracking",
  "data_exports",
  "discord_posts",
  "document_chunks",
  "documents",
  "feedback",
  "knowledge_bases",
  "message_chunks",
  "messages",
  "metrics",
  "query_cache",
  "query_cache_sources",
  "query_history",
  "rate_limits",
  "server_configs",
  "service_grants",
  "system_alerts",
  "system_configs",
  "transcripts",
  "user_activity",
  "user_budgets",
  "users",
];

const MIGRATION_FILES = fs
  .readdirSync(MIGRATIONS_DIR)
  .filter((file) => /\.(ts|js)$/.test(file) && !file.endsWith(".d.ts"))
  .sort();

/** Rows of a raw query (pg and PGlite both answer with { rows }). */
async function rows<T = Record<string, unknown>>(knex: Knex, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
  const result = (await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] };
  return result.rows;
}

/** Tables of the public schema, without knex's own bookkeeping tables. */
async function appTables(knex: Knex): Promise<string[]> {
  const found = await rows<{ name: string }>(
    knex,
    "select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
  );
  return found
    .map((row) => row.name)
    .filter((name) => !name.startsWith("knex_migrations"))
    .sort();
}

async function touchFunctionExists(knex: Knex): Promise<boolean> {
  const found = await rows(knex, "select 1 from pg_proc where proname = 'parley_touch_updated_at'");
  return found.length > 0;
}

/** The SQLSTATE of the error a promise rejects with (pg and PGlite both put it on `code`). */
async function sqlState(promise: PromiseLike<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const code = (error as { code?: unknown }).code ?? (error as { nativeError?: { code?: unknown } }).nativeError?.code;
    return String(code);
  }
  throw new Error("expected the statement to fail, but it succeeded");
}

const FOREIGN_KEY_VIOLATION = "23503";
const UNIQUE_VIOLATION = "23505";
const CHECK_VIOLATION = "23514";

describe("migrations on an empty database", () => {
  let test: TestDatabase;
  let knex: Knex;

  beforeAll(async () => {
    test = await createEmptyDatabase();
    knex = test.db.knex;
  });
  afterAll(() => test.dispose());

  it("is not ready before any migration ran", async () => {
    expect(await appTables(knex)).toEqual([]);
    expect(await test.db.isReady()).toBe(false);
  });

  it("migrate latest applies every migration file and creates all tables", async () => {
    const applied = await test.db.migrate();
    expect(applied).toEqual(MIGRATION_FILES.map((file) => file.replace(/\.(ts|js)$/, "")));
    expect(await appTables(knex)).toEqual(APP_TABLES);
    expect(await touchFunctionExists(knex)).toBe(true);
    expect(await test.db.isReady()).toBe(true);
  });

  it("records migration names in knex_migrations without a file extension", async () => {
    const recorded = (await rows<{ name: string }>(knex, "select name from knex_migrations order by id")).map((row) => row.name);
    expect(recorded).toHaveLength(MIGRATION_FILES.length);
    for (const name of recorded) expect(name).not.toMatch(/\.(ts|js)$/);
    expect(recorded).toEqual(MIGRATION_FILES.map((file) => file.replace(/\.(ts|js)$/, "")));
  });

  it("migrate latest a second time applies nothing", async () => {
    expect(await test.db.migrate()).toEqual([]);
  });

  it("rolling back all migrations leaves no tables and no trigger function", async () => {
    const [, undone] = (await knex.migrate.rollback(undefined, true)) as [number, string[]];
    expect([...undone].sort()).toEqual(MIGRATION_FILES.map((file) => file.replace(/\.(ts|js)$/, "")).sort());
    expect(await appTables(knex)).toEqual([]);
    expect(await touchFunctionExists(knex)).toBe(false);
    expect(await rows(knex, "select name from knex_migrations")).toEqual([]);
    expect(await test.db.isReady()).toBe(false);
  });

  it("migrate latest after a full rollback recreates the schema", async () => {
    expect(await test.db.migrate()).toHaveLength(MIGRATION_FILES.length);
    expect(await appTables(knex)).toEqual(APP_TABLES);
    expect(await touchFunctionExists(knex)).toBe(true);
    // The recreated schema is usable: a user row goes in with its defaults.
    const [user] = await knex("users").insert({ displayName: "after rollback" }).returning(["role", "isActive", "preferences"]);
    expect(user).toEqual({ role: "member", isActive: true, preferences: {} });
  });
});

describe("the migrated schema", () => {
  let test: TestDatabase;
  let knex: Knex;
  let counter = 0;

  const makeUser = async (fields: Record<string, unknown> = {}): Promise<string> => {
    const [row] = await knex("users").insert({ displayName: `user-${++counter}`, ...fields }).returning("id");
    return row.id as string;
  };
  const makeConversation = async (ownerId: string, fields: Record<string, unknown> = {}): Promise<string> => {
    const [row] = await knex("conversations").insert({ ownerId, ...fields }).returning("id");
    return row.id as string;
  };
  const makeMessage = async (conversationId: string, seq: number, fields: Record<string, unknown> = {}): Promise<string> => {
    const [row] = await knex("messages").insert({ conversationId, seq, role: "user", content: `m${seq}`, ...fields }).returning("id");
    return row.id as string;
  };
  const count = async (table: string, where: Record<string, unknown>): Promise<number> => {
    const [row] = await knex(table).where(where).count({ n: "*" });
    return Number(row.n);
  };

  beforeAll(async () => {
    test = await createTestDatabase();
    knex = test.db.knex;
  });
  afterAll(() => test.dispose());

  describe("cascading deletes", () => {
    it("deleting a conversation deletes its messages and transcripts", async () => {
      const owner = await makeUser();
      const conversation = await makeConversation(owner);
      const other = await makeConversation(owner);
      await makeMessage(conversation, 1);
      await makeMessage(conversation, 2);
      await makeMessage(other, 1);
      await knex("transcripts").insert({ conversationId: conversation, format: "json" });
      await knex("transcripts").insert({ conversationId: other, format: "csv" });

      await knex("conversations").where({ id: conversation }).delete();

      expect(await count("messages", { conversationId: conversation })).toBe(0);
      expect(await count("transcripts", { conversationId: conversation })).toBe(0);
      // Only that conversation's rows go.
      expect(await count("messages", { conversationId: other })).toBe(1);
      expect(await count("transcripts", { conversationId: other })).toBe(1);
    });

    it("deleting a user deletes their conversations (with messages) and api keys", async () => {
      const owner = await makeUser();
      const bystander = await makeUser();
      const conversation = await makeConversation(owner);
      await makeMessage(conversation, 1, { authorId: owner });
      await knex("api_keys").insert({ userId: owner, name: "k", keyHash: `hash-${owner}`, prefix: "pk_x" });
      const kept = await makeConversation(bystander);
      await knex("api_keys").insert({ userId: bystander, name: "k", keyHash: `hash-${bystander}`, prefix: "pk_y" });

      await knex("users").where({ id: owner }).delete();

      expect(await count("conversations", { ownerId: owner })).toBe(0);
      expect(await count("messages", { conversationId: conversation })).toBe(0);
      expect(await count("api_keys", { userId: owner })).toBe(0);
      expect(await count("conversations", { id: kept })).toBe(1);
      expect(await count("api_keys", { userId: bystander })).toBe(1);
    });

    it("deleting a message's author keeps the message with author_id null", async () => {
      const owner = await makeUser();
      const bot = await makeUser({ role: "service" });
      const conversation = await makeConversation(owner);
      const message = await makeMessage(conversation, 1, { authorId: bot, role: "assistant" });

      await knex("users").where({ id: bot }).delete();

      const row = await knex("messages").where({ id: message }).first("authorId", "content");
      expect(row).toEqual({ authorId: null, content: "m1" });
    });

    it("deleting a user nulls the references of transcripts, metrics, configs and audit logs", async () => {
      const owner = await makeUser();
      const actor = await makeUser({ role: "admin" });
      const conversation = await makeConversation(owner);
      const [transcript] = await knex("transcripts").insert({ conversationId: conversation, format: "csv", createdBy: actor }).returning("id");
      const [metric] = await knex("metrics")
        .insert({ clientBotId: "bot", metricType: "t", recordedAt: new Date("2026-01-01T00:00:00Z"), recordedBy: actor })
        .returning("id");
      await knex("system_configs").insert({ key: `k-${actor}`, value: JSON.stringify({ on: true }), updatedBy: actor });
      const [audit] = await knex("audit_logs").insert({ actorId: actor, action: "test" }).returning("id");

      await knex("users").where({ id: actor }).delete();

      expect(await knex("transcripts").where({ id: transcript.id }).first("createdBy")).toEqual({ createdBy: null });
      expect(await knex("metrics").where({ id: metric.id }).first("recordedBy")).toEqual({ recordedBy: null });
      expect(await knex("system_configs").where({ key: `k-${actor}` }).first("updatedBy")).toEqual({ updatedBy: null });
      expect(await knex("audit_logs").where({ id: audit.id }).first("actorId")).toEqual({ actorId: null });
    });
  });

  describe("foreign keys", () => {
    const MISSING = "00000000-0000-4000-8000-000000000000";

    it("refuses a message for a conversation that does not exist", async () => {
      expect(await sqlState(knex("messages").insert({ conversationId: MISSING, seq: 1, role: "user", content: "x" }))).toBe(
        FOREIGN_KEY_VIOLATION,
      );
    });

    it("refuses a message whose author does not exist", async () => {
      const conversation = await makeConversation(await makeUser());
      expect(await sqlState(knex("messages").insert({ conversationId: conversation, seq: 1, role: "user", content: "x", authorId: MISSING }))).toBe(
        FOREIGN_KEY_VIOLATION,
      );
    });

    it("refuses a conversation, api key or transcript pointing at nothing", async () => {
      expect(await sqlState(knex("conversations").insert({ ownerId: MISSING }))).toBe(FOREIGN_KEY_VIOLATION);
      expect(await sqlState(knex("api_keys").insert({ userId: MISSING, name: "k", keyHash: "h-missing", prefix: "p" }))).toBe(
        FOREIGN_KEY_VIOLATION,
      );
      expect(await sqlState(knex("transcripts").insert({ conversationId: MISSING, format: "json" }))).toBe(FOREIGN_KEY_VIOLATION);
    });

    it("has an index whose first column is the referencing column for every foreign key", async () => {
      const unindexed = await rows<{ fk: string }>(
        knex,
        `select c.conrelid::regclass::text || '.' || a.attname as fk
           from pg_constraint c
           join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
          where c.contype = 'f' and c.connamespace = 'public'::regnamespace
            and not exists (
              select 1 from pg_index i where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1]
            )`,
      );
      expect(unindexed).toEqual([]);
    });
  });

  describe("check constraints and uniques", () => {
    it("rejects a user role outside admin, service, member", async () => {
      expect(await sqlState(knex("users").insert({ displayName: "x", role: "superuser" }))).toBe(CHECK_VIOLATION);
      expect(await sqlState(knex("users").insert({ displayName: "x", role: "ADMIN" }))).toBe(CHECK_VIOLATION);
      await expect(makeUser({ role: "service" })).resolves.toEqual(expect.any(String));
    });

    it("rejects an empty display name", async () => {
      expect(await sqlState(knex("users").insert({ displayName: "" }))).toBe(CHECK_VIOLATION);
    });

    it("treats emails as unique regardless of case", async () => {
      await makeUser({ email: "Someone@Example.com" });
      expect(await sqlState(knex("users").insert({ displayName: "dup", email: "someone@example.COM" }))).toBe(UNIQUE_VIOLATION);
    });

    it("rejects a conversation origin or status outside the allowed values", async () => {
      const owner = await makeUser();
      expect(await sqlState(knex("conversations").insert({ ownerId: owner, origin: "fax" }))).toBe(CHECK_VIOLATION);
      expect(await sqlState(knex("conversations").insert({ ownerId: owner, status: "deleted" }))).toBe(CHECK_VIOLATION);
      for (const origin of ["web", "discord", "api"]) {
        await expect(makeConversation(owner, { origin, status: "archived" })).resolves.toEqual(expect.any(String));
      }
    });

    it("rejects a message role or status outside the allowed values", async () => {
      const conversation = await makeConversation(await makeUser());
      expect(await sqlState(knex("messages").insert({ conversationId: conversation, seq: 1, role: "bot", content: "x" }))).toBe(
        CHECK_VIOLATION,
      );
      expect(
        await sqlState(knex("messages").insert({ conversationId: conversation, seq: 1, role: "user", content: "x", status: "done" })),
      ).toBe(CHECK_VIOLATION);
      let seq = 0;
      for (const role of ["user", "assistant", "system", "tool"]) {
        for (const status of ["complete", "streaming", "failed"]) {
          await expect(makeMessage(conversation, ++seq, { role, status })).resolves.toEqual(expect.any(String));
        }
      }
    });

    it("rejects a message seq below 1 and negative token counts", async () => {
      const conversation = await makeConversation(await makeUser());
      expect(await sqlState(knex("messages").insert({ conversationId: conversation, seq: 0, role: "user", content: "x" }))).toBe(
        CHECK_VIOLATION,
      );
      expect(
        await sqlState(knex("messages").insert({ conversationId: conversation, seq: 1, role: "user", content: "x", promptTokens: -1 })),
      ).toBe(CHECK_VIOLATION);
    });

    it("rejects a transcript format or status outside the allowed values, and a bad backup status", async () => {
      const conversation = await makeConversation(await makeUser());
      expect(await sqlState(knex("transcripts").insert({ conversationId: conversation, format: "pdf" }))).toBe(CHECK_VIOLATION);
      expect(await sqlState(knex("transcripts").insert({ conversationId: conversation, format: "csv", status: "lost" }))).toBe(
        CHECK_VIOLATION,
      );
      expect(await sqlState(knex("backup_logs").insert({ backupType: "pg_dump", status: "exploded" }))).toBe(CHECK_VIOLATION);
      await expect(knex("backup_logs").insert({ backupType: "pg_dump", status: "in_progress" })).resolves.toBeDefined();
    });

    it("keeps a transcript's requestId unique per creator, its range ordered, and READY rows complete", async () => {
      const [alice, bob] = [await makeUser(), await makeUser()];
      const conversation = await makeConversation(alice);
      const transcript = (fields: Record<string, unknown>) => knex("transcripts").insert({ conversationId: conversation, format: "csv", ...fields });
      await transcript({ createdBy: alice, requestId: "r1" });
      expect(await sqlState(transcript({ createdBy: alice, requestId: "r1" }))).toBe(UNIQUE_VIOLATION);
      await expect(transcript({ createdBy: bob, requestId: "r1" })).resolves.toBeDefined();
      await expect(transcript({ createdBy: alice, requestId: null })).resolves.toBeDefined();
      await expect(transcript({ createdBy: alice, requestId: null })).resolves.toBeDefined();
      expect(await sqlState(transcript({ fromSeq: 5, toSeq: 4 }))).toBe(CHECK_VIOLATION);
      expect(await sqlState(transcript({ fromSeq: 0 }))).toBe(CHECK_VIOLATION);
      const noon = new Date("2026-01-01T12:00:00Z");
      expect(await sqlState(transcript({ fromTime: noon, toTime: noon }))).toBe(CHECK_VIOLATION);
      await expect(transcript({ fromSeq: 50 })).resolves.toBeDefined();
      expect(await sqlState(transcript({ status: "ready" }))).toBe(CHECK_VIOLATION);
      await expect(transcript({ status: "ready", storageKey: "k", sha256: "00", fileSizeBytes: 1, messageCount: 0 })).resolves.toBeDefined();
    });

    it("keeps seq unique per conversation, but not across conversations", async () => {
      const owner = await makeUser();
      const first = await makeConversation(owner);
      const second = await makeConversation(owner);
      await makeMessage(first, 1);
      expect(await sqlState(makeMessage(first, 1))).toBe(UNIQUE_VIOLATION);
      await expect(makeMessage(second, 1)).resolves.toEqual(expect.any(String));
    });

    it("keeps request_id unique per conversation, allows it in another conversation and allows many nulls", async () => {
      const owner = await makeUser();
      const first = await makeConversation(owner);
      const second = await makeConversation(owner);
      await makeMessage(first, 1, { requestId: "req-1" });
      expect(await sqlState(makeMessage(first, 2, { requestId: "req-1" }))).toBe(UNIQUE_VIOLATION);
      await expect(makeMessage(second, 1, { requestId: "req-1" })).resolves.toEqual(expect.any(String));
      await makeMessage(first, 2);
      await makeMessage(first, 3);
      expect(await count("messages", { conversationId: first })).toBe(3);
    });

    it("allows one active conversation per Discord channel, however many archived ones", async () => {
      const owner = await makeUser();
      await makeConversation(owner, { origin: "discord", discordChannelId: "chan-1", status: "archived" });
      await makeConversation(owner, { origin: "discord", discordChannelId: "chan-1", status: "archived" });
      await makeConversation(owner, { origin: "discord", discordChannelId: "chan-1" });
      expect(await sqlState(makeConversation(owner, { origin: "discord", discordChannelId: "chan-1" }))).toBe(UNIQUE_VIOLATION);
    });
  });

  describe("updated_at trigger", () => {
    const PAST = new Date("2001-02-03T04:05:06.789Z");

    it("sets updated_at to the statement's transaction time on an update that does not set it", async () => {
      const owner = await makeUser();
      const conversation = await makeConversation(owner, { title: "old", createdAt: PAST, updatedAt: PAST });
      const { updatedAt, now } = await knex.transaction(async (trx) => {
        const [row] = await trx("conversations").where({ id: conversation }).update({ title: "new" }).returning(["updatedAt"]);
        // The column rounds to milliseconds; compare with now() rounded the same way.
        const [{ now }] = await rows<{ now: Date }>(trx, "select now()::timestamptz(3) as now");
        return { updatedAt: row.updatedAt as Date, now };
      });
      expect(updatedAt.getTime()).not.toBe(PAST.getTime());
      expect(updatedAt.getTime()).toBe(new Date(now).getTime());
      const stored = await knex("conversations").where({ id: conversation }).first("createdAt", "updatedAt", "title");
      expect(stored.title).toBe("new");
      expect((stored.createdAt as Date).getTime()).toBe(PAST.getTime());
      expect((stored.updatedAt as Date).getTime()).toBe(updatedAt.getTime());
    });

    it("keeps an updated_at that the update sets itself", async () => {
      const owner = await makeUser();
      const conversation = await makeConversation(owner);
      const [row] = await knex("conversations").where({ id: conversation }).update({ title: "imported", updatedAt: PAST }).returning(["updatedAt"]);
      expect((row.updatedAt as Date).getTime()).toBe(PAST.getTime());
    });

    it("is installed on every table that has updated_at", async () => {
      const tables = await rows<{ name: string }>(
        knex,
        "select table_name as name from information_schema.columns where table_schema = 'public' and column_name = 'updated_at' order by 1",
      );
      for (const { name } of tables) {
        const triggers = await rows(
          knex,
          "select 1 from pg_trigger t join pg_proc p on p.oid = t.tgfoid where t.tgrelid = ?::regclass and p.proname = 'parley_touch_updated_at'",
          [name],
        );
        expect({ table: name, triggers: triggers.length }).toEqual({ table: name, triggers: 1 });
      }
      expect(tables.map((t) => t.name).sort()).toEqual(
        ["ai_models", "alert_deliveries", "api_keys", "artifacts", "assistants", "backup_logs", "conversations", "cost_tracking", "data_exports", "discord_posts",
          "documents", "feedback", "knowledge_bases", "messages", "query_cache", "server_configs", "system_alerts", "system_configs", "transcripts",
          "user_budgets", "users"].sort(),
      );
    });

    it("bumps updated_at of users and messages too", async () => {
      const user = await makeUser({ updatedAt: PAST, createdAt: PAST });
      const [userRow] = await knex("users").where({ id: user }).update({ displayName: "renamed" }).returning(["updatedAt"]);
      expect((userRow.updatedAt as Date).getTime()).toBeGreaterThan(PAST.getTime());

      const conversation = await makeConversation(user);
      const message = await makeMessage(conversation, 1, { updatedAt: PAST, createdAt: PAST });
      const [messageRow] = await knex("messages").where({ id: message }).update({ status: "failed" }).returning(["updatedAt"]);
      expect((messageRow.updatedAt as Date).getTime()).toBeGreaterThan(PAST.getTime());
    });
  });
});
