/**
 * `npm run cli -- <command>`: operator commands that share the server's configuration.
 *   migrate [latest|rollback|rollback-all|status]   apply or undo migrations
 *   seed                                          load the demo data set (prints an API key)
 *   schema                                        write schema.graphql from the code
 *   create-key --role admin|service|member --name NAME [--grant ORIGIN]
 *                                                 a user (reused by name and role) and a new API key,
 *                                                 printed alone on the last line; --grant gives a service
 *                                                 every conversation of an origin (discord for the adapter)
 *   reencrypt [--batch 500]                       move every message onto the current encryption key
 *   export <conversationId> --format csv|json --out FILE [--from-seq N] [--to-seq N] [--from ISO] [--to ISO]
 *          [--no-tool-calls] [--no-system]        a conversation into a file, with a progress bar
 *   discord-register [--guild ID | --global]      register the /parley slash command with Discord
 *   enable-vectors                                create pgvector and the vector columns once the server has pgvector
 *   reindex-message-search                        rebuild the message search index for SEARCH_LANGUAGE, concurrently
 *   doctor [--servers N] [--json]                 check the database (migrations, indexes, settings, keys); exit 1 on a FAIL
 *   retention [--dry-run] [--json]                apply the retention policy (system config "retention") now, in
 *                                                 batches; --dry-run counts what would go and changes nothing;
 *                                                 exit 1 if the policy is invalid or another process holds the lock
 *   import-guild-configs FILE.json [--dry-run] [--backup FILE]
 *                                                 guild settings (guild id → settings) into server_configs,
 *                                                 all or nothing; replaced settings are backed up first
 *   import --from chatgpt|jsonl FILE --owner USER  conversations from another chat app (ChatGPT's conversations.json,
 *                                                 or Parley JSONL), owned by USER (an id or exact display name);
 *                                                 streamed, re-runnable, with a summary of what was skipped
 *   backup [--to disk|s3]                         a backup of the whole database (pg_dump, or PGlite's data-folder dump)
 *                                                 into BACKUP_DIR or S3, with its SHA-256; logged in backup_logs
 *   restore FILE|s3://BUCKET/KEY [--force] [--sha256 HEX]
 *                                                 a backup into the (empty, unless --force) database, checksum
 *                                                 checked first, then the pending migrations
 *   backups [--json]                              the latest backup runs
 * On the embedded database the CLI takes the same lock as the server, so it refuses while a server runs.
 */
import "reflect-metadata";
import { parseArgs } from "node:util";
import { loadConfig, loadEnvFile } from "./config";
import { createDatabase, type Database } from "./db/database";
import { createSchema, SCHEMA_FILE } from "./graphql/schema";
import { Role } from "./modules/user/role.enum";
import { createUserKey } from "./modules/api-key/api-key.service";
import { isValidBatchSize, MAX_BATCH_SIZE, reencryptMessages } from "./modules/message/reencrypt";
import { exportToFile } from "./modules/transcript/transcript.file";
import { TranscriptFormat } from "./modules/transcript/transcript.enums";
import { progressDisplay } from "./progress";
import { formatDoctorReport, runDoctor } from "./modules/ops/doctor";
import { grantOrigin } from "./modules/access/grant.service";
import { ConversationOrigin } from "./modules/conversation/conversation.enums";
import { registerCommands } from "./discord/register";
import { createLogger } from "./logger";
import { importGuildConfigFile, ImportRefusedError } from "./modules/guild/guild-config.import";
import { enableVectors } from "../migrations/lib/vectors";
import { reindexMessageSearch } from "./modules/search/message-search.service";
import { formatRetentionReport, retentionCommand } from "./modules/ops/retention";
import { importConversations, summaryLines } from "./modules/import/import.service";
import { ImportFormatError, ImportSource } from "./modules/import/import.types";
import { restoreBackup, runBackup } from "./modules/ops/backup.service";
import { BackupLog } from "./modules/ops/backup.model";

const USAGE = `usage: npm run cli -- <command>
  migrate [latest|rollback|rollback-all|status]
  seed
  schema
  create-key --role admin|service|member --name NAME [--grant web|discord|api]
  reencrypt [--batch 500]
  export <conversationId> --format csv|json --out FILE [--from-seq N] [--to-seq N] [--from ISO-TIME] [--to ISO-TIME]
         [--no-tool-calls] [--no-system]
  discord-register [--guild ID | --global]
  import-guild-configs FILE.json [--dry-run] [--backup FILE]
  import --from chatgpt|jsonl FILE --owner USER
  enable-vectors
  reindex-message-search
  doctor [--servers N] [--json]
  retention [--dry-run] [--json]
  backup [--to disk|s3]
  restore FILE|s3://BUCKET/KEY [--force] [--sha256 HEX]
  backups [--json]`;

