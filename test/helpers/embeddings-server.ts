/**
 * A real OpenAI-compatible embeddings server on 127.0.0.1 (an ephemeral port), for tests of Parley's own
 * embedding calls: POST /v1/embeddings answers demoEmbedding of each input, in the shape OpenAI answers, but
 * with `data` in reverse order (the API promises an index per vector, not an order, so a client must sort).
 * It records every request it got, and misbehaves on cue: the next N requests fail with a status (429 with
 * Retry-After, 5xx, 4xx with an OpenAI-style error body), answer slowly, have their connection cut, or answer
 * malformed data. Cues are taken by requests in the order they arrive.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { demoEmbedding } from "../../src/modules/knowledge/demo-embedding";

export interface EmbeddingsRequest {
  /** performance.now() when the request arrived. */
  at: number;
  authorization: string | undefined;
  model: unknown;
  encodingFormat: unknown;
  /** The texts of the batch. */
  inputs: string[];
  /** The status answered (0 when the connection was cut or the client left first). */
  status: number;
  /** usage.prompt_tokens of the answer (0 unless it succeeded). */
  promptTokens: number;
}

export interface FailOptions {
  /** Retry-After header, in seconds (or an HTTP date). */
  retryAfter?: number | string;
  /** error.message of the OpenAI-style body. */
  message?: string;
  /** A raw body instead of the OpenAI-style one (a proxy's HTML page). */
  body?: string;
  /** Answer only after this long (so that other requests are in flight when it fails). */
  delayMs?: number;
}

/**
 * not-json: a 200 with an HTML body; missing-embedding: one vector fewer than inputs; wrong-dimensions: one vector
 * shorter than the others; non-finite: a null inside a vector (JSON has no NaN); repeated-index: two vectors with
 * index 0; base64: vectors as strings; other-dimensions: a well-formed answer with vectors of twice the length.
 */
export type Malformed = "not-json" | "missing-embedding" | "wrong-dimensions" | "non-finite" | "repeated-index" | "base64" | "other-dimensions";

type Cue =
  | { kind: "fail"; status: number; options: FailOptions }
  | { kind: "slow"; delayMs: number }
  | { kind: "reset" }
  | { kind: "malformed"; malformed: Malformed };

export interface EmbeddingsServer {
  /** The base URL, /v1 included, as EMBEDDINGS_URL takes it. */
  url: string;
  /** Every request so far, in order of arrival. */
  readonly requests: EmbeddingsRequest[];
  /** Most requests it was answering at one time. */
  readonly maxInFlight: number;
  /** The next `n` requests are answered `status` with an OpenAI-style error body. */
  failNext(n: number, status: number, options?: FailOptions): void;
  /** The next `n` requests are answered (correctly) only after `delayMs`. */
  slowNext(n: number, delayMs: number): void;
  /** The next `n` requests have their connection cut without an answer. */
  resetNext(n: number): void;
  /** The next `n` requests get a 200 with malformed data. */
  malformedNext(n: number, malformed: Malformed): void;
  close(): Promise<void>;
}

const ERROR_TYPES: Record<number, [type: string, message: string]> = {
  400: ["invalid_request_error", "Invalid request"],
  401: ["invalid_request_error", "Incorrect API key provided"],
  404: ["invalid_request_error", "The model does not exist"],
  429: ["requests", "Rate limit reached for requests"],
  500: ["server_error", "The server had an error while processing your request"],
  503: ["server_error", "The engine is currently overloaded, please try again later"],
};

/** A rough token count, enough for usage.prompt_tokens to be something a test can add up. */
const tokensOf = (text: string): number => text.split(/\s+/).filter(Boolean).length;

