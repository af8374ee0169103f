/**
 * The subscribers of the live fan-out benchmark (bench/fanout.ts), in a process of their own so that their
 * CPU is measured apart from the server's and from the writers'. The coordinator forks this file with an
 * IPC channel and drives it with the commands below; it answers each with one reply, aggregated (a phase's
 * latencies come back as one sample array, never one IPC message per delivery).
 *
 * It has to take up to ~50,000 frames a second on a machine it shares with the server and PostgreSQL, so it
 * is lean on purpose: the `ws` package directly (no graphql-ws client, no per-subscription iterator), the
 * graphql-transport-ws protocol spoken by hand, one websocket and one subscription per subscriber, state in
 * typed arrays. Each `next` frame is JSON.parse'd: about 0.8 µs for a frame of this size (Buffer to string
 * included), some 4 % of a core at 50,000 frames/s, against the several µs ws itself spends per frame.
 *
 * Each message's content starts with the wall-clock time (wallClockMs) at which its write was sent, then ":".
 * Receipt minus that is the delivery latency, on the coordinator's clock plus this process's offset from it,
 * which the coordinator measures ("clock") and subtracts.
 *
 * Every subscriber checks its own stream at all times, phases or not: each `next` must carry seq = last + 1.
 * A seq at or below the last is a repeat (a duplicate, or one out of order), one above last + 1 a skip.
 */
import WebSocket from "ws";
import { wallClockMs } from "./measure";

/** What the coordinator sends; `id` comes back on the reply. */
export type Command =
  /** This process's wall clock, for the coordinator to measure the offset between the two. */
  | { type: "clock" }
  /**
   * Opens one websocket per subscriber, `batch` at a time, and subscribes each to its conversation after
   * `afterSeq[conversation]`; resolves once every one has received the message after it (afterSeq + 1, already
   * stored), which proves its subscription live.
   */
  | {
      type: "connect";
      /** ws://host:port/graphql */
      url: string;
      query: string;
      tokens: string[];
      conversations: string[];
      afterSeq: number[];
      /** Per subscriber: index into conversations and into tokens. */
      subscriberConversation: Int32Array;
      subscriberToken: Int32Array;
      batch: number;
      /** Give up when no frame has arrived for this long while some subscriber still waits. */
      stallMs: number;
    }
  /** Starts a phase: clears the counters and records latencies from now on. */
  | { type: "start" }
  /**
   * Waits until every subscriber has seq `expected[its conversation]` (or no frame came for `stallMs`), then
   * stops recording.
   */
  | { type: "drain"; expected: number[]; stallMs: number }
  /** The phase's figures (sent apart from "drain", so that the coordinator reads CPU before we build them). */
  | { type: "report" };

export interface ConnectReply {
  seconds: number;
}

export interface DrainReply {
  /** False when it gave up (stalled): `missing` then says how many deliveries never came. */
  drained: boolean;
  missing: number;
  /** Subscribers still short of their expected seq. */
  behind: number;
}

export interface PhaseReport {
  /** Messages received in seq order (repeats not counted). */
  deliveries: number;
  repeats: number;
  skips: number;
  /** Receipt − send of every delivery, or a uniform sample of them past MAX_SAMPLES (reservoir sampling). */
  samples: Float64Array;
  /** Exact, not sampled. */
  maxMs: number;
  /** Wall-clock time of the last delivery. */
  lastReceiptMs: number;
}

export interface Replies {
  clock: { wallMs: number };
  connect: ConnectReply;
  start: Record<string, never>;
  drain: DrainReply;
  report: PhaseReport;
}

/**
 * From this process to the coordinator: a reply (id 0 once at start: ready for commands), or a failure no
 * command asked about (a socket closed). The coordinator ends this process by closing the channel.
 */
export type ClientMessage = { id: number; result: unknown } | { id: number; error: string } | { type: "fatal"; message: string };

/** Latencies kept per phase; 200,000 × 8 bytes, and plenty for a p99. */
const MAX_SAMPLES = 200_000;
/** graphql-transport-ws: the id of each socket's one subscription. */
const OPERATION_ID = "1";

/** Per subscriber: its conversation index, its last seq, and the seq it is waited for to reach. */
let conversationOf: Int32Array = new Int32Array(0);
let lastSeq = new Int32Array(0);
let target = new Int32Array(0);
/** Subscribers below their target; `onReached` runs when it drops to 0. */
let pending = 0;
let onReached: (() => void) | undefined;
let lastFrameMs = 0;

// The current phase's figures.
let recording = false;
let deliveries = 0;
let repeats = 0;
let skips = 0;
let seen = 0; // latencies offered to the reservoir
let maxMs = 0;
let lastReceiptMs = 0;
let samples = new Float64Array(MAX_SAMPLES);

function send(message: ClientMessage): void {
  process.send!(message);
}

let failed = false;
/** Reported once; the coordinator then stops the run and this process. */
function fatal(message: string): void {
  if (failed) return;
  failed = true;
  send({ type: "fatal", message });
}

function record(latency: number): void {
  if (latency > maxMs) maxMs = latency;
  if (seen < MAX_SAMPLES) samples[seen] = latency;
  else {
    const slot = Math.floor(Math.random() * (seen + 1));
    if (slot < MAX_SAMPLES) samples[slot] = latency;
  }
  seen += 1;
}

function receive(subscriber: number, seq: number, content: string): void {
  const now = wallClockMs();
  lastFrameMs = now;
  const last = lastSeq[subscriber];
  if (seq <= last) {
    repeats += 1;
    return;
  }
  if (seq !== last + 1) skips += 1;
  lastSeq[subscriber] = seq;
  if (recording) {
    deliveries += 1;
    lastReceiptMs = now;
    record(now - Number(content.slice(0, content.indexOf(":"))));
  }
  if (last < target[subscriber] && seq >= target[subscriber]) {
    pending -= 1;
    if (pending === 0) onReached?.();
  }
}

