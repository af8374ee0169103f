/**
 * Parley's own calls to an OpenAI-compatible embeddings endpoint (EMBEDDINGS_URL), for chunks a client sent
 * without a vector. Parley runs no model: this is an HTTP client of `POST <url>/embeddings`, and what it spends
 * goes on the usage ledger like any other model call (recordEmbeddingUsage).
 *
 * Texts go in batches of EMBEDDINGS_BATCH_SIZE, two batches at a time (a document of a few thousand chunks is
 * not sent one request after the other, nor all at once at a provider that rate-limits). Each attempt is bounded
 * by EMBEDDINGS_TIMEOUT_MS. What may pass — 408, 429, 5xx, a refused or cut connection, no answer in time — is
 * tried again, up to EMBEDDINGS_MAX_ATTEMPTS per batch, after an exponential backoff with jitter or the wait
 * the provider asks for (Retry-After), never longer than MAX_BACKOFF_MS. What will not pass by itself — another
 * 4xx (a bad key, an unknown model, a text over the model's context) or an answer that is not one finite vector
 * of one length per text — fails at once. When one batch fails, the others stop: a half-embedded document is
 * of no use, and its cost would be spent for nothing.
 *
 * Both failures are SERVICE_UNAVAILABLE, nothing having been stored: reason EMBEDDINGS_UNAVAILABLE (the same
 * request may simply be sent again later) or EMBEDDINGS_FAILED (the operator's settings or the provider need a
 * look; the message names the HTTP status and the provider's own words). Neither message nor log ever holds the
 * API key (a provider that echoes it back has it cut out) or the texts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { EmbeddingsConfig } from "../../config";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { ConflictError, ServiceUnavailableError } from "../../graphql/errors";
import { insertLedgerEntry } from "../usage/ledger";
import { AiRequest } from "../usage/ai-request.model";
import { AiRequestKind, AiRequestStatus } from "../usage/usage.enums";

export interface EmbeddingResult {
  /** One vector per text, in the order of the texts. */
  vectors: number[][];
  /** The tokens the provider says it read (usage.prompt_tokens summed over the batches; 0 when it does not say). */
  promptTokens: number;
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Wall time of the whole call, backoffs included, in milliseconds. */
  latencyMs: number;
}

export interface Embedder {
  /** The model asked for (EMBEDDINGS_MODEL): what a knowledge base records, and what the ledger is priced by. */
  readonly model: string;
  /** Vectors for `texts`, or SERVICE_UNAVAILABLE (EMBEDDINGS_UNAVAILABLE or EMBEDDINGS_FAILED). */
  embed(texts: readonly string[]): Promise<EmbeddingResult>;
}

/** Batches in flight at once, per embed call. */
const CONCURRENCY = 2;
/** Backoff before the first retry (doubled for each further one, then jittered between half and all of it). */
const BASE_BACKOFF_MS = 250;
/** Longest wait before a retry, a provider's Retry-After included: a request is waiting for the answer. */
export const MAX_BACKOFF_MS = 10_000;
/** Longest piece of a provider's error message quoted in ours. */
const DETAIL_MAX = 200;

/** Another batch of the same call failed: this one gives up quietly, its failure is not the one to report. */
class Stopped extends Error {}

type Outcome =
  | { kind: "ok"; vectors: number[][]; promptTokens: number }
  /** `reason` is for logs (a status, an errno, "timeout"); `message` for the client, once the attempts are spent. */
  | { kind: "retry"; status: number | null; reason: string; message: string; retryAfterMs: number | undefined }
  | { kind: "fail"; status: number | null; reason: string; error: ServiceUnavailableError };

