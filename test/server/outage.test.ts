/**
 * A database outage under live traffic (PostgreSQL only: a cluster of this file's own, stopped and started
 * again). Three servers share the database: A ends a subscription at its first failed read
 * (LIVE_RETRY_SECONDS=0), B rides outages out (the default), and C is a process of its own, which must not
 * crash. On each, for two conversations: messageAdded and conversationEvents subscribers, and
 * conversationsChanged subscribers of the owner; writers add messages and stream replies through all three, retrying with the same requestId / chunk index whenever they are answered
 * SERVICE_UNAVAILABLE. PostgreSQL is stopped (fast or immediate, in turn) for a few seconds, several runs in a row.
 *
 * Every run checks, once the writers stop: every subscriber ends with exactly the stored seqs, in order (after
 * resuming with afterSeq = the lastSeq the server gave when it ended the stream); every streamed reply's text
 * as assembled from events equals the stored content; every inbox shows each conversation's final count;
 * every acknowledged write is stored exactly once; no stream completed without an error or went silent; and
 * while the database was away the API answered 503 SERVICE_UNAVAILABLE with Retry-After, and nothing else.
 */
import knexFactory, { type Knex } from "knex";
import type { Client } from "graphql-ws";
import { startServer, type RunningServer } from "../../src/server/app";
import { createDatabase, type Database } from "../../src/db/database";
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { authenticateApiKey, createApiKey, hashKey } from "../../src/modules/api-key/api-key.service";
import { ApiKeyCache } from "../../src/modules/api-key/api-key.cache";
import { testConfig } from "../helpers/db";
import { startServerProcess, type ServerProcess } from "../helpers/process";
import { CONVERSATION_EVENTS, wsClient } from "../helpers/live";
import { Transcript } from "../../src/modules/transcript/transcript.model";
import { TranscriptFormat, TranscriptStatus } from "../../src/modules/transcript/transcript.enums";
import { StaleStreamSweeper } from "../../src/modules/message/stream.sweeper";
import { createLogger } from "../../src/logger";
import { pauseCluster, resumeCluster, startCluster, stopCluster, type ClusterState } from "../setup/pg-cluster";
import { withDatabase } from "../setup/pg-urls";

/** Runs in a row (at least 5 in CI; PARLEY_OUTAGE_RUNS changes it while working on this). */
const RUNS = Number(process.env.PARLEY_OUTAGE_RUNS ?? 5);
/** Writes each writer makes before the outage and again after it. */
const WRITES_PER_PHASE = 8;
/** How long the database stays away. */
const OUTAGE_MS = 3_000;
/** Liveness bound: a subscriber that has not caught up this long after the writers stopped has stalled. */
const CATCH_UP_MS = 30_000;

let cluster: ClusterState;
let database: Database;
let verify: Knex;
let servers: { name: string; server?: RunningServer; process?: ServerProcess; url: string }[];
let alice: string;
let service: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  // Durable commits: the test cluster's default (synchronous_commit=off) loses the last acknowledged commits
  // when the server is stopped "immediate" (a crash), which is a setting's promise, not Parley's to keep.
  cluster = await startCluster(["-c synchronous_commit=on"], true);
  const admin = knexFactory({ client: "pg", connection: cluster.adminUrl });
  await admin.raw("create database parley_outage");
  await admin.destroy();
  const url = withDatabase(cluster.adminUrl, "parley_outage");
  // Short bounds, so that the runs stay short; the defaults are documented in README.
  const env = { DATABASE_ACQUIRE_TIMEOUT_MS: "1000", STREAM_TIMEOUT_SECONDS: "600" };
  database = createDatabase(testConfig(url, env));
  await database.migrate();
  servers = [];
  for (const [name, retry] of [["A", "0"], ["B", "15"]]) {
    // Errors are logged: an outage causes none (what it causes is expected, and a warning at most), so a line
    // printed here is a lead when a run fails.
    const server = await startServer({ config: testConfig(url, { ...env, LIVE_RETRY_SECONDS: retry, LOG_LEVEL: "error" }) });
    servers.push({ name, server, url: `http://127.0.0.1:${server.port}` });
  }
  // And one as an operator runs it, a process of its own: an outage must not crash it (an unhandled error would).
  const child = await startServerProcess({ DATABASE_URL: url, RATE_LIMIT_ENABLED: "false", ...env });
  servers.push({ name: "C", process: child, url: child.url.replace("localhost", "127.0.0.1") });
  verify = knexFactory({ client: "pg", connection: url });
  const owner = await User.query(database.knex).insertAndFetch({ displayName: "alice", role: Role.MEMBER });
  alice = (await createApiKey(database.knex, owner.id, "test")).secret;
  const worker = await User.query(database.knex).insertAndFetch({ displayName: "worker", role: Role.SERVICE });
  service = (await createApiKey(database.knex, worker.id, "test")).secret;
  await database.knex("service_grants").insert({ serviceId: worker.id, origin: "web" });
}, 120_000);