class UsageError extends Error {}

loadEnvFile();

async function withDatabase<T>(run: (db: Database) => Promise<T>): Promise<T> {
  const db = createDatabase(loadConfig());
  try {
    return await run(db);
  } finally {
    await db.close();
  }
}

async function migrate(action = "latest"): Promise<void> {
  await withDatabase(async (db) => {
    const { migrate } = db.maintenance;
    if (action === "latest") {
      const applied = await db.migrate();
      console.log(applied.length ? `Applied: ${applied.join(", ")}` : "Already up to date");
    } else if (action === "rollback" || action === "rollback-all") {
      const [, undone] = (await migrate.rollback(undefined, action === "rollback-all")) as [number, string[]];
      console.log(undone.length ? `Rolled back: ${undone.join(", ")}` : "Nothing to roll back");
    } else if (action === "status") {
      const [done, pending] = (await migrate.list()) as [{ name: string }[], { file: string }[]];
      console.log(`Applied: ${done.length}, pending: ${pending.length}`);
      for (const item of pending) console.log(`  pending ${item.file}`);
    } else throw new UsageError(`unknown migrate action "${action}"`);
  });
}

async function seed(): Promise<void> {
  await withDatabase(async (db) => {
    await db.migrate();
    await db.maintenance.seed.run();
  });
}

async function createKey(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { role: { type: "string" }, name: { type: "string" }, grant: { type: "string" } } });
  const role = Object.values(Role).find((r) => r === values.role?.toLowerCase());
  if (!role) throw new UsageError("--role must be admin, service or member");
  const name = values.name?.trim();
  if (!name) throw new UsageError("--name is required");
  const origin = values.grant === undefined ? undefined : Object.values(ConversationOrigin).find((o) => o === values.grant?.toLowerCase());
  if (values.grant !== undefined && !origin) throw new UsageError("--grant must be web, discord or api");
  if (origin && role !== Role.SERVICE) throw new UsageError("--grant is for --role service");
  const { user, key, secret } = await withDatabase(async (db) => {
    await db.migrate();
    const created = await createUserKey(db.knex, name, role);
    if (origin) await grantOrigin(db.knex, created.user.id, origin);
    return created;
  });
  const granted = origin ? `, granted every ${origin.toUpperCase()} conversation` : "";
  console.log(`User ${user.displayName} (${user.role}) ${user.id}${granted}; key ${key.prefix}… (${key.id}). The key is shown only now:`);
  console.log(secret);
}

async function discordRegister(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { guild: { type: "string" }, global: { type: "boolean", default: false } } });
  const { discord } = loadConfig();
  if (!discord) throw new Error("discord-register needs DISCORD_TOKEN and DISCORD_APPLICATION_ID (see README, Discord)");
  if (values.global && values.guild) throw new UsageError("pass --guild or --global, not both");
  const guildId = values.global ? undefined : (values.guild ?? discord.guildId);
  if (guildId !== undefined && !/^\d{1,25}$/.test(guildId)) throw new UsageError("--guild must be a guild id (digits)");
  const result = await registerCommands(discord, guildId);
  const where = result.scope === "guild" ? `in guild ${result.guildId} (shown at once)` : "globally (Discord may take up to an hour to show it)";
  console.log(`Registered /${result.commands.join(", /")} ${where}.`);
}

async function reencrypt(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { batch: { type: "string", default: "500" } } });
  const batchSize = Number(values.batch);
  if (!isValidBatchSize(batchSize)) {
    throw new UsageError(`--batch must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  const { encryption } = loadConfig();
  if (!encryption) {
    throw new Error("reencrypt needs a key ring: set MESSAGE_ENCRYPTION_KEYS (and MESSAGE_ENCRYPTION_CURRENT_KEY); see README, Encryption at rest");
  }
  const display = progressDisplay("reencrypt", "messages");
  const result = await withDatabase((db) => reencryptMessages(db.maintenance, encryption, { batchSize, onProgress: display.update })).finally(display.stop);
  console.log(
    `Re-encrypted ${result.reencrypted} messages to key "${result.keyId}" (${result.skipped} skipped as changed meanwhile, ` +
      `${result.failed} undecryptable); ${result.remaining} messages are not on that key.`,
  );
  if (result.failed > 0) {
    console.error(`Undecryptable messages (altered, or their key is missing from the ring), e.g.: ${result.failedIds.join(", ")}`);
    process.exitCode = 1;
  } else if (result.remaining > 0) {
    console.error("Messages were written with older settings meanwhile: restart every server with the new key ring, then run reencrypt again.");
  }
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new UsageError(`${flag} must be a whole number from 1`);
  return number;
}

function time(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag} must be a date and time such as 2026-01-31T12:00:00Z`);
  return date;
}

