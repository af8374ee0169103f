/**
 * Entry point of `npm start`: reads the configuration, starts the server (and the Discord adapter when
 * DISCORD_TOKEN is set), and shuts down cleanly on SIGTERM/SIGINT (a second signal exits at once).
 */
import "reflect-metadata";
import { loadConfig, loadEnvFile } from "./config";
import { createLogger, stopOnSignals } from "./logger";
import { startServer } from "./server/app";
import { bootstrapAdmin } from "./modules/api-key/api-key.service";
import { startDiscordAdapter, type DiscordAdapter } from "./discord/adapter";

async function main(): Promise<void> {
  loadEnvFile();
  const config = loadConfig();
  const log = createLogger(config);
  const server = await startServer({ config, log });
  if (server.db.kind === "pglite") {
    const first = await bootstrapAdmin(server.db.knex);
    if (first) {
      log.warn({ user: first.user.id }, "empty database: created the user 'admin' (role ADMIN) and an API key, printed once below");
      console.log(`\n  Admin API key (shown only now): ${first.secret}\n`);
    }
  }
  let discord: DiscordAdapter | undefined;
  if (config.discord) {
    // Set up on purpose, so a mistake (a refused key, a bad token) stops the start rather than going unnoticed.
    discord = await startDiscordAdapter({ deps: { ...server, config, apiUrl: server.url } }).catch(async (error: unknown) => {
      await server.dispose();
      throw error;
    });
  }
  log.info(
    { url: `${server.url}/graphql`, database: config.databaseUrl ? "postgres" : `pglite:${config.pgliteDir}`, env: config.nodeEnv, discord: !!discord },
    "Parley is listening",
  );
  stopOnSignals(log, async () => {
    await discord?.dispose();
    await server.dispose();
  });
}

main().catch((error: unknown) => {
  // Start-up errors (bad settings, database in use, unreachable PostgreSQL) are the operator's to fix:
  // print the message plainly rather than a stack trace.
  console.error(`Parley could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