export async function createEmbeddingsServer(options: { dimensions?: number } = {}): Promise<EmbeddingsServer> {
  const dimensions = options.dimensions ?? 32;
  const requests: EmbeddingsRequest[] = [];
  const cues: Cue[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;

  const send = (res: http.ServerResponse, record: EmbeddingsRequest | undefined, status: number, body: string, headers: Record<string, string> = {}) => {
    if (res.destroyed) return;
    if (record) record.status = status;
    res.writeHead(status, { "content-type": headers["content-type"] ?? "application/json", "content-length": Buffer.byteLength(body), ...headers }).end(body);
  };
  const openAiError = (status: number, message?: string) => {
    const [type, fallback] = ERROR_TYPES[status] ?? ["invalid_request_error", `HTTP ${status}`];
    return JSON.stringify({ error: { message: message ?? fallback, type, param: null, code: null } });
  };

  function answer(inputs: string[], model: string, malformed: Malformed | undefined) {
    const size = malformed === "other-dimensions" ? dimensions * 2 : dimensions;
    let data: { object: string; index: number; embedding: unknown }[] = inputs.map((text, index) => ({ object: "embedding", index, embedding: demoEmbedding(text, size) }));
    if (malformed === "missing-embedding") data = data.slice(1);
    if (malformed === "wrong-dimensions") data[data.length - 1].embedding = (data[data.length - 1].embedding as number[]).slice(1);
    if (malformed === "non-finite") (data[0].embedding as (number | null)[])[0] = null;
    if (malformed === "repeated-index") data[data.length - 1].index = 0;
    if (malformed === "base64") for (const item of data) item.embedding = Buffer.from(new Float32Array(item.embedding as number[]).buffer).toString("base64");
    const promptTokens = inputs.reduce((sum, text) => sum + tokensOf(text), 0);
    return { body: JSON.stringify({ object: "list", data: data.reverse(), model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } }), promptTokens };
  }

  /** Runs `fn` after `ms` (at once for 0); close() cancels what is still waiting. */
  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const server = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once("close", () => inFlight--);
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/embeddings") return send(res, undefined, 404, openAiError(404, `Unknown route ${req.method} ${req.url}`));
      let body: { model?: unknown; input?: unknown; encoding_format?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return send(res, undefined, 400, openAiError(400, "The body is not JSON"));
      }
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const record: EmbeddingsRequest = {
        at,
        authorization: req.headers.authorization,
        model: body.model,
        encodingFormat: body.encoding_format,
        inputs: Array.isArray(inputs) ? inputs : [],
        status: 0,
        promptTokens: 0,
      };
      requests.push(record);
      if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((each) => typeof each === "string") || typeof body.model !== "string") {
        return send(res, record, 400, openAiError(400, "input must be a non-empty list of strings, and model a string"));
      }
      const cue = cues.shift();
      if (cue?.kind === "reset") return void req.socket.destroy();
      if (cue?.kind === "fail") {
        const headers: Record<string, string> = cue.options.retryAfter !== undefined ? { "retry-after": String(cue.options.retryAfter) } : {};
        if (cue.options.body !== undefined) headers["content-type"] = "text/html";
        return later(cue.options.delayMs ?? 0, () => send(res, record, cue.status, cue.options.body ?? openAiError(cue.status, cue.options.message), headers));
      }
      if (cue?.kind === "malformed" && cue.malformed === "not-json") return send(res, record, 200, "<html><body>Bad gateway, but 200</body></html>", { "content-type": "text/html" });
      const reply = () => {
        const { body: json, promptTokens } = answer(inputs, body.model as string, cue?.kind === "malformed" ? cue.malformed : undefined);
        if (!res.destroyed) record.promptTokens = promptTokens;
        send(res, record, 200, json);
      };
      later(cue?.kind === "slow" ? cue.delayMs : 0, reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const enqueue = (n: number, cue: Cue) => {
    for (let i = 0; i < n; i++) cues.push(cue);
  };

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    failNext: (n, status, failOptions = {}) => enqueue(n, { kind: "fail", status, options: failOptions }),
    slowNext: (n, delayMs) => enqueue(n, { kind: "slow", delayMs }),
    resetNext: (n) => enqueue(n, { kind: "reset" }),
    malformedNext: (n, malformed) => enqueue(n, { kind: "malformed", malformed }),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
