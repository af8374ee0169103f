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
  /**
   * DATABASE_LISTEN_URL: where the process's LISTEN connection goes, when DATABASE_URL names a pooler in
   * transaction mode (PgBouncer), which cannot carry LISTEN: a direct connection to PostgreSQL. @default databaseUrl
   */
  databaseListenUrl: string | undefined;
  /** Size of the pg pool when databaseUrl is set. @default 10 */
  databasePoolMax: number;
  /**
   * Run the hot statements as named prepared statements (db/prepared.ts). Off for a connection pooler that
   * cannot keep them per server connection, such as PgBouncer in transaction mode before 1.21. @default true
   */
  databasePreparedStatements: boolean;
  /**
   * Longest an API statement may run on PostgreSQL before the server cancels it (SERVICE_UNAVAILABLE, reason
   * STATEMENT_TIMEOUT); 0: no limit. Exports, migrations and other maintenance run without it. @default 5000
   */
  databaseStatementTimeoutMs: number;
  /**
   * Longest a request waits for a pool connection, and for a new connection to be made, before it is answered
   * SERVICE_UNAVAILABLE: the bound on every wait while the database is away or the pool is busy. @default 5000
   */
  databaseAcquireTimeoutMs: number;
  /** Folder of the embedded database, or "memory://" for a throwaway one. @default "./data/pglite" */
  pgliteDir: string;
  /** Apply pending migrations when the server starts. Always on for PGlite. @default false with DATABASE_URL */
  migrateOnStart: boolean;
  /** pino level. @default "info" */
  logLevel: string;
  /** Introspection is on in development and off in production unless this is set. */
  introspection: boolean;
  /** Execute HTTP operations with graphql-jit (compiled per document) instead of graphql-js. @default true */
  graphqlJit: boolean;
  /**
   * Answer the hot reads (conversation, conversations, their messages, authors and owners) with one planned
   * statement each (graphql/planner) instead of resolvers and DataLoaders. @default true
   */
  readPlanner: boolean;
  /** How long a process trusts an API key it has looked up (access changes clear it at once). 0: no cache. @default 30 */
  authCacheSeconds: number;
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
  /** A STREAMING message with no new chunk for this long is failed by the server. @default 300 */
  streamTimeoutSeconds: number;
  /**
   * RETENTION_INTERVAL_MINUTES: how often a server applies the retention policy (system config `retention`,
   * modules/ops/retention.ts); one server at a time does. 0: never (`npm run cli -- retention` still can). @default 60
   */
  retentionIntervalMinutes: number;
  /**
   * How long a subscription keeps retrying its reads while the database is away before it ends with
   * SERVICE_UNAVAILABLE and the seq to resume after; 0: it ends at the first failure. @default 15
   */
  liveRetrySeconds: number;

  /**
   * LIVE_MAX_BUFFERED_BYTES: how much a websocket subscriber may have sent to it and not yet taken before its
   * subscriptions stop sharing delivery with the others and wait for it (reading on from where it stood). @default 1048576
   */
  liveMaxBufferedBytes: number;

  /** JWT bearer tokens from the operator's identity provider; undefined when neither secret nor JWKS is set. */
  jwt: JwtConfig | undefined;

  /** Origins allowed to call the API from a browser (CORS). Empty: same-origin only; ["*"]: any. */
  corsOrigins: string[];

  /** Prometheus metrics on GET /metrics (server/metrics.ts). */
  metrics: MetricsConfig;

  /** Abuse limits (requests per window, query shape, websockets). */
  limits: LimitsConfig;

  /** Message encryption at rest; undefined stores content in plain text. */
  encryption: EncryptionConfig | undefined;

  /** Conversation exports (transcripts): where the files go and when they run in the background. */
  transcripts: TranscriptConfig;

  /** Artifacts of assistant messages: their files go to the transcripts' storage backend, under artifacts/. */
  artifacts: ArtifactConfig;

  /** The Discord adapter; undefined (off) unless DISCORD_TOKEN is set. */
  discord: DiscordConfig | undefined;

  /** Alerts POSTed to an operator's webhook (modules/alert/webhook.ts); undefined (off) unless ALERT_WEBHOOK_URL is set. */
  alertWebhook: AlertWebhookConfig | undefined;

  /** Documents, search, the answer cache (modules/knowledge, modules/search). */
  knowledge: KnowledgeConfig;

  /** Database backups (modules/ops/backup.*): where they go, the schedule, the PostgreSQL tools. */
  backup: BackupConfig;

  /** Parley Console, the web page served at /console (server/console.ts). */
  console: ConsoleConfig;
}