function onFrame(subscriber: number, socket: WebSocket, data: Buffer, subscribe: string): void {
  const message = JSON.parse(data.toString()) as { type: string; payload?: { data?: { messageAdded?: { seq: number; content: string } }; errors?: unknown } };
  switch (message.type) {
    case "next": {
      const event = message.payload?.data?.messageAdded;
      if (!event) return fatal(`subscriber ${subscriber}: next without data: ${JSON.stringify(message.payload)}`);
      return receive(subscriber, event.seq, event.content);
    }
    case "connection_ack":
      lastFrameMs = wallClockMs();
      return socket.send(subscribe);
    case "ping":
      return socket.send('{"type":"pong"}');
    case "pong":
      return;
    case "error":
      return fatal(`subscriber ${subscriber}: subscription refused: ${JSON.stringify(message.payload)}`);
    case "complete":
      return fatal(`subscriber ${subscriber}: the server completed the subscription`);
    default:
      return fatal(`subscriber ${subscriber}: unexpected frame ${data.toString().slice(0, 200)}`);
  }
}

/**
 * Resolves once `pending` subscribers have reached their target; false when no frame arrived for `stallMs`
 * (the caller then reports who is missing what).
 */
function whenReached(stallMs: number): Promise<boolean> {
  if (pending === 0) return Promise.resolve(true);
  lastFrameMs = wallClockMs();
  return new Promise((resolve) => {
    const watchdog = setInterval(() => {
      if (wallClockMs() - lastFrameMs > stallMs) finish(false);
    }, 500);
    const finish = (reached: boolean) => {
      clearInterval(watchdog);
      onReached = undefined;
      resolve(reached);
    };
    onReached = () => finish(true);
  });
}

function openSocket(subscriber: number, command: Extract<Command, { type: "connect" }>): void {
  const conversation = command.subscriberConversation[subscriber];
  const init = JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${command.tokens[command.subscriberToken[subscriber]]}` } });
  const subscribe = JSON.stringify({
    id: OPERATION_ID,
    type: "subscribe",
    payload: { query: command.query, variables: { c: command.conversations[conversation], after: command.afterSeq[conversation] } },
  });
  // No compression (the server offers none either) and no UTF-8 check of what our own server sends: less CPU per frame.
  const socket = new WebSocket(command.url, "graphql-transport-ws", { perMessageDeflate: false, skipUTF8Validation: true });
  socket.on("open", () => socket.send(init));
  socket.on("message", (data: Buffer) => onFrame(subscriber, socket, data, subscribe));
  socket.on("unexpected-response", (_request, response) => fatal(`subscriber ${subscriber}: HTTP ${response.statusCode} on upgrade`));
  socket.on("error", (error) => fatal(`subscriber ${subscriber}: ${error.message}`));
  socket.on("close", (code, reason) => fatal(`subscriber ${subscriber}: socket closed (${code} ${reason.toString()})`));
}

async function connect(command: Extract<Command, { type: "connect" }>): Promise<ConnectReply> {
  const started = wallClockMs();
  const n = command.subscriberConversation.length;
  conversationOf = command.subscriberConversation;
  lastSeq = new Int32Array(n);
  target = new Int32Array(n);
  for (let s = 0; s < n; s += 1) lastSeq[s] = command.afterSeq[conversationOf[s]];
  // A batch is live once each of its subscribers has its first message: only then is the next one opened.
  for (let start = 0; start < n; start += command.batch) {
    const end = Math.min(n, start + command.batch);
    pending = end - start;
    for (let s = start; s < end; s += 1) {
      target[s] = lastSeq[s] + 1;
      openSocket(s, command);
    }
    if (!(await whenReached(command.stallMs))) throw new Error(`${pending} of subscribers ${start}..${end - 1} got no first message within ${command.stallMs} ms`);
    if (failed) throw new Error("a subscriber failed while connecting");
  }
  return { seconds: (wallClockMs() - started) / 1000 };
}

async function drain(command: Extract<Command, { type: "drain" }>): Promise<DrainReply> {
  pending = 0;
  for (let s = 0; s < lastSeq.length; s += 1) {
    target[s] = command.expected[conversationOf[s]];
    if (lastSeq[s] < target[s]) pending += 1;
  }
  const drained = await whenReached(command.stallMs);
  recording = false;
  let missing = 0;
  for (let s = 0; s < lastSeq.length; s += 1) missing += Math.max(0, target[s] - lastSeq[s]);
  return { drained, missing, behind: pending };
}

function start(): Record<string, never> {
  deliveries = repeats = skips = seen = maxMs = lastReceiptMs = 0;
  samples = new Float64Array(MAX_SAMPLES);
  recording = true;
  return {};
}

function report(): PhaseReport {
  return { deliveries, repeats, skips, samples: samples.slice(0, Math.min(seen, MAX_SAMPLES)), maxMs, lastReceiptMs };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.type) {
    case "clock":
      return { wallMs: wallClockMs() };
    case "connect":
      return connect(command);
    case "start":
      return start();
    case "drain":
      return drain(command);
    case "report":
      return report();
  }
}

if (!process.send) throw new Error("bench/fanout-client.ts is started by bench/fanout.ts (it needs an IPC channel)");
process.on("message", (message: Command & { id: number }) => {
  handle(message).then(
    (result) => send({ id: message.id, result }),
    (error: unknown) => send({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The coordinator closes the channel when it is done (or is gone): exit, not killed, so that --cpu-prof writes its file.
process.on("disconnect", () => process.exit(0));
send({ id: 0, result: {} });
