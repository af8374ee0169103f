/**
 * `npm run discord`: the Discord adapter alone, without the HTTP API, against the database the settings name
 * (with PostgreSQL, next to API servers on the same database; the embedded database allows one process, so
 * there it replaces `npm start`). Stops cleanly on SIGTERM/SIGINT.
 */
import "reflect-metadata";
import { loadConfig, loadEnvFile } from "../config";
import { createLogger, stopOnSignals } from "../logger";
import { createDatabase } from "../db/database";
import { createNotificationListener } from "../db/notifications";
import { createSchema } from "../graphql/schema";
import { LiveHub } from "../modules/live/live.hub";
import { TranscriptJobs } from "../modules/transcript/transcript.jobs";
import { createRateLimiter } from "../server/rate-limit";
import { startDiscordAdapter } from "./adapter";
import { flushKeyUsage } from "../modules/api-key/api-key.service";

async function main(): Promise<void> {
  loadEnvFile();
  const config = loadConfig();
  if (!config.discord) throw new Error("Set DISCORD_TOKEN and DISCORD_APPLICATION_ID (see README, Discord)");
  const log = createLogger(config);
  const db = createDatabase(config);
  // Run in reverse: the adapter stops first, the pending key bookkeeping is written, the database closes last.
  const closing: (() => unknown)[] = [() => db.close(), () => flushKeyUsage(db.knex)];
  const close = async () => {
    for (const step of closing.reverse()) await step();
  };
  try {
    if (config.migrateOnStart) await db.migrate();
    const listener = await createNotificationListener(db, config.databaseListenUrl, log);
    const live = new LiveHub(listener);
    const rateLimiter = createRateLimiter(config, db, log);
    // /parley transcript exports through createTranscript, which needs the process's export jobs and storage.
    const transcripts = new TranscriptJobs(db.maintenance, config, log);
    transcripts.start();
    closing.push(() => listener.dispose(), () => live.dispose(), () => rateLimiter.dispose(), () => transcripts.dispose());
    const adapter = await startDiscordAdapter({ deps: { schema: await createSchema(), db, config, log, live, rateLimiter, transcripts } });
    closing.push(() => adapter.dispose());
  } catch (error) {
    await close();
    throw error;
  }
  stopOnSignals(log, close);
}

main().catch((error: unknown) => {
  console.error(`The Discord adapter could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