afterAll(async () => {
  for (const { server, process } of servers ?? []) await (server?.dispose() ?? process?.stop());
  await verify?.destroy();
  await database?.close();
  if (cluster) stopCluster(cluster);
});

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };
}

async function post(base: string, query: string, variables: Record<string, unknown>, token: string): Promise<Answer> {
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Answer["body"] };
}

/** What went wrong in a run: anything here fails it. */
let problems: string[];
/** 503 answers seen while the database was away. */
let unavailableAnswers: number;
/** Over all runs: subscriptions the server ended with a resume error, and subscriptions it refused while away. */
let resumes = 0;
let refusals = 0;

/** Sends an operation until it succeeds; SERVICE_UNAVAILABLE (503 + Retry-After) is the only acceptable failure. */
async function until(base: string, query: string, variables: Record<string, unknown>, token: string): Promise<any> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answer = await post(base, query, variables, token);
    if (!answer.body.errors) return answer.body.data;
    const codes = answer.body.errors.map((error) => error.extensions?.code);
    if (!codes.every((code) => code === "SERVICE_UNAVAILABLE")) throw new Error(`unexpected answer ${answer.status}: ${JSON.stringify(answer.body.errors)}`);
    if (answer.status !== 503 || answer.retryAfter === null) problems.push(`SERVICE_UNAVAILABLE answered ${answer.status}, retry-after ${answer.retryAfter}`);
    unavailableAnswers++;
    if (Date.now() > deadline) throw new Error("the database did not come back within a minute");
    await sleep(100);
  }
}

const ADD = `mutation($c: UUID!, $text: String!, $r: String!) { addMessage(input: { conversationId: $c, content: $text, requestId: $r }) { seq } }`;
const START = `mutation($c: UUID!, $r: String!) { startMessage(input: { conversationId: $c, requestId: $r }) { id } }`;
const APPEND = `mutation($m: UUID!, $i: Int!, $text: String!) { appendMessageChunk(messageId: $m, index: $i, text: $text) { index } }`;
const COMPLETE = `mutation($m: UUID!) { completeMessage(messageId: $m) { status } }`;

/** Writes into one conversation through the servers in turn until stopped; counts acknowledged writes. */
class Writer {
  acknowledged = 0;
  requestIds: string[] = [];
  stopped = false;
  readonly done: Promise<void>;

  constructor(readonly conversationId: string, run: number) {
    this.done = this.loop(run);
  }

  private async loop(run: number): Promise<void> {
    for (let n = 1; !this.stopped; n++) {
      const base = servers[n % servers.length].url;
      const requestId = `${run}-${this.conversationId}-${n}`;
      if (n % 4 === 0) {
        // A streamed reply: start, three chunks, complete; every step retried as it is.
        const { startMessage } = await until(base, START, { c: this.conversationId, r: requestId }, service);
        for (let i = 0; i < 3; i++) await until(base, APPEND, { m: startMessage.id, i, text: `chunk ${n}.${i} ` }, service);
        await until(base, COMPLETE, { m: startMessage.id }, service);
      } else {
        await until(base, ADD, { c: this.conversationId, text: `message ${n}`, r: requestId }, service);
      }
      this.requestIds.push(requestId);
      this.acknowledged++;
    }
  }
}

