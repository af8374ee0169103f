/**
 * The only reader of process.env. Everything else (server, CLI, knexfile, tests) receives a Config.
 * Values are parsed and checked once at start-up so that a typo in a deploy fails loudly instead of
 * silently falling back to a default.
 */
import fs from "node:fs";
import path from "node:path";

export type Env = Record<string, string | undefined>;

export interface Config {
  /** @default "development" */
  nodeEnv: "development" | "production" | "test";
  /** @default 4000 */
  port: number;
  /** @default "0.0.0.0" */
  host: string;
  /** PostgreSQL connection string; unset means the embedded PGlite database. */
  databaseUrl: string | undefined;
  /** Size of the pg pool when databaseUrl is set. @default 10 */
  databasePoolMax: number;
  /** Folder of the embedded database, or "memory://" for a throwaway one. @default "./data/pglite" */
  pgliteDir: string;
  /** Apply pending migrations when the server starts. Always on for PGlite. @default false with DATABASE_URL */
  migrateOnStart: boolean;
  /** pino level. @default "info" */
  logLevel: string;
  /** Introspection is on in development and off in production unless this is set. */
  introspection: boolean;
  /** Longest content of a USER message, in characters. @default 1000 */
  maxUserMessageLength: number;
  /** Hard limit on the content of any message, in characters. @default 100000 */
  maxMessageLength: number;
  /** Largest `first`/`last` a connection accepts. @default 100 */
  maxPageSize: number;
  /** Page size when a connection is asked for without `first` or `last`. @default 50 */
  defaultPageSize: number;
  /** Largest accepted HTTP request body, in bytes. @default 1048576 */
  maxBodyBytes: number;
  /** Most metrics one recordMetrics call may store. @default 1000 */
  maxMetricsBatch: number;
  /** Seconds the server waits for in-flight requests on SIGTERM before closing them. @default 10 */
  shutdownGraceSeconds: number;
}

class ConfigError extends Error {
  override name = "ConfigError";
}

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

export const MEMORY_DIR = "memory://";

/** Loads ./.env (if there is one) into process.env; variables already set in the environment win. */
export function loadEnvFile(file = path.resolve(".env")): void {
  if (fs.existsSync(file)) process.loadEnvFile(file);
}

/** Builds a Config from an environment (process.env by default). Throws ConfigError on bad values. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, "NODE_ENV", ["development", "production", "test"] as const, "development");
  const databaseUrl = env.DATABASE_URL || undefined;
  const pgliteRaw = env.PGLITE_DIR || "./data/pglite";
  const maxMessageLength = int(env, "MAX_MESSAGE_LENGTH", 100_000, 1);
  const config: Config = {
    nodeEnv,
    port: int(env, "PORT", 4000),
    host: env.HOST || "0.0.0.0",
    databaseUrl,
    databasePoolMax: int(env, "DATABASE_POOL_MAX", 10, 1),
    pgliteDir: pgliteRaw === MEMORY_DIR ? MEMORY_DIR : path.resolve(pgliteRaw),
    migrateOnStart: databaseUrl ? bool(env, "MIGRATE_ON_START", false) : true,
    logLevel: oneOf(env, "LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    introspection: bool(env, "GRAPHQL_INTROSPECTION", nodeEnv !== "production"),
    maxUserMessageLength: Math.min(int(env, "MAX_USER_MESSAGE_LENGTH", 1000, 1), maxMessageLength),
    maxMessageLength,
    maxPageSize: int(env, "MAX_PAGE_SIZE", 100, 1),
    defaultPageSize: int(env, "DEFAULT_PAGE_SIZE", 50, 1),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 1024 * 1024, 1024),
    maxMetricsBatch: int(env, "MAX_METRICS_BATCH", 1000, 1),
    shutdownGraceSeconds: int(env, "SHUTDOWN_GRACE_SECONDS", 10),
  };
  if (config.defaultPageSize > config.maxPageSize) {
    throw new ConfigError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE");
  }
  return Object.freeze(config);
}