export interface ConsoleConfig {
  /** CONSOLE_ENABLED: serve /console. @default true, except with NODE_ENV=production */
  enabled: boolean;
  /** CONSOLE_DIR: the built console (index.html, manifest.json, assets/). @default dist/console of the package */
  dir: string | undefined;
}

export interface BackupConfig {
  /** BACKUP_STORAGE: where `backup` writes unless told (--to). @default TRANSCRIPT_STORAGE */
  storage: "disk" | "s3";
  /** BACKUP_DIR: the folder of disk backups. @default "./data/backups" */
  dir: string;
  /** The S3 settings (S3_*, shared with transcripts) when S3_BUCKET is set; backups go under backups/ in the bucket. */
  s3: S3Config | undefined;
  /** BACKUP_INTERVAL_HOURS: a server takes a scheduled backup this often; 0: no schedule. @default 0 */
  intervalHours: number;
  /** BACKUP_KEEP: scheduled backups kept; older ones are deleted (files) after each scheduled backup. @default 7 */
  keep: number;
  /** PG_BIN_DIR: the folder of pg_dump and pg_restore; unset: found on PATH. */
  pgBinDir: string | undefined;
}

export interface KnowledgeConfig {
  /** SEARCH_LANGUAGE: the PostgreSQL text search configuration for messages and for documents that name none. @default "english" */
  searchLanguage: string;
  /** CHUNK_SIZE: longest chunk Parley cuts from a document's text, in characters. @default 1000 */
  chunkSize: number;
  /** CHUNK_OVERLAP: characters a chunk repeats from the end of the one before it. @default 150 */
  chunkOverlap: number;
  /** MAX_DOCUMENT_BYTES: largest document text (UTF-8) upsertDocument accepts. @default 2097152 */
  maxDocumentBytes: number;
  /** MAX_DOCUMENT_CHUNKS: most chunks one document may have. @default 2000 */
  maxDocumentChunks: number;
  /** ANSWER_CACHE_TTL_SECONDS: how long a stored answer is served when storeAnswer names no ttl. @default 86400 */
  answerCacheTtlSeconds: number;
  /** ANSWER_CACHE_SIMILARITY: cosine similarity from which a cached question counts as the same question. @default 0.95 */
  answerCacheSimilarity: number;
  /** Parley's own calls for embeddings of chunks sent without one; undefined (clients send vectors) unless EMBEDDINGS_URL is set. */
  embeddings: EmbeddingsConfig | undefined;
}

export interface EmbeddingsConfig {
  /** EMBEDDINGS_URL: an OpenAI-compatible API's base URL, /v1 included as in OpenAI clients (`http://host:8080/v1`); Parley POSTs to `<url>/embeddings`. */
  url: string;
  /** EMBEDDINGS_API_KEY: sent as the bearer token; unset for a local server that needs none. */
  apiKey: string | undefined;
  /** EMBEDDINGS_MODEL (required with the URL): the model asked for, and the one a knowledge base records. */
  model: string;
  /** EMBEDDINGS_BATCH_SIZE: texts per request. @default 64 */
  batchSize: number;
  /** EMBEDDINGS_TIMEOUT_MS: an attempt without an answer for this long failed. @default 30000 */
  timeoutMs: number;
  /** EMBEDDINGS_MAX_ATTEMPTS: attempts per batch (429, 5xx and network errors are retried with backoff). @default 4 */
  maxAttempts: number;
}

export interface AlertWebhookConfig {
  /** ALERT_WEBHOOK_URL: where every new alert is POSTed as JSON (http or https). */
  url: string;
  /** ALERT_WEBHOOK_SECRET (required with the URL, at least 32 bytes): signs each body, x-parley-signature: sha256=<hex HMAC>. */
  secret: string;
  /** ALERT_WEBHOOK_TIMEOUT_MS: an attempt without an answer for this long failed. @default 10000 */
  timeoutMs: number;
  /** ALERT_WEBHOOK_RETRY_BASE_MS: wait after the first failed attempt, doubled after each further one, at most 5 minutes. @default 1000 */
  retryBaseMs: number;
  /** ALERT_WEBHOOK_MAX_ATTEMPTS: attempts before a delivery is given up as failed. @default 10 */
  maxAttempts: number;
}