const MESSAGE_ADDED = `subscription($id: UUID!, $after: Int) { messageAdded(conversationId: $id, afterSeq: $after) { seq content author { id } } }`;
const EVENTS = CONVERSATION_EVENTS;
const INBOX = `subscription { conversationsChanged { conversationId deleted conversation { id messageCount } } }`;
const LIST = `query { conversations(first: 50) { edges { node { id messageCount } } } }`;

type Kind = "added" | "events" | "inbox";
interface Text {
  seq: number;
  text: string;
  chunks: number;
  status: string;
}

/**
 * A client as the README tells one to behave: when the server ends a subscription with SERVICE_UNAVAILABLE,
 * subscribe again with afterSeq = its lastSeq (the inbox: subscribe again and reload the list); a
 * subscription refused with SERVICE_UNAVAILABLE is asked for again. Anything else is a problem.
 */
class Subscriber {
  /** messageAdded: every seq received; conversationEvents: the seq of every MessageAddedEvent. */
  readonly seqs: number[] = [];
  readonly contents = new Map<number, string>();
  readonly texts = new Map<string, Text>();
  readonly counts = new Map<string, number>();
  resumes = 0;
  refusals = 0;
  private readonly client: Client;
  private resumeFrom: number | null | undefined;
  private closing = false;

  constructor(readonly name: string, readonly kind: Kind, base: string, readonly conversationId?: string) {
    this.client = wsClient(base, alice);
  }

  get last(): number {
    return this.seqs.at(-1) ?? 0;
  }

  start(afterSeq: number | null): void {
    this.resumeFrom = undefined;
    const query = this.kind === "added" ? MESSAGE_ADDED : this.kind === "events" ? EVENTS : INBOX;
    this.client.subscribe(
      { query, variables: this.kind === "inbox" ? {} : { id: this.conversationId, after: afterSeq, streaming: this.streamingSeqs() } },
      {
        next: ({ data, errors }) => (errors ? this.ended(errors as Answer["body"]["errors"]) : this.receive(data as any)),
        error: (error) => {
          // Refused before it started (the token could not be checked, so the operation, or the new socket with
          // 1013 Try Again Later): ask again. graphql-ws clients close an idle socket, so a resuming one reconnects.
          const errors = Array.isArray(error) ? (error as { extensions?: Record<string, any> }[]) : [];
          const unavailable = errors.length > 0 && errors.every((each) => each.extensions?.code === "SERVICE_UNAVAILABLE");
          if (unavailable || (error as { code?: number }).code === 1013) {
            this.refusals++;
            setTimeout(() => this.start(afterSeq), 200);
          }
          else problems.push(`${this.name}: ${JSON.stringify(error)} ${(error as { code?: number }).code}`);
        },
        complete: () => {
          if (this.closing) return;
          if (this.resumeFrom === undefined) return void problems.push(`${this.name}: completed without an error`);
          this.resumes++;
          const from = this.resumeFrom;
          setTimeout(() => this.resume(from), 200);
        },
      },
    );
  }

  /** The replies this client still shows as streaming: they may have ended while it was away. */
  private streamingSeqs(): number[] {
    return [...this.texts.values()].filter((text) => text.status === "STREAMING").map((text) => text.seq);
  }

  private resume(from: number | null): void {
    this.start(from);
    // The inbox has no position: reload the list once the new subscription is in place.
    if (this.kind === "inbox") setTimeout(() => void this.reload().catch((error) => problems.push(`${this.name}: reload ${error}`)), 300);
  }

  async reload(): Promise<void> {
    const data = await until(servers[0].url, LIST, {}, alice);
    for (const { node } of data.conversations.edges) this.counts.set(node.id, node.messageCount);
  }