/** Statuses that say "not now" rather than "not so": a timeout at the provider's edge, a rate limit, a server error. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The wait a provider asks for, in ms: OpenAI's retry-after-ms, else Retry-After in seconds or as an HTTP date. */
function askedWaitMs(headers: Headers): number | undefined {
  const rawMs = headers.get("retry-after-ms")?.trim();
  const ms = rawMs ? Number(rawMs) : NaN;
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get("retry-after")?.trim();
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The wait before retry `retry` (1 = the second attempt). */
function backoffMs(retry: number, askedMs: number | undefined): number {
  if (askedMs !== undefined) return Math.min(askedMs, MAX_BACKOFF_MS);
  const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (retry - 1));
  // Jitter keeps the batches (and servers) that failed together from all coming back in the same instant.
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * The vectors of an answer to `count` texts, or what is wrong with it. `data[i].index` says which text a vector
 * belongs to: OpenAI keeps the input order, but the API does not promise it, and some servers do not.
 */
function parseAnswer(answer: unknown, count: number): { vectors: number[][]; promptTokens: number } | string {
  const data = (answer as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return "it has no data list";
  if (data.length !== count) return `it holds ${data.length} embeddings for ${count} texts`;
  const vectors = new Array<number[] | undefined>(count);
  for (const item of data as { index?: unknown; embedding?: unknown }[]) {
    const index = item?.index;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= count) return `an embedding has no valid index (${JSON.stringify(index)?.slice(0, 20)})`;
    if (vectors[index]) return `index ${index} appears twice`;
    const embedding = item.embedding;
    if (!Array.isArray(embedding) || embedding.length === 0) {
      return `embedding ${index} is not a list of numbers${typeof embedding === "string" ? " (base64? Parley asks for encoding_format float)" : ""}`;
    }
    if (!embedding.every((x) => typeof x === "number" && Number.isFinite(x))) return `embedding ${index} holds a value that is not a finite number`;
    vectors[index] = embedding as number[];
  }
  const filled = vectors as number[][];
  const dimensions = filled[0].length;
  const other = filled.find((vector) => vector.length !== dimensions);
  if (other) return `its embeddings differ in length (${dimensions} and ${other.length})`;
  const tokens = (answer as { usage?: { prompt_tokens?: unknown } }).usage?.prompt_tokens;
  return { vectors: filled, promptTokens: typeof tokens === "number" && Number.isInteger(tokens) && tokens >= 0 ? tokens : 0 };
}

export function createEmbedder(config: EmbeddingsConfig, log: Logger): Embedder {
  const endpoint = `${config.url}/embeddings`;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (config.apiKey) headers.authorization = `Bearer ${config.apiKey}`;

  /** A provider's error text, fit to quote: its error.message when it is OpenAI-shaped, one line, short, keyless. */
  function detailOf(body: string): string {
    let text = body;
    try {
      const parsed = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
      const error = parsed?.error as { message?: unknown } | string | undefined;
      const message = typeof error === "string" ? error : (error?.message ?? parsed?.message ?? parsed?.detail);
      if (typeof message === "string") text = message;
    } catch {
      // Not JSON (a proxy's HTML page, plain text): quoted as it is.
    }
    // Some providers quote the key they were given ("Incorrect API key provided: sk-…").
    if (config.apiKey) text = text.split(config.apiKey).join("[redacted]");
    text = text.replace(/\s+/g, " ").trim();
    return text.length > DETAIL_MAX ? `${text.slice(0, DETAIL_MAX)}…` : text;
  }

  function failed(status: number | null, reason: string, message: string): Outcome {
    return { kind: "fail", status, reason, error: new ServiceUnavailableError(message, "EMBEDDINGS_FAILED", status === null ? {} : { upstreamStatus: status }) };
  }

  /** A request that got no (whole) answer: the call stopped, no answer in time, or the network. */
  function unanswered(error: unknown, stop: AbortSignal, timeout: AbortSignal): Outcome {
    if (stop.aborted) throw new Stopped();
    if (timeout.aborted) {
      return { kind: "retry", status: null, reason: "timeout", message: `no answer within ${config.timeoutMs} ms`, retryAfterMs: undefined };
    }
    const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
    const reason = String(cause?.code ?? cause?.message ?? (error as Error)?.message ?? "network error");
    return { kind: "retry", status: null, reason, message: `not reachable (${reason})`, retryAfterMs: undefined };
  }

  async function attempt(texts: readonly string[], stop: AbortSignal): Promise<Outcome> {
    const timeout = AbortSignal.timeout(config.timeoutMs);
    const signal = AbortSignal.any([stop, timeout]);
    const body = JSON.stringify({ model: config.model, input: texts, encoding_format: "float" });
    let response: Response;
    let text: string;
    try {
      // A redirect is answered as the error it is here (a wrong URL), not followed with the key to somewhere else.
      response = await fetch(endpoint, { method: "POST", headers, body, redirect: "manual", signal });
      // Still under the same signal: a provider that sends headers and then stalls is a timeout too.
      text = await response.text();
    } catch (error) {
      return unanswered(error, stop, timeout);
    }
    const status = response.status;
    if (status < 200 || status > 299) {
      const detail = detailOf(text);
      const said = `HTTP ${status}${detail ? `: ${detail}` : ""}`;
      if (retryable(status)) return { kind: "retry", status, reason: `HTTP ${status}`, message: said, retryAfterMs: askedWaitMs(response.headers) };
      return failed(status, `HTTP ${status}`, `The embeddings endpoint refused the request with ${said}`);
    }
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      return failed(status, "malformed: not JSON", "The embeddings endpoint answered malformed data: the answer is not JSON");
    }
    const parsed = parseAnswer(answer, texts.length);
    if (typeof parsed === "string") return failed(status, `malformed: ${parsed}`, `The embeddings endpoint answered malformed data: ${parsed}`);
    return { kind: "ok", ...parsed };
  }

  async function embedBatch(texts: readonly string[], stop: AbortSignal, sent: () => void): Promise<{ vectors: number[][]; promptTokens: number }> {
    let last: Extract<Outcome, { kind: "retry" }> | undefined;
    for (let attemptNo = 1; attemptNo <= config.maxAttempts; attemptNo++) {
      if (last) {
        try {
          await sleep(backoffMs(attemptNo - 1, last.retryAfterMs), undefined, { signal: stop });
        } catch {
          throw new Stopped();
        }
      }
      sent();
      const outcome = await attempt(texts, stop);
      if (outcome.kind === "ok") return outcome;
      const willRetry = outcome.kind === "retry" && attemptNo < config.maxAttempts;
      // Status, attempt and reason only: neither the key nor the texts (nor a provider's words, which may quote them).
      log.warn({ status: outcome.status, attempt: attemptNo, maxAttempts: config.maxAttempts, batchSize: texts.length, reason: outcome.reason, willRetry }, "embeddings request failed");
      if (outcome.kind === "fail") throw outcome.error;
      last = outcome;
    }
    throw new ServiceUnavailableError(
      `The embeddings endpoint is unavailable after ${config.maxAttempts} attempt${config.maxAttempts === 1 ? "" : "s"} (the last: ${last!.message}); try again later`,
      "EMBEDDINGS_UNAVAILABLE",
      last!.status === null ? {} : { upstreamStatus: last!.status },
    );
  }

  return {
    model: config.model,
    async embed(texts) {
      const started = performance.now();
      const batches: (readonly string[])[] = [];
      for (let i = 0; i < texts.length; i += config.batchSize) batches.push(texts.slice(i, i + config.batchSize));
      const results = new Array<{ vectors: number[][]; promptTokens: number }>(batches.length);
      const stop = new AbortController();
      let requests = 0;
      let next = 0;
      const worker = async () => {
        while (next < batches.length && !stop.signal.aborted) {
          const index = next++;
          try {
            results[index] = await embedBatch(batches[index], stop.signal, () => requests++);
          } catch (error) {
            stop.abort();
            throw error;
          }
        }
      };
      // Settled, not raced: nothing of this call is still running (or spending) once it has failed.
      const settled = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENCY, batches.length) }, worker));
      const failure = settled.find((each): each is PromiseRejectedResult => each.status === "rejected" && !(each.reason instanceof Stopped));
      if (failure) throw failure.reason;
      const vectors = results.flatMap((result) => result.vectors);
      // Each answer was checked on its own; a provider could still switch models between two of them.
      const dimensions = vectors[0]?.length;
      const other = vectors.find((vector) => vector.length !== dimensions);
      if (other) {
        throw new ServiceUnavailableError(
          `The embeddings endpoint answered malformed data: its embeddings differ in length between requests (${dimensions} and ${other.length})`,
          "EMBEDDINGS_FAILED",
        );
      }
      return {
        vectors,
        promptTokens: results.reduce((sum, result) => sum + result.promptTokens, 0),
        requests,
        latencyMs: Math.round(performance.now() - started),
      };
    },
  };
}