async function exportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      out: { type: "string" },
      "from-seq": { type: "string" },
      "to-seq": { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      "no-tool-calls": { type: "boolean", default: false },
      "no-system": { type: "boolean", default: false },
    },
  });
  const [conversationId] = positionals;
  if (positionals.length !== 1 || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(conversationId)) {
    throw new UsageError("export needs one conversation id (a UUID)");
  }
  const format = Object.values(TranscriptFormat).find((f) => f === values.format?.toLowerCase());
  if (!format) throw new UsageError("--format must be csv or json");
  if (!values.out) throw new UsageError("--out FILE is required");
  const options = {
    format,
    fromSeq: positiveInt(values["from-seq"], "--from-seq"),
    toSeq: positiveInt(values["to-seq"], "--to-seq"),
    from: time(values.from, "--from"),
    to: time(values.to, "--to"),
    includeToolCalls: !values["no-tool-calls"],
    includeSystem: !values["no-system"],
  };
  const config = loadConfig();
  const display = progressDisplay("export", "messages");
  const result = await withDatabase((db) =>
    exportToFile(db.maintenance, config.encryption, conversationId.toLowerCase(), options, values.out!, display.update),
  ).finally(display.stop);
  console.log(`Exported ${result.messageCount} messages to ${values.out} (${result.fileSizeBytes} bytes, sha256 ${result.sha256})`);
}

async function reindexSearch(): Promise<void> {
  const language = loadConfig().knowledge.searchLanguage;
  // The maintenance pool: the build reads every message and must not meet the API's statement timeout.
  const { previous } = await withDatabase((db) => reindexMessageSearch(db.maintenance, language));
  console.log(`Rebuilt the message search index for "${language}"${previous ? ` (it was for "${previous}")` : ""}.`);
}

/** After an operator installed pgvector on a server that lacked it when the knowledge migration ran. */
async function enableVectorsCommand(): Promise<void> {
  const setup = await withDatabase((db) => db.maintenance.transaction((trx) => enableVectors(trx)));
  if (!setup.enabled) throw new Error(`pgvector is still missing: ${setup.reason}. Install it on the database server (e.g. the postgresql-NN-pgvector package), then run this again`);
  console.log("pgvector is enabled: documents and cached answers can carry embeddings (restart the servers so they see it).");
}

async function importGuildConfigs(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { "dry-run": { type: "boolean", default: false }, backup: { type: "string" } } });
  if (positionals.length !== 1) throw new UsageError("import-guild-configs needs one FILE.json");
  const config = loadConfig();
  try {
    const result = await withDatabase(async (db) => {
      await db.migrate();
      return importGuildConfigFile({ db, config, log: createLogger(config) }, positionals[0], { dryRun: values["dry-run"], backupPath: values.backup });
    });
    console.log(`created ${result.created.length}, updated ${result.updated.length}, unchanged ${result.unchanged.length}`);
    if (result.dryRun) {
      console.log(`Dry run: nothing was stored${result.backupPath ? `; the replaced settings would be backed up to ${result.backupPath}` : ""}.`);
    } else {
      if (result.backupPath) console.log(`Backed up the previous settings of the replaced guilds (${result.updated.length}) to ${result.backupPath}.`);
      if (result.created.length || result.updated.length) console.log(`Audit log entries carry the request id ${result.requestId}.`);
    }
  } catch (error) {
    if (!(error instanceof ImportRefusedError)) throw error;
    for (const problem of error.problems) console.error(problem);
    throw new Error(`Nothing was imported: ${error.problems.length} problem(s) in ${error.entries} entries.`);
  }
}