export interface TranscriptConfig {
  /** TRANSCRIPT_STORAGE. @default "disk" */
  storage: "disk" | "s3";
  /** Folder of the disk backend (TRANSCRIPT_DIR). @default "./data/transcripts" */
  dir: string;
  /** Exports of at most this many messages finish inside the request; larger ones run in the background. @default 1000 */
  inlineMaxMessages: number;
  /** A PENDING export whose worker gave no sign of life for this long is taken over by another server. @default 120 */
  jobTimeoutSeconds: number;
  /** Set when storage is "s3". */
  s3: S3Config | undefined;
}

export interface ArtifactConfig {
  /** ARTIFACT_MAX_TEXT_BYTES: largest inline text (UTF-8) of an artifact version. @default 262144 */
  maxTextBytes: number;
  /** ARTIFACT_MAX_FILE_BYTES: largest file uploaded to an artifact version. @default 52428800 */
  maxFileBytes: number;
}

export interface S3Config {
  /** S3_ENDPOINT: an S3-compatible server's URL; unset means AWS S3 itself. */
  endpoint: string | undefined;
  /** S3_BUCKET (required with TRANSCRIPT_STORAGE=s3). */
  bucket: string;
  /** S3_REGION. @default "us-east-1" */
  region: string;
  /** S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY; unset: the SDK's default credential chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** S3_FORCE_PATH_STYLE: bucket in the path rather than the host name (most S3-compatible servers). @default false */
  forcePathStyle: boolean;
  /** S3_PART_SIZE_MB in bytes: files larger than one part go up as a multipart upload. @default 8 MiB (at least 5) */
  partSizeBytes: number;
}

export interface DiscordConfig {
  /** The bot token (DISCORD_TOKEN). */
  token: string;
  /** The application (client) id (DISCORD_APPLICATION_ID): slash commands are registered under it. */
  applicationId: string;
  /** API key of the Parley service identity the adapter acts as (DISCORD_API_KEY); it needs the DISCORD origin grant. */
  apiKey: string | undefined;
  /** Guild for `discord:register` (DISCORD_GUILD_ID): commands there appear at once; unset registers them globally. */
  guildId: string | undefined;
  /**
   * Permission a member needs for `/parley start` and `/parley stop` (DISCORD_BIND_PERMISSION): a discord.js
   * PermissionFlagsBits name, or undefined when anyone in the channel may bind it ("none"). @default "ManageChannels"
   */
  bindPermission: string | undefined;
  /** Shortest time between two edits of one streamed reply in Discord (DISCORD_EDIT_INTERVAL_MS). @default 1000 */
  editIntervalMs: number;
  /** Discord's REST base URL (DISCORD_API_URL), for a proxy or a test double; unset: discord.js's default. */
  apiUrl: string | undefined;
}

export interface JwtConfig {
  /** HS256 shared secret (JWT_SECRET), or */
  secret: string | undefined;
  /** a JWKS URL for asymmetric keys (JWT_JWKS_URL). */
  jwksUrl: string | undefined;
  /** Required `iss` (JWT_ISSUER); unchecked when unset. */
  issuer: string | undefined;
  /** Required `aud` (JWT_AUDIENCE); unchecked when unset. */
  audience: string | undefined;
  /** Accepted clock difference for exp/nbf/iat. @default 30 */
  clockToleranceSeconds: number;
  /** Create a member on the first valid token of an unknown subject. @default true */
  autoProvision: boolean;
}

export interface LimitsConfig {
  /** Rate limiting on/off. @default true */
  rateLimitEnabled: boolean;
  /** Length of a rate-limit window in seconds. @default 60 */
  rateLimitWindowSeconds: number;
  /** Requests per window per token, by role. @default member 600, service 6000, admin 6000 */
  rateLimitPerRole: Record<"admin" | "service" | "member", number>;
  /** Requests per window per client IP (all tokens and anonymous requests together). @default 3000 */
  rateLimitPerIp: number;
  /** Deepest selection nesting accepted. @default 12 */
  maxQueryDepth: number;
  /** Highest estimated query cost accepted (list fields count their page size). @default 5000 */
  maxQueryComplexity: number;
  /** Most lexical tokens in one GraphQL document. @default 5000 */
  maxQueryTokens: number;
  /** Most concurrent operations (subscriptions) on one websocket. @default 20 */
  maxSubscriptionsPerConnection: number;
  /** Most root fields of one mutation operation (aliases would otherwise multiply writes per request). @default 10 */
  maxMutationsPerOperation: number;
}

