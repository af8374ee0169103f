/**
 * Starts Parley: database (migrated when configured), one schema, Apollo and graphql-ws on one http server.
 * dispose() is the one shutdown path for SIGTERM and tests: stop accepting, let in-flight requests finish
 * (up to the grace period), close websockets, then the database.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { GraphQLSchema } from "graphql";
import type { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import type { Config } from "../config";
import { createDatabase, type Database } from "../db/database";
import { prepareEmbedding } from "../db/embed";
import { User } from "../modules/user/user.model";
import { Message } from "../modules/message/message.model";
import { Conversation } from "../modules/conversation/conversation.model";
import { ApiKeyCache } from "../modules/api-key/api-key.cache";
import { flushKeyUsage } from "../modules/api-key/api-key.service";
import { ACCESS_CHANNEL, createNotificationListener, EVENTS_CHANNEL, type NotificationListener } from "../db/notifications";
import { LiveHub } from "../modules/live/live.hub";
import { StaleStreamSweeper } from "../modules/message/stream.sweeper";
import { AnswerCacheSweeper } from "../modules/knowledge/answer-cache.sweeper";
import { BackupScheduler } from "../modules/ops/backup.scheduler";
import { TranscriptJobs } from "../modules/transcript/transcript.jobs";
import { RetentionJob } from "../modules/ops/retention.job";
import { AlertWebhook } from "../modules/alert/webhook";
import { createLogger } from "../logger";
import { createSchema } from "../graphql/schema";
import type { Context } from "../graphql/context";
import { createApollo } from "./apollo";
import { createHttpHandler } from "./http";
import { createRateLimiter, type RateLimiter } from "./rate-limit";
import { attachWebSocketServer } from "./ws";
import type { FanOut } from "../modules/live/fan-out";
import { Metrics, poolState, startMetricsServer } from "./metrics";

export interface RunningServer {
  url: string;
  port: number;
  httpServer: http.Server;
  schema: GraphQLSchema;
  apollo: ApolloServer<Context>;
  db: Database;
  log: Logger;
  /** Live event streams of this process. */
  live: LiveHub;
  /** The groups its websocket subscribers are served in. */
  fanOut: FanOut;
  /** Where /metrics is served when METRICS_PORT gives it a listener of its own. */
  metricsUrl: string | undefined;
  /** Transcript exports of this process and their storage. */
  transcripts: TranscriptJobs;
  /** The request budgets; in-process transports (the Discord adapter) count against them too. */
  rateLimiter: RateLimiter;
  dispose(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  /** An open database to use (tests); otherwise one is opened from config and closed by dispose(). */
  db?: Database;
  log?: Logger;
}

