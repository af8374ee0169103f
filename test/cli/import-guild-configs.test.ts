/**
 * `npm run cli -- import-guild-configs FILE.json [--dry-run] [--backup FILE]` as operators run it, in a child
 * process against its own database: legacy snake_case keys, all-or-nothing validation, idempotence (a second
 * import changes and audits nothing), dry runs, and the backup of replaced settings written before they change.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createDatabase } from "../../src/db/database";
import { testConfig, testDbKind } from "../helpers/db";
import { parleyCli, cliTarget, type CliTarget } from "../helpers/cli";

// Every case runs the CLI as a child process; on PGlite each run opens the embedded database afresh (seconds),
// and a case runs it up to five times: far over the default on a busy machine.
jest.setTimeout(240_000);

let target: CliTarget;
let files: string;

const A = "200000000000000001";
const B = "200000000000000002";
const C = "200000000000000003";

beforeAll(async () => {
  files = fs.mkdtempSync(path.join(os.tmpdir(), "parley-guild-import-"));
  target = await cliTarget();
  if (testDbKind() === "pglite") {
    // Migrated once here, so no case pays for it.
    const migrated = await parleyCli(["migrate"], target.env);
    if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
  }
});

afterAll(async () => {
  await target?.dispose();
  fs.rmSync(files, { recursive: true, force: true });
});

/** Reads the target database while the CLI is not running (PGlite's folder takes one process at a time). */
async function read<T>(query: (knex: ReturnType<typeof createDatabase>["knex"]) => Promise<T>): Promise<T> {
  const db = createDatabase(testConfig(target.env.DATABASE_URL, target.env));
  try {
    return await query(db.knex);
  } finally {
    await db.close();
  }
}

const stored = () =>
  read(async (knex) => {
    const rows: { guildId: string; settings: unknown; updatedAt: Date; updatedBy: string }[] = await knex("server_configs").orderBy("guildId").select("guildId", "settings", "updatedAt", "updatedBy");
    return rows;
  });
const auditRows = () => read((knex) => knex("audit_logs").where({ targetType: "guild" }).select("action", "targetId", "actorId", "details", "requestId"));