export interface EncryptionConfig {
  /** Key ring: key id → 32-byte key. */
  keys: ReadonlyMap<string, Buffer>;
  /** Id of the key new messages are encrypted with. */
  currentKeyId: string;
}

class ConfigError extends Error {
  override name = "ConfigError";
}

function int(env: Env, name: string, fallback: number, min = 0, max?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new ConfigError(`${name} must be an integer ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}, got "${raw}"`);
  }
  return value;
}

export interface MetricsConfig {
  /** METRICS_ENABLED (default false). */
  enabled: boolean;
  /** METRICS_PORT: /metrics on a listener of its own (on HOST) instead of the API's port; 0: a free port. */
  port: number | undefined;
  /** METRICS_TOKEN: scrapes must send `Authorization: Bearer <token>`. */
  token: string | undefined;
}

function metricsConfig(env: Env): MetricsConfig {
  const enabled = bool(env, "METRICS_ENABLED", false);
  const port = env.METRICS_PORT ? int(env, "METRICS_PORT", 0) : undefined;
  if (port !== undefined && port > 65535) throw new ConfigError(`METRICS_PORT must be a port number, got "${env.METRICS_PORT}"`);
  const token = env.METRICS_TOKEN || undefined;
  if (token !== undefined && token.length < 16) throw new ConfigError("METRICS_TOKEN must be at least 16 characters");
  if (!enabled && (port !== undefined || token !== undefined)) throw new ConfigError("METRICS_PORT and METRICS_TOKEN need METRICS_ENABLED=true");
  return { enabled, port, token };
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

function jwtConfig(env: Env): JwtConfig | undefined {
  const secret = env.JWT_SECRET || undefined;
  const jwksUrl = env.JWT_JWKS_URL || undefined;
  if (!secret && !jwksUrl) return undefined;
  if (secret && jwksUrl) throw new ConfigError("Set JWT_SECRET or JWT_JWKS_URL, not both");
  if (secret && Buffer.byteLength(secret) < 32) throw new ConfigError("JWT_SECRET must be at least 32 bytes");
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) throw new ConfigError("JWT_JWKS_URL must be an http(s) URL");
  return {
    secret,
    jwksUrl,
    issuer: env.JWT_ISSUER || undefined,
    audience: env.JWT_AUDIENCE || undefined,
    clockToleranceSeconds: int(env, "JWT_CLOCK_TOLERANCE_SECONDS", 30),
    autoProvision: bool(env, "JWT_AUTO_PROVISION", true),
  };
}

/**
 * MESSAGE_ENCRYPTION_KEYS="k2025:<base64 32 bytes>,k2026:<base64 32 bytes>"; the current key is
 * MESSAGE_ENCRYPTION_CURRENT_KEY, or the last one listed.
 */
function encryptionConfig(env: Env): EncryptionConfig | undefined {
  const raw = env.MESSAGE_ENCRYPTION_KEYS;
  if (!raw) return undefined;
  const keys = new Map<string, Buffer>();
  for (const entry of raw.split(",").map((e) => e.trim()).filter(Boolean)) {
    const colon = entry.indexOf(":");
    const id = entry.slice(0, colon);
    const key = Buffer.from(entry.slice(colon + 1), "base64");
    if (colon < 1 || !/^[\w.-]{1,64}$/.test(id)) throw new ConfigError(`MESSAGE_ENCRYPTION_KEYS: bad entry "${id || entry.slice(0, 8)}…" (want id:base64key)`);
    if (key.length !== 32) throw new ConfigError(`MESSAGE_ENCRYPTION_KEYS: key "${id}" must be 32 bytes of base64 (openssl rand -base64 32)`);
    if (keys.has(id)) throw new ConfigError(`MESSAGE_ENCRYPTION_KEYS: key id "${id}" appears twice`);
    keys.set(id, key);
  }
  if (keys.size === 0) throw new ConfigError("MESSAGE_ENCRYPTION_KEYS is set but lists no key");
  const currentKeyId = env.MESSAGE_ENCRYPTION_CURRENT_KEY || [...keys.keys()].pop()!;
  if (!keys.has(currentKeyId)) throw new ConfigError(`MESSAGE_ENCRYPTION_CURRENT_KEY "${currentKeyId}" is not in MESSAGE_ENCRYPTION_KEYS`);
  return { keys, currentKeyId };
}

