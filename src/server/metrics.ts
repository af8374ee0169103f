/**
 * Prometheus metrics (prom-client), served on GET /metrics when METRICS_ENABLED=true: on the API's port, or
 * on METRICS_PORT of their own (to keep them off the public listener), optionally behind METRICS_TOKEN.
 *
 * One registry per server (tests run several servers in one process). Gauges of state (the pool, live
 * subscriptions, sockets) are read when scraped; counters and histograms are fed where things happen. With
 * metrics off nothing is registered and every hook is skipped (`metrics?.…`), so they cost nothing.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { Knex } from "knex";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLFormattedError } from "graphql";
import type { Config } from "../config";
import type { Context } from "../graphql/context";
import type { JobObserver } from "../modules/jobs";

/** What the scrape reads of the running server. */
export interface MetricsSources {
  /** The database pool: connections in use, idle, and requests waiting for one. */
  pool(): { used: number; free: number; waiting: number };
  live(): { streams: number; groups: number; subscribers: number; connections: number };
}


/** Client-chosen operation names are labels only while they are few: beyond this many, "other". */
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The statements of the request running in this async context. */
const statementCount = new AsyncLocalStorage<{ statements: number }>();
const counted = new WeakSet<Knex>();

export class Metrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();

  private readonly operations = new Counter({
    name: "parley_graphql_operations_total",
    help: "GraphQL operations by transport, type, operation name and outcome (ok, or error when the answer carried errors)",
    labelNames: ["transport", "type", "operation", "outcome"] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "parley_graphql_operation_duration_seconds",
    help: "Time from receiving an HTTP GraphQL request to its answer",
    labelNames: ["type", "operation"] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: "parley_graphql_errors_total",
    help: "GraphQL errors sent, by extensions.code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  private readonly statements = new Histogram({
    name: "parley_db_statements_per_request",
    help: "SQL statements one HTTP request issued",
    buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: "parley_rate_limit_refusals_total",
    help: "Requests refused with RATE_LIMITED",
    registers: [this.registry],
  });
  private readonly lag = new Histogram({
    name: "parley_live_notify_to_delivery_seconds",
    help: "From a NOTIFY arriving on this process's LISTEN connection to the event's bytes being written to its subscribers",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly jobs = new Counter({
    name: "parley_background_jobs_total",
    help: "Runs of background jobs (sweeps, transcript exports) by outcome",
    labelNames: ["job", "outcome"] as const,
    registers: [this.registry],
  });
  private readonly jobSeconds = new Histogram({
    name: "parley_background_job_duration_seconds",
    help: "How long background job runs took",
    labelNames: ["job"] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "parley_" });
    new Gauge({
      name: "parley_db_pool_connections",
      help: "Database pool connections: in use, idle, and requests waiting for one",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const { used, free, waiting } = sources.pool();
        this.set({ state: "used" }, used);
        this.set({ state: "free" }, free);
        this.set({ state: "waiting" }, waiting);
      },
    });
    const live = (name: string, help: string, read: (now: ReturnType<MetricsSources["live"]>) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(sources.live()));
        },
      });
    live("parley_websocket_connections", "Open websocket connections", (now) => now.connections);
    live("parley_live_subscribers", "Websocket subscribers of conversations, served in groups", (now) => now.subscribers);
    live("parley_live_groups", "Groups the conversation subscribers are served in (one stream and one execution per event each)", (now) => now.groups);
    live("parley_live_streams", "Streams reading the database for live events (groups, inbox and alert streams)", (now) => now.streams);
  }

  /** An operation's name as a label: its own while valid and among the first MAX_OPERATION_NAMES, else "other". */
  private operationLabel(name: string | null | undefined): string {
    if (!name) return "anonymous";
    if (this.operationNames.has(name)) return name;
    if (!OPERATION_NAME.test(name) || this.operationNames.size >= MAX_OPERATION_NAMES) return "other";
    this.operationNames.add(name);
    return name;
  }

  /** One operation's outcome and errors; with `seconds` (HTTP), its duration under the same labels. */
  operation(
    transport: "http" | "websocket",
    type: string | undefined,
    name: string | null | undefined,
    errors: readonly GraphQLFormattedError[] | undefined,
    seconds?: number,
  ): void {
    const labels = { type: type ?? "unknown", operation: this.operationLabel(name) };
    this.operations.inc({ transport, ...labels, outcome: errors?.length ? "error" : "ok" });
    for (const error of errors ?? []) this.errors.inc({ code: String(error.extensions?.code ?? "INTERNAL_SERVER_ERROR") });
    if (seconds !== undefined) this.duration.observe(labels, seconds);
  }

  rateLimited(): void {
    this.refusals.inc();
  }

  delivered(lagSeconds: number): void {
    this.lag.observe(lagSeconds);
  }

  readonly job: JobObserver = (job, outcome, seconds) => {
    this.jobs.inc({ job, outcome });
    this.jobSeconds.observe({ job }, seconds);
  };

  /** Counts the statements of every request of `knex` (once per knex: servers sharing a database share it). */
  countStatements(knex: Knex): void {
    if (counted.has(knex)) return;
    counted.add(knex);
    knex.on("query", () => {
      const store = statementCount.getStore();
      if (store) store.statements++;
    });
  }

  /** Runs one HTTP request's handling, then records how many statements it issued. */
  async request<T>(handle: () => Promise<T>): Promise<T> {
    const store = { statements: 0 };
    try {
      return await statementCount.run(store, handle);
    } finally {
      this.statements.observe(store.statements);
    }
  }

  /** Apollo's side: each HTTP operation's outcome, errors and duration. */
  apolloPlugin(): ApolloServerPlugin<Context> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metrics = this;
    return {
      async requestDidStart() {
        const started = process.hrtime.bigint();
        return {
          async willSendResponse({ response, operation, request }) {
            const errors = response.body.kind === "single" ? response.body.singleResult.errors : undefined;
            const seconds = Number(process.hrtime.bigint() - started) / 1e9;
            metrics.operation("http", operation?.operation, operation ? request.operationName ?? operation.name?.value : undefined, errors, seconds);
          },
        };
      },
    };
  }

  /** Answers GET /metrics: the exposition, or 401 without the token when one is set. */
  async serve(req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined): Promise<void> {
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" });
      res.end("Unauthorized\n");
      return;
    }
    const body = await this.registry.metrics();
    res.writeHead(200, { "content-type": this.registry.contentType, "cache-control": "no-store" });
    res.end(body);
  }
}

/** The knex pool's state (tarn); an embedded database without a pool reads as empty. */
export function poolState(knex: Knex): { used: number; free: number; waiting: number } {
  const pool = (knex.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  return pool ? { used: pool.numUsed(), free: pool.numFree(), waiting: pool.numPendingAcquires() } : { used: 0, free: 0, waiting: 0 };
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A listener of its own for /metrics (METRICS_PORT); resolves once listening. */
export async function startMetricsServer(metrics: Metrics, config: Config): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("Not found\n");
      return;
    }
    metrics.serve(req, res, config.metrics.token).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.metrics.port, config.host, () => resolve());
  });
  return server;
}