function writeFile(name: string, content: unknown): string {
  const file = path.join(files, name);
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

const importing = (args: string[]) => parleyCli(["import-guild-configs", ...args], target.env);

/** Files in the test folder whose name starts with `prefix`. */
const filesStarting = (prefix: string) => fs.readdirSync(files).filter((name) => name.startsWith(prefix));

describe("npm run cli -- import-guild-configs", () => {
  const first = {
    // The legacy bots' snake_case keys, mapped onto the settings shape.
    [A]: { model: "gpt-4o-mini", system_prompt: "Be brief.", rag_enabled: true, top_k: 4, cache_enabled: false, allowed_channels: ["200000000000000011"] },
    [B]: { language: "simple", answerCache: { enabled: true, ttlSeconds: 600 } },
  };

  it("refuses a file with bad entries, naming each, and stores nothing (not even the good entries)", async () => {
    const file = writeFile("bad.json", {
      [A]: { model: "fine" },
      "not-a-guild": { model: "x" },
      [B]: { model: "x", temperature: 0.3 },
      [C]: { rag_enabled: true, top_k: 99 },
      "200000000000000004": { language: "klingon" },
      "200000000000000005": { system_prompt: "a", systemPrompt: "b" },
      "200000000000000006": ["model"],
    });
    const result = await importing([file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('guild not-a-guild: guild id "not-a-guild" must be a Discord id');
    expect(result.stderr).toContain(`guild ${B}: settings.temperature is not a setting`);
    expect(result.stderr).toContain(`guild ${C}: settings.rag.topK must be a whole number from 1 to 50`);
    expect(result.stderr).toContain('guild 200000000000000004: settings.language: PostgreSQL has no text search configuration "klingon"');
    expect(result.stderr).toContain("guild 200000000000000005: system_prompt and systemPrompt are the same setting");
    expect(result.stderr).toContain("guild 200000000000000006: settings must be a JSON object");
    expect(result.stderr).toContain("Nothing was imported: 6 problem(s) in 7 entries.");
    expect(result.stderr).not.toContain(`guild ${A}:`);
    expect(await stored()).toEqual([]);
    expect(await auditRows()).toEqual([]);

    for (const [content, message] of [
      ["{ not json", "the file is not JSON"],
      ["[1, 2]", "the file must hold a JSON object"],
    ]) {
      const refused = await importing([writeFile("broken.json", content)]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(message);
    }
    const usage = await importing([]);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toContain("import-guild-configs needs one FILE.json");
  });

  it("imports every guild (legacy keys mapped), audited as the CLI's admin in one request", async () => {
    const file = writeFile("first.json", first);
    const result = await importing([file]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("created 2, updated 0, unchanged 0");
    expect(filesStarting("first.json.replaced-")).toEqual([]); // nothing was replaced: nothing to back up

    const rows = await stored();
    expect(rows.map(({ guildId, settings }) => ({ guildId, settings }))).toEqual([
      {
        guildId: A,
        settings: {
          model: "gpt-4o-mini",
          systemPrompt: "Be brief.",
          rag: { enabled: true, topK: 4 },
          answerCache: { enabled: false },
          allowedChannels: ["200000000000000011"],
        },
      },
      { guildId: B, settings: { language: "simple", answerCache: { enabled: true, ttlSeconds: 600 } } },
    ]);
    const audits = await auditRows();
    expect(audits.map((row) => [row.action, row.targetId]).sort()).toEqual([
      ["guild_config.set", A],
      ["guild_config.set", B],
    ]);
    expect(new Set(audits.map((row) => row.requestId)).size).toBe(1);
    expect(result.stdout).toContain(`request id ${audits[0].requestId}`);
    const actor = await read((knex) => knex("users").where({ id: audits[0].actorId }).first("displayName", "role"));
    expect(actor).toEqual({ displayName: "cli", role: "admin" });
    expect(rows.every((row) => row.updatedBy === audits[0].actorId)).toBe(true);
  });

  it("changes nothing the second time: no audit entry, no new updatedAt, no backup", async () => {
    const before = await stored();
    const audits = (await auditRows()).length;
    const result = await importing([writeFile("first.json", first)]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("created 0, updated 0, unchanged 2");
    expect(await stored()).toEqual(before);
    expect(await auditRows()).toHaveLength(audits);
    expect(filesStarting("first.json.replaced-")).toEqual([]);
  });

  const second = {
    [A]: { model: "gpt-4o" }, // replaces A's settings whole
    [B]: first[B], // unchanged
    [C]: { rag: { enabled: false, topK: 1 } }, // new
  };

  it("stores nothing on a dry run, and prints the same summary", async () => {
    const before = await stored();
    const audits = (await auditRows()).length;
    const result = await importing([writeFile("second.json", second), "--dry-run"]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("created 1, updated 1, unchanged 1");
    expect(result.stdout).toContain("Dry run: nothing was stored; the replaced settings would be backed up to");
    expect(await stored()).toEqual(before);
    expect(await auditRows()).toHaveLength(audits);
    expect(filesStarting("second.json.replaced-")).toEqual([]);
  });

  it("backs up the previous settings of every guild it replaces, then replaces them", async () => {
    const before = await stored();
    const backup = path.join(files, "backup.json");
    const result = await importing([writeFile("second.json", second), "--backup", backup]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("created 1, updated 1, unchanged 1");
    expect(result.stdout).toContain(`Backed up the previous settings of the replaced guilds (1) to ${backup}.`);
    // Only what was replaced, in the import's own shape: importing the backup puts it back.
    expect(JSON.parse(fs.readFileSync(backup, "utf8"))).toEqual({ [A]: before.find((row) => row.guildId === A)!.settings });
    expect((await stored()).map(({ guildId, settings }) => ({ guildId, settings }))).toEqual([
      { guildId: A, settings: { model: "gpt-4o" } },
      { guildId: B, settings: first[B] },
      { guildId: C, settings: { rag: { enabled: false, topK: 1 } } },
    ]);
    const changes = (await auditRows()).filter((row) => row.targetId === A);
    expect(changes.map((row) => row.details)).toContainEqual({ before: before.find((row) => row.guildId === A)!.settings, after: { model: "gpt-4o" } });

    // An existing backup is never overwritten: the import stops before changing anything.
    const restore = await importing([backup, "--backup", backup]);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toContain(`The backup file ${backup} exists already`);
    expect((await stored()).find((row) => row.guildId === A)!.settings).toEqual({ model: "gpt-4o" });
  });

  it("writes the backup next to the file by default, and the backup restores what was replaced", async () => {
    const backup = path.join(files, "backup.json");
    const result = await importing([backup]); // A's settings of the first import back
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("created 0, updated 1, unchanged 0");
    const [written] = filesStarting("backup.json.replaced-");
    expect(written).toMatch(/^backup\.json\.replaced-\d{8}T\d{6}Z\.json$/);
    expect(result.stdout).toContain(path.join(files, written));
    expect(JSON.parse(fs.readFileSync(path.join(files, written), "utf8"))).toEqual({ [A]: { model: "gpt-4o" } });
    expect((await stored()).find((row) => row.guildId === A)!.settings).toEqual({
      model: "gpt-4o-mini",
      systemPrompt: "Be brief.",
      rag: { enabled: true, topK: 4 },
      answerCache: { enabled: false },
      allowedChannels: ["200000000000000011"],
    });
  });
});