export interface EmbeddingUsage {
  /** The model the vectors came from (Embedder.model); priced from the catalogue (ai_models) when it knows it. */
  model: string;
  promptTokens: number;
  latencyMs: number;
  /**
   * The idempotency key on the ledger, per reporter (the viewer): the same key again records nothing. Give it a
   * prefix of its own (as messages use `message:<id>`), so that it cannot meet a key a worker reports itself.
   */
  requestId: string;
  /** Who is billed; the viewer when left out. */
  userId?: string;
  /** The Discord guild the knowledge is for, when it is a guild's. */
  guildId?: string;
}

/**
 * Puts one of Parley's own embedding calls on the usage ledger (ai_requests, kind embedding, with its budgets,
 * alerts and roll-ups), reported by the viewer, in `trx` so that it commits with what the vectors were for.
 * The cost is the catalogue price of the model in force now, or unknown (null). Resolves to the row, or to the
 * one already on the ledger under this requestId.
 */
export async function recordEmbeddingUsage(actor: Actor, trx: Knex, entry: EmbeddingUsage): Promise<AiRequest> {
  const viewer = viewerOf(actor);
  const row = await insertLedgerEntry(trx, {
    requestId: entry.requestId,
    userId: entry.userId ?? viewer.id,
    reportedBy: viewer.id,
    conversationId: null,
    messageId: null,
    guildId: entry.guildId ?? null,
    provider: null,
    model: entry.model,
    kind: AiRequestKind.EMBEDDING,
    // The columns are integers, and a latency measured with performance.now() is not.
    promptTokens: Math.max(0, Math.round(entry.promptTokens)),
    completionTokens: 0,
    cachedTokens: 0,
    latencyMs: Math.max(0, Math.round(entry.latencyMs)),
    timeToFirstTokenMs: null,
    status: AiRequestStatus.SUCCESS,
    errorCode: null,
    confidence: null,
    safety: null,
    relevance: null,
    costUsd: null,
    metadata: {},
    occurredAt: null,
  });
  if (row) return AiRequest.fromDatabaseJson(row);
  const earlier = await AiRequest.query(trx).findOne({ reportedBy: viewer.id, requestId: entry.requestId });
  if (!earlier) throw new ConflictError("requestId is being recorded by a concurrent request; retry");
  return earlier;
}