  private ended(errors: Answer["body"]["errors"] = []): void {
    const error = errors[0];
    if (errors.length !== 1 || error.extensions?.code !== "SERVICE_UNAVAILABLE") return void problems.push(`${this.name}: ${JSON.stringify(errors)}`);
    if (this.kind === "inbox") return void (this.resumeFrom = null);
    const lastSeq = error.extensions.lastSeq;
    // The server's account of what was delivered must be the client's.
    if (lastSeq !== this.last && !(lastSeq === null && this.seqs.length === 0)) problems.push(`${this.name}: lastSeq ${lastSeq}, but received through ${this.last}`);
    this.resumeFrom = typeof lastSeq === "number" ? lastSeq : this.last;
  }

  private receive(data: any): void {
    if (this.kind === "inbox") {
      const change = data.conversationsChanged;
      if (!change.deleted) this.counts.set(change.conversationId, change.conversation.messageCount);
      return;
    }
    if (this.kind === "added") return this.added(data.messageAdded.seq, data.messageAdded.content);
    const event = data.conversationEvents;
    if (event.__typename === "MessageDeltaEvent") {
      const text = this.texts.get(event.messageId);
      if (!text || event.index !== text.chunks) return void problems.push(`${this.name}: delta ${event.index} of seq ${event.seq}, had ${text?.chunks} chunks`);
      text.text += event.text;
      text.chunks++;
      return;
    }
    const { message } = event;
    if (event.__typename === "MessageAddedEvent") this.added(message.seq, message.content);
    this.texts.set(message.id, { seq: message.seq, text: message.content, chunks: message.chunkCount, status: message.status });
  }

  private added(seq: number, content: string): void {
    if (seq !== this.last + 1) problems.push(`${this.name}: seq ${seq} after ${this.last}`);
    this.seqs.push(seq);
    this.contents.set(seq, content);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.client.dispose();
  }
}

/** One operation over a graphql-ws client: its result, or the errors it was refused with. */
function overSocket(client: Client, query: string): Promise<{ data?: unknown; errors?: unknown[] }> {
  return new Promise((resolve) => {
    let result: { data?: unknown; errors?: unknown[] } = {};
    client.subscribe(
      { query },
      {
        next: (value) => void (result = value as typeof result),
        error: (error) => resolve({ errors: Array.isArray(error) ? error : [String(error)] }),
        complete: () => resolve(result),
      },
    );
  });
}

/** Polls `done` every 100 ms for up to `ms`; false when it never held. */
async function eventually(done: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await done()) return true;
  return done();
}