export async function startServer({ config, db: givenDb, log = createLogger(config) }: StartOptions): Promise<RunningServer> {
  const db = givenDb ?? createDatabase(config);
  // Its sources are read at scrape time, by when everything they name has started.
  let live: LiveHub | undefined;
  let ws: ReturnType<typeof attachWebSocketServer> | undefined;
  const metrics = config.metrics.enabled
    ? new Metrics({
        pool: () => poolState(db.knex),
        live: () => ({
          streams: live?.size ?? 0,
          groups: ws?.fanOut.size.groups ?? 0,
          subscribers: ws?.fanOut.size.members ?? 0,
          connections: ws?.wsServer.clients.size ?? 0,
        }),
      })
    : undefined;
  metrics?.countStatements(db.knex);
  const rateLimiter = createRateLimiter(config, db, log, metrics && (() => metrics.rateLimited()));
  let metricsServer: http.Server | undefined;
  let listener: NotificationListener | undefined;
  let transcripts: TranscriptJobs | undefined;
  let webhook: AlertWebhook | undefined;
  let retention: RetentionJob | undefined;
  try {
    if (config.migrateOnStart) {
      const applied = await db.migrate();
      if (applied.length) log.info({ applied }, "migrations applied");
    }
    await prepareEmbedding(db.knex, [User, Conversation, Message]);
    const schema = await createSchema();
    const httpServer = http.createServer();
    // An idle keep-alive connection outlives the clients' and load balancers' own idle timeouts (undici 4 s,
    // AWS ALB 60 s): otherwise the server may close one just as a client sends on it, which the client sees as
    // ECONNRESET (seen once in CI, on Node 24). Shutdown closes idle connections itself (the drain plugin).
    httpServer.keepAliveTimeout = 65_000;
    httpServer.headersTimeout = 66_000;
    listener = await createNotificationListener(db, config.databaseListenUrl, log);
    const hub = (live = new LiveHub(listener));
    // Replies whose worker died stay STREAMING until this fails them; an outage does not count against them.
    const sweeper = new StaleStreamSweeper(db.knex, config, log);
    sweeper.observe = metrics?.job;
    sweeper.start();
    listener.onReconnect(() => sweeper.databaseBack());
    // Expired answers are never served; this only keeps query_cache from growing with them.
    const answerSweeper = new AnswerCacheSweeper(db.knex, log);
    answerSweeper.observe = metrics?.job;
    answerSweeper.start();
    // BACKUP_INTERVAL_HOURS: whichever server holds the schedule's lock takes the backup when one is due.
    const backups = new BackupScheduler(db, config, log);
    backups.observe = metrics?.job;
    backups.start();
    const apiKeyCache = new ApiKeyCache(config.authCacheSeconds * 1000);
    // Emptied on every access change anywhere, and after the LISTEN connection was lost (changes may have gone unheard).
    listener.on(ACCESS_CHANNEL, () => apiKeyCache.clear());
    listener.onReconnect(() => apiKeyCache.clear());
    transcripts = new TranscriptJobs(db.maintenance, config, log);
    transcripts.observe = metrics?.job;
    transcripts.start();
    // RETENTION_INTERVAL_MINUTES: the policy in system config `retention`; whichever server holds the lock applies it.
    retention = new RetentionJob({ db, config, log, transcripts }, { intervalMs: config.retentionIntervalMinutes * 60_000 });
    retention.observe = metrics?.job;
    retention.start();
    if (config.alertWebhook) {
      // Woken by every alert announced anywhere, and after the LISTEN connection was lost (alerts may have gone unheard).
      const started = (webhook = new AlertWebhook(db.knex, config.alertWebhook, log));
      listener.on(EVENTS_CHANNEL, (event) => event.t === "alert" && started.wake());
      listener.onReconnect(() => started.wake());
      started.start();
    }
    const deps = { config, db, log, rateLimiter, listener, live: hub, apiKeyCache, transcripts, metrics };
    const socketServer = (ws = attachWebSocketServer(httpServer, schema, deps));
    const apollo = createApollo(schema, config, [
      ...(metrics ? [metrics.apolloPlugin()] : []),
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceSeconds * 1000 }),
      { async serverWillStart() { return { drainServer: () => socketServer.dispose() }; } },
    ]);
    await apollo.start();
    httpServer.on("request", createHttpHandler({ ...deps, apollo }));
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    if (metrics && config.metrics.port !== undefined) metricsServer = await startMetricsServer(metrics, config);
    const { port } = httpServer.address() as AddressInfo;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
    const url = `http://${host}:${port}`;
    let disposing: Promise<void> | undefined;
    return {
      url,
      port,
      httpServer,
      schema,
      apollo,
      db,
      log,
      live: hub,
      fanOut: socketServer.fanOut,
      metricsUrl: metricsServer && `http://${host}:${(metricsServer.address() as AddressInfo).port}/metrics`,
      transcripts,
      rateLimiter,
      dispose: () =>
        (disposing ??= (async () => {
          await apollo.stop();
          sweeper.dispose();
          await answerSweeper.dispose();
          await backups.dispose();
          await flushKeyUsage(db.knex); // after the last request, before the pool closes
          await retention!.dispose(); // before the export jobs: it removes files through their storage
          await transcripts!.dispose();
          await webhook?.dispose();
          hub.dispose();
          await listener!.dispose();
          await closeServer(metricsServer);
          rateLimiter.dispose();
          if (!givenDb) await db.close();
        })()),
    };
  } catch (error) {
    await closeServer(metricsServer);
    await webhook?.dispose();
    await retention?.dispose();
    await transcripts?.dispose();
    await listener?.dispose();
    rateLimiter.dispose();
    if (!givenDb) await db.close();
    throw error;
  }
}

function closeServer(server: http.Server | undefined): Promise<void> {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
}