function s3Config(env: Env): S3Config {
  const bucket = env.S3_BUCKET;
  if (!bucket) throw new ConfigError("S3_BUCKET is required with TRANSCRIPT_STORAGE=s3");
  const endpoint = env.S3_ENDPOINT || undefined;
  if (endpoint && !/^https?:\/\/[^/]/.test(endpoint)) throw new ConfigError(`S3_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  const accessKeyId = env.S3_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY || undefined;
  if (!accessKeyId !== !secretAccessKey) throw new ConfigError("Set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither");
  return {
    endpoint,
    bucket,
    region: env.S3_REGION || "us-east-1",
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    forcePathStyle: bool(env, "S3_FORCE_PATH_STYLE", false),
    // lib-storage (and S3) refuse parts under 5 MiB.
    partSizeBytes: int(env, "S3_PART_SIZE_MB", 8, 5) * 1024 * 1024,
  };
}

function transcriptConfig(env: Env): TranscriptConfig {
  const storage = oneOf(env, "TRANSCRIPT_STORAGE", ["disk", "s3"] as const, "disk");
  return {
    storage,
    dir: path.resolve(env.TRANSCRIPT_DIR || "./data/transcripts"),
    inlineMaxMessages: int(env, "TRANSCRIPT_INLINE_MAX_MESSAGES", 1000),
    jobTimeoutSeconds: int(env, "TRANSCRIPT_JOB_TIMEOUT_SECONDS", 120, 10),
    s3: storage === "s3" ? s3Config(env) : undefined,
  };
}

const SNOWFLAKE = /^\d{1,25}$/;

/** DISCORD_TOKEN turns the adapter on; the other DISCORD_* settings are checked only then. */
function discordConfig(env: Env): DiscordConfig | undefined {
  const token = env.DISCORD_TOKEN || undefined;
  if (!token) return undefined;
  const applicationId = env.DISCORD_APPLICATION_ID ?? "";
  if (!SNOWFLAKE.test(applicationId)) throw new ConfigError("DISCORD_TOKEN is set: DISCORD_APPLICATION_ID must be the application id (digits)");
  const guildId = env.DISCORD_GUILD_ID || undefined;
  if (guildId && !SNOWFLAKE.test(guildId)) throw new ConfigError(`DISCORD_GUILD_ID must be a guild id (digits), got "${guildId}"`);
  const permission = env.DISCORD_BIND_PERMISSION || "ManageChannels";
  if (!/^[A-Za-z]{2,40}$/.test(permission)) throw new ConfigError(`DISCORD_BIND_PERMISSION must be a permission name such as ManageChannels, or none; got "${permission}"`);
  const apiUrl = env.DISCORD_API_URL || undefined;
  if (apiUrl && !/^https?:\/\//.test(apiUrl)) throw new ConfigError("DISCORD_API_URL must be an http(s) URL");
  return {
    token,
    applicationId,
    apiKey: env.DISCORD_API_KEY || undefined,
    guildId,
    bindPermission: permission.toLowerCase() === "none" ? undefined : permission,
    editIntervalMs: int(env, "DISCORD_EDIT_INTERVAL_MS", 1000, 0),
    apiUrl,
  };
}

/** ALERT_WEBHOOK_URL turns delivery on; the other ALERT_WEBHOOK_* settings are checked only then. */
function alertWebhookConfig(env: Env): AlertWebhookConfig | undefined {
  const url = env.ALERT_WEBHOOK_URL || undefined;
  if (!url) return undefined;
  if (!/^https?:\/\/[^/]/.test(url)) throw new ConfigError(`ALERT_WEBHOOK_URL must be an http(s) URL, got "${url}"`);
  const secret = env.ALERT_WEBHOOK_SECRET ?? "";
  if (Buffer.byteLength(secret) < 32) throw new ConfigError("ALERT_WEBHOOK_URL is set: ALERT_WEBHOOK_SECRET must be at least 32 bytes (openssl rand -hex 32)");
  return {
    url,
    secret,
    timeoutMs: int(env, "ALERT_WEBHOOK_TIMEOUT_MS", 10_000, 100),
    retryBaseMs: int(env, "ALERT_WEBHOOK_RETRY_BASE_MS", 1000, 1),
    maxAttempts: int(env, "ALERT_WEBHOOK_MAX_ATTEMPTS", 10, 1),
  };
}

/** EMBEDDINGS_URL turns Parley's own embedding calls on; the other EMBEDDINGS_* settings are checked only then. */
function embeddingsConfig(env: Env): EmbeddingsConfig | undefined {
  const url = env.EMBEDDINGS_URL || undefined;
  if (!url) return undefined;
  if (!/^https?:\/\/[^/]/.test(url)) throw new ConfigError(`EMBEDDINGS_URL must be an http(s) URL, got "${url}"`);
  const model = env.EMBEDDINGS_MODEL ?? "";
  if (!model.trim()) throw new ConfigError("EMBEDDINGS_URL is set: EMBEDDINGS_MODEL must name the embedding model");
  return {
    url: url.replace(/\/+$/, ""),
    apiKey: env.EMBEDDINGS_API_KEY || undefined,
    model: model.trim(),
    batchSize: int(env, "EMBEDDINGS_BATCH_SIZE", 64, 1),
    timeoutMs: int(env, "EMBEDDINGS_TIMEOUT_MS", 30_000, 100),
    maxAttempts: int(env, "EMBEDDINGS_MAX_ATTEMPTS", 4, 1),
  };
}

function backupConfig(env: Env, transcripts: TranscriptConfig): BackupConfig {
  const storage = oneOf(env, "BACKUP_STORAGE", ["disk", "s3"] as const, transcripts.storage);
  const s3 = transcripts.s3 ?? (env.S3_BUCKET || storage === "s3" ? s3Config(env) : undefined);
  return {
    storage,
    dir: path.resolve(env.BACKUP_DIR || "./data/backups"),
    s3,
    intervalHours: int(env, "BACKUP_INTERVAL_HOURS", 0),
    keep: int(env, "BACKUP_KEEP", 7, 1),
    pgBinDir: env.PG_BIN_DIR ? path.resolve(env.PG_BIN_DIR) : undefined,
  };
}

function knowledgeConfig(env: Env): KnowledgeConfig {
  const searchLanguage = env.SEARCH_LANGUAGE || "english";
  // It is spliced into index definitions as a regconfig literal: a plain identifier only.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(searchLanguage)) throw new ConfigError(`SEARCH_LANGUAGE must be a text search configuration name such as english or simple, got "${searchLanguage}"`);
  const chunkSize = int(env, "CHUNK_SIZE", 1000, 100);
  const chunkOverlap = int(env, "CHUNK_OVERLAP", 150, 0);
  if (chunkOverlap * 2 > chunkSize) throw new ConfigError("CHUNK_OVERLAP must be at most half of CHUNK_SIZE");
  const similarity = Number(env.ANSWER_CACHE_SIMILARITY ?? "0.95");
  if (!(similarity > 0 && similarity <= 1)) throw new ConfigError(`ANSWER_CACHE_SIMILARITY must be a number in (0, 1], got "${env.ANSWER_CACHE_SIMILARITY}"`);
  return {
    searchLanguage,
    chunkSize,
    chunkOverlap,
    maxDocumentBytes: int(env, "MAX_DOCUMENT_BYTES", 2 * 1024 * 1024, 1),
    maxDocumentChunks: int(env, "MAX_DOCUMENT_CHUNKS", 2000, 1),
    answerCacheTtlSeconds: int(env, "ANSWER_CACHE_TTL_SECONDS", 86_400, 1),
    answerCacheSimilarity: similarity,
    embeddings: embeddingsConfig(env),
  };
}

/** Builds a Config from an environment (process.env by default). Throws ConfigError on bad values. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, "NODE_ENV", ["development", "production", "test"] as const, "development");
  const databaseUrl = env.DATABASE_URL || undefined;
  if (env.DATABASE_LISTEN_URL && !databaseUrl) throw new ConfigError("DATABASE_LISTEN_URL needs DATABASE_URL (the embedded database has no pooler to go around)");
  const pgliteRaw = env.PGLITE_DIR || "./data/pglite";
  const maxMessageLength = int(env, "MAX_MESSAGE_LENGTH", 100_000, 1);
  const transcripts = transcriptConfig(env);
  const config: Config = {
    nodeEnv,
    port: int(env, "PORT", 4000),
    host: env.HOST || "0.0.0.0",
    databaseUrl,
    databaseListenUrl: databaseUrl && (env.DATABASE_LISTEN_URL || databaseUrl),
    databasePoolMax: int(env, "DATABASE_POOL_MAX", 10, 1),
    databasePreparedStatements: bool(env, "DATABASE_PREPARED_STATEMENTS", true),
    databaseStatementTimeoutMs: int(env, "DATABASE_STATEMENT_TIMEOUT_MS", 5000),
    databaseAcquireTimeoutMs: int(env, "DATABASE_ACQUIRE_TIMEOUT_MS", 5000, 100),
    pgliteDir: pgliteRaw === MEMORY_DIR ? MEMORY_DIR : path.resolve(pgliteRaw),
    migrateOnStart: databaseUrl ? bool(env, "MIGRATE_ON_START", false) : true,
    logLevel: oneOf(env, "LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    introspection: bool(env, "GRAPHQL_INTROSPECTION", nodeEnv !== "production"),
    graphqlJit: bool(env, "GRAPHQL_JIT", true),
    readPlanner: bool(env, "READ_PLANNER", true),
    authCacheSeconds: int(env, "AUTH_CACHE_SECONDS", 30, 0),
    maxUserMessageLength: Math.min(int(env, "MAX_USER_MESSAGE_LENGTH", 1000, 1), maxMessageLength),
    maxMessageLength,
    maxPageSize: int(env, "MAX_PAGE_SIZE", 100, 1),
    defaultPageSize: int(env, "DEFAULT_PAGE_SIZE", 50, 1),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 1024 * 1024, 1024),
    maxMetricsBatch: int(env, "MAX_METRICS_BATCH", 1000, 1),
    shutdownGraceSeconds: int(env, "SHUTDOWN_GRACE_SECONDS", 10),
    streamTimeoutSeconds: int(env, "STREAM_TIMEOUT_SECONDS", 300, 1),
    // At most what setInterval can wait (2^31 - 1 ms, about 24 days); longer would fire at once, over and over.
    retentionIntervalMinutes: int(env, "RETENTION_INTERVAL_MINUTES", 60, 0, 35_791),
    liveRetrySeconds: int(env, "LIVE_RETRY_SECONDS", 15),
    liveMaxBufferedBytes: int(env, "LIVE_MAX_BUFFERED_BYTES", 1024 * 1024, 1024),
    jwt: jwtConfig(env),
    corsOrigins: (env.CORS_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    metrics: metricsConfig(env),
    limits: {
      rateLimitEnabled: bool(env, "RATE_LIMIT_ENABLED", true),
      rateLimitWindowSeconds: int(env, "RATE_LIMIT_WINDOW_SECONDS", 60, 1),
      rateLimitPerRole: {
        member: int(env, "RATE_LIMIT_MEMBER", 600, 1),
        service: int(env, "RATE_LIMIT_SERVICE", 6000, 1),
        admin: int(env, "RATE_LIMIT_ADMIN", 6000, 1),
      },
      rateLimitPerIp: int(env, "RATE_LIMIT_PER_IP", 3000, 1),
      maxQueryDepth: int(env, "MAX_QUERY_DEPTH", 12, 2),
      maxQueryComplexity: int(env, "MAX_QUERY_COMPLEXITY", 5000, 10),
      maxQueryTokens: int(env, "MAX_QUERY_TOKENS", 5000, 100),
      maxSubscriptionsPerConnection: int(env, "MAX_SUBSCRIPTIONS_PER_CONNECTION", 20, 1),
      maxMutationsPerOperation: int(env, "MAX_MUTATIONS_PER_OPERATION", 10, 1),
    },
    encryption: encryptionConfig(env),
    transcripts,
    artifacts: {
      maxTextBytes: int(env, "ARTIFACT_MAX_TEXT_BYTES", 256 * 1024, 1),
      maxFileBytes: int(env, "ARTIFACT_MAX_FILE_BYTES", 50 * 1024 * 1024, 1),
    },
    discord: discordConfig(env),
    alertWebhook: alertWebhookConfig(env),
    knowledge: knowledgeConfig(env),
    backup: backupConfig(env, transcripts),
    console: {
      enabled: bool(env, "CONSOLE_ENABLED", nodeEnv !== "production"),
      dir: env.CONSOLE_DIR ? path.resolve(env.CONSOLE_DIR) : undefined,
    },
  };
  if (config.defaultPageSize > config.maxPageSize) {
    throw new ConfigError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE");
  }
  return Object.freeze(config);
}