describe("a database outage under live traffic", () => {
  it.each(Array.from({ length: RUNS }, (_, i) => [i + 1, i % 2 === 0 ? "fast" : "immediate"] as const))(
    "run %i (%s stop): no subscriber stalls, skips or repeats a seq; no acknowledged write is lost or doubled",
    async (run, mode) => {
      problems = [];
      unavailableAnswers = 0;
      const conversations: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { createConversation } = await until(servers[0].url, `mutation { createConversation(input: { title: "outage ${run}.${i}" }) { id } }`, {}, alice);
        conversations.push(createConversation.id);
      }
      const subscribers: Subscriber[] = [];
      for (const { name, url } of servers) {
        for (const id of conversations) {
          for (const kind of ["added", "events"] as const) subscribers.push(new Subscriber(`${name}/${kind}/${id.slice(0, 8)}`, kind, url, id));
        }
        subscribers.push(new Subscriber(`${name}/inbox`, "inbox", url));
      }
      for (const subscriber of subscribers) subscriber.start(subscriber.kind === "inbox" ? null : 0);
      // The inboxes start from the list, loaded after subscribing (as the schema tells clients to).
      await sleep(300);
      for (const subscriber of subscribers) if (subscriber.kind === "inbox") await subscriber.reload();

      // A websocket that is open when the database goes away, for an operation sent over it meanwhile.
      const socket = wsClient(servers[0].url, alice, { lazy: false });
      expect(await overSocket(socket, `query { viewer { id } }`)).toEqual({ data: { viewer: { id: expect.any(String) } } });
      const writers = conversations.map((id) => new Writer(id, run));
      try {
        expect(await eventually(() => writers.every((writer) => writer.acknowledged >= WRITES_PER_PHASE), 60_000)).toBe(true);

        await pauseCluster(cluster, mode);
        // While it is away: a clear answer, quickly (a bounded wait, not a hang), and not ready.
        const probe = await post(servers[1].url, `query { viewer { id } }`, {}, alice);
        expect({ status: probe.status, code: probe.body.errors?.[0]?.extensions?.code, retryAfter: probe.retryAfter }).toEqual({
          status: 503,
          code: "SERVICE_UNAVAILABLE",
          retryAfter: "5",
        });
        expect((await fetch(`${servers[0].url}/readyz`)).status).toBe(503);
        expect(await overSocket(socket, `query { viewer { id } }`)).toEqual({ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: "SERVICE_UNAVAILABLE" }) })] });
        // Subscribing while it is away: refused with SERVICE_UNAVAILABLE (or the socket with 1013); asked again, they
        // catch up from the start like the others.
        for (const { name, url } of servers) {
          const late = new Subscriber(`${name}/late/${conversations[0].slice(0, 8)}`, "added", url, conversations[0]);
          subscribers.push(late);
          late.start(0);
        }
        await sleep(OUTAGE_MS);
        const before = writers.map((writer) => writer.acknowledged);
        await resumeCluster(cluster);

        expect(await eventually(() => writers.every((writer, i) => writer.acknowledged >= before[i] + WRITES_PER_PHASE), 60_000)).toBe(true);
      } finally {
        for (const writer of writers) writer.stopped = true;
        await Promise.all(writers.map((writer) => writer.done));
        await socket.dispose();
      }
      for (const { url, process } of servers) {
        expect(process?.child.exitCode ?? null).toBeNull();
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
      }

      // What is stored is the truth every subscriber must end with.
      const stored = new Map<string, { seq: number; id: string; content: string; requestId: string }[]>();
      for (const id of conversations) {
        stored.set(id, await verify("messages").where({ conversation_id: id }).orderBy("seq").select("seq", "id", "content", "request_id as requestId"));
      }
      const lastSeq = (id: string) => stored.get(id)!.length;
      const caughtUp = (subscriber: Subscriber) => {
        if (subscriber.kind === "inbox") return conversations.every((id) => subscriber.counts.get(id) === lastSeq(id));
        if (subscriber.last !== lastSeq(subscriber.conversationId!)) return false;
        return subscriber.kind === "added" || [...subscriber.texts.values()].every((text) => text.status === "COMPLETE");
      };
      const allCaughtUp = await eventually(() => subscribers.every(caughtUp), CATCH_UP_MS);
      await Promise.all(subscribers.map((subscriber) => subscriber.close()));

      const stalled = subscribers.filter((subscriber) => !caughtUp(subscriber)).map((subscriber) => `${subscriber.name} at ${subscriber.last}`);
      expect({ stalled, problems }).toEqual({ stalled: [], problems: [] });
      expect(allCaughtUp).toBe(true);
      for (const subscriber of subscribers) {
        if (subscriber.kind === "inbox") continue;
        const messages = stored.get(subscriber.conversationId!)!;
        expect(subscriber.seqs).toEqual(messages.map((message) => message.seq));
        if (subscriber.kind === "events") {
          // Every streamed reply, assembled from its events, is the stored text.
          for (const message of messages) expect(subscriber.texts.get(message.id)?.text).toBe(message.content);
        } else {
          for (const message of messages) if (!message.content.startsWith("chunk")) expect(subscriber.contents.get(message.seq)).toBe(message.content);
        }
      }
      // Each acknowledged write exactly once, and nothing else.
      for (const [i, writer] of writers.entries()) {
        const requestIds = stored.get(conversations[i])!.map((message) => message.requestId);
        expect(requestIds.sort()).toEqual([...writer.requestIds].sort());
      }
      expect(unavailableAnswers).toBeGreaterThan(0);
      resumes += subscribers.reduce((sum, subscriber) => sum + subscriber.resumes, 0);
      refusals += subscribers.reduce((sum, subscriber) => sum + subscriber.refusals, 0);
    },
    180_000,
  );

  it("exercised both ways back: streams ended with a resume error, and subscriptions refused while the database was away", () => {
    expect(resumes).toBeGreaterThan(0);
    expect(refusals).toBeGreaterThan(0);
  });

  it("pauses a transcript export while the database is away and finishes it after, READY", async () => {
    const { createConversation } = await until(servers[0].url, `mutation { createConversation(input: { title: "export" }) { id } }`, {}, alice);
    const conversationId = createConversation.id as string;
    for (let i = 1; i <= 5; i++) await until(servers[0].url, ADD, { c: conversationId, text: `m${i}`, r: `export-${i}` }, service);
    const owner = await verify("users").where({ display_name: "alice" }).first("id");
    const transcript = await Transcript.query(database.knex).insertAndFetch({
      conversationId,
      format: TranscriptFormat.JSON,
      status: TranscriptStatus.PENDING,
      createdBy: owner.id,
      snapshotSeq: 5,
      attempts: 1,
      heartbeatAt: new Date(),
    });
    await pauseCluster(cluster, "fast");
    const run = servers[1].server!.transcripts.run(transcript); // its first read fails: the database is away
    await sleep(1_000);
    await resumeCluster(cluster);
    const ended = await run;
    expect({ status: ended?.status, messageCount: ended?.messageCount, error: ended?.error ?? null }).toEqual({
      status: TranscriptStatus.READY,
      messageCount: 5,
      error: null,
    });
  });

  it("keeps an API key's last use noted while the database is away and writes it once it is back", async () => {
    const worker = await verify("users").where({ display_name: "worker" }).first("id");
    const { key, secret } = await createApiKey(database.knex, worker.id, "last use");
    // Known to this process already (the key cache), so using it needs no database; its last use is still to be written.
    const cache = new ApiKeyCache(60_000);
    cache.set(hashKey(secret), { id: worker.id, role: Role.SERVICE, displayName: "worker", apiKeyId: key.id }, 0, Date.now());
    await pauseCluster(cluster, "immediate");
    expect(await authenticateApiKey(database.knex, secret, cache)).toMatchObject({ apiKeyId: key.id });
    await sleep(500); // its write has been tried, and failed
    await resumeCluster(cluster);
    expect(await eventually(async () => (await verify("api_keys").where({ id: key.id }).first("last_used_at")).last_used_at !== null, 10_000)).toBe(true);
  });

  it("does not fail a stream because the database, not its writer, was away", async () => {
    const { createConversation } = await until(servers[0].url, `mutation { createConversation(input: { title: "sweep" }) { id } }`, {}, alice);
    const { startMessage } = await until(servers[0].url, START, { c: createConversation.id, r: "sweep" }, service);
    await until(servers[0].url, APPEND, { m: startMessage.id, i: 0, text: "so far " }, service);
    const timeoutSeconds = 2;
    const sweeper = new StaleStreamSweeper(database.knex, { encryption: undefined, maxMessageLength: 100_000, streamTimeoutSeconds: timeoutSeconds }, createLogger({ logLevel: "silent" }));
    // Its last chunk came long ago, before the outage: stale by the clock alone.
    const lastChunkLongAgo = () => verify("messages").where({ id: startMessage.id }).update({ updated_at: verify.raw("now() - interval '1 hour'") });
    await lastChunkLongAgo();
    await pauseCluster(cluster, "immediate");
    expect(await sweeper.sweep()).toBe(0); // the database is away
    await resumeCluster(cluster);
    expect(await sweeper.sweep()).toBe(0); // back: the writer gets a whole timeout from now
    expect((await verify("messages").where({ id: startMessage.id }).first("status")).status).toBe("streaming");
    await until(servers[0].url, APPEND, { m: startMessage.id, i: 1, text: "and on" }, service);
    // A writer that then goes quiet for good is failed once the timeout has passed, its text kept.
    await lastChunkLongAgo();
    expect(await eventually(async () => (await sweeper.sweep()) === 1, (timeoutSeconds + 5) * 1000)).toBe(true);
    const message = await verify("messages").where({ id: startMessage.id }).first("status", "content");
    expect(message).toEqual({ status: "failed", content: "so far and on" });
  });
});
