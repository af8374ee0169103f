/**
 * `npm run discord`: the Discord adapter alone, without the HTTP API, against the database the settings name
 * (with PostgreSQL, next to API servers on the same database; the embedded database allows one process, so
 * there it replaces `npm start`). Stops cleanly on SIGTERM/SIGINT.
 */
import "reflect-metadata";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig, loadEnvFile } from "../config";
import { createLogger, stopOnSignals } from "../logger";
import { createDatabase } from "../db/database";
import { createNotificationListener } from "../db/notifications";
import { createSchema } from "../graphql/schema";
import { LiveHub } from "../modules/live/live.hub";
import { TranscriptJobs } from "../modules/transcript/transcript.jobs";
import { createRateLimiter } from "../server/rate-limit";
import { createFileRoutesHandler } from "../server/http";
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
    // The adapter fetches transcript files from the download route like any client; with no API server in this
    // process, it serves the file routes on a loopback port of its own, reachable from this machine only.
    const deps = { db, config, log, live, rateLimiter, transcripts };
    const files = http.createServer(createFileRoutesHandler(deps));
    await new Promise<void>((resolve, reject) => files.once("error", reject).listen(0, "127.0.0.1", resolve));
    closing.push(() => new Promise((resolve) => files.close(resolve)));
    const apiUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    const adapter = await startDiscordAdapter({ deps: { ...deps, schema: await createSchema(), apiUrl } });
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