async function importCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { from: { type: "string" }, owner: { type: "string" } } });
  const source = Object.values(ImportSource).find((s) => s === values.from?.toLowerCase());
  if (!source) throw new UsageError("--from must be chatgpt or jsonl");
  if (positionals.length !== 1) throw new UsageError("import needs one FILE");
  if (!values.owner?.trim()) throw new UsageError("--owner USER (a user id or an exact display name) is required");
  const config = loadConfig();
  const display = progressDisplay("import", "bytes");
  const summary = await withDatabase(async (db) => {
    await db.migrate();
    return importConversations({ db, config, log: createLogger(config) }, { source, file: positionals[0], owner: values.owner!, onProgress: display.update });
  })
    .catch((error: unknown) => {
      throw error instanceof ImportFormatError ? new Error(`Nothing was imported: ${error.message}`) : error;
    })
    .finally(display.stop);
  for (const line of summaryLines(summary)) console.log(line);
}

async function backupCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { to: { type: "string" } } });
  if (values.to !== undefined && values.to !== "disk" && values.to !== "s3") throw new UsageError("--to must be disk or s3");
  const config = loadConfig();
  const display = progressDisplay("backup", config.databaseUrl ? "tables" : "bytes");
  const backup = await withDatabase(async (db) => {
    await db.migrate(); // backup_logs must exist; a backup is of an up-to-date database
    return runBackup(db, config, { to: values.to as "disk" | "s3" | undefined, onProgress: display.update });
  }).finally(display.stop);
  console.log(`Backed up to ${backup.filePath} (${backup.fileSizeBytes} bytes, sha256 ${backup.sha256}); backup ${backup.id}`);
}

async function restoreCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: "boolean", default: false }, sha256: { type: "string" } } });
  if (positionals.length !== 1) throw new UsageError("restore needs one FILE (a path, or s3://bucket/key)");
  const config = loadConfig();
  const display = progressDisplay("restore", config.databaseUrl ? "tables" : "steps");
  const result = await restoreBackup(config, { file: positionals[0], force: values.force, sha256: values.sha256, onProgress: display.update }).finally(display.stop);
  const migrated = result.migrated.length ? `; then applied ${result.migrated.length} newer migration(s): ${result.migrated.join(", ")}` : "";
  console.log(`Restored ${positionals[0]} (${result.fileSizeBytes} bytes, sha256 ${result.sha256} checked)${migrated}.`);
}

async function backupsCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } } });
  const rows = await withDatabase(async (db) => BackupLog.query(db.knex).orderBy([{ column: "startedAt", order: "desc" }, { column: "id", order: "desc" }]).limit(20));
  if (values.json) return console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return console.log("No backups yet.");
  for (const row of rows) {
    const file = row.prunedAt ? `${row.filePath} (pruned)` : (row.filePath ?? "-");
    console.log([row.startedAt.toISOString(), row.status, row.trigger, row.backupType, row.fileSizeBytes ?? "-", row.sha256 ?? "-", file, row.errorMessage ?? ""].join("\t").trimEnd());
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "migrate":
      return migrate(rest[0]);
    case "seed":
      return seed();
    case "schema":
      await createSchema({ emitSchemaFile: SCHEMA_FILE });
      console.log(`Wrote ${SCHEMA_FILE}`);
      return;
    case "create-key":
      return createKey(rest);
    case "reencrypt":
      return reencrypt(rest);
    case "export":
      return exportCommand(rest);
    case "discord-register":
      return discordRegister(rest);
    case "import-guild-configs":
      return importGuildConfigs(rest);
    case "import":
      return importCommand(rest);
    case "enable-vectors":
      return enableVectorsCommand();
    case "reindex-message-search":
      return reindexSearch();
    case "backup":
      return backupCommand(rest);
    case "restore":
      return restoreCommand(rest);
    case "backups":
      return backupsCommand(rest);
    case "doctor": {
      const { values } = parseArgs({ args: rest, options: { servers: { type: "string", default: "1" }, json: { type: "boolean", default: false } } });
      const servers = positiveInt(values.servers, "--servers")!;
      const report = await withDatabase((db) => runDoctor(db, loadConfig(), { servers }));
      console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
      if (!report.ok) process.exitCode = 1;
      return;
    }
    case "retention": {
      const { values } = parseArgs({ args: rest, options: { "dry-run": { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
      const report = await withDatabase((db) => retentionCommand(db, loadConfig(), { dryRun: values["dry-run"] }));
      console.log(values.json ? JSON.stringify(report, null, 2) : formatRetentionReport(report));
      if (report.status === "skipped") process.exitCode = 1;
      return;
    }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : "no command given");
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
