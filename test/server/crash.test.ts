/**
 * A server killed with SIGKILL while an assistant reply streams (issue 13, point 5). Every acknowledged chunk
 * was committed before its answer, so a server started afterwards on the same database serves the text so far;
 * the writer goes on where it was (a retried chunk is answered as stored, not doubled), or the stale-stream
 * sweep fails the reply keeping that text; a subscriber that resumes with afterSeq on the new server ends
 * with the stored text, each chunk once. Real processes killed for real on a real PostgreSQL (jest.config.js
 * runs this file in the postgres project only).
 */
import type { Knex } from "knex";
import type { Client } from "graphql-ws";
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { failStaleStreams } from "../../src/modules/message/stream.service";
import { storedContent } from "../../src/modules/message/encryption";
import { createTestDatabase, type TestDatabase } from "../helpers/db";
import { startServerProcess, type ServerProcess } from "../helpers/process";
import type { GraphQLBody } from "../helpers/server";
import { wsClient } from "../helpers/live";

const START = `mutation($c: UUID!, $r: String, $meta: JSON) {
  startMessage(input: { conversationId: $c, requestId: $r, metadata: $meta, model: "m1" }) { id seq status }
}`;
const APPEND = `mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { messageId index text } }`;
const COMPLETE = `mutation($m: UUID!) { completeMessage(messageId: $m) { status content chunkCount } }`;
const READ = `query($m: UUID!) { message(id: $m) { status content chunkCount metadata } }`;
const ADD = `mutation($c: UUID!, $t: String!) { addMessage(input: { conversationId: $c, content: $t }) { seq } }`;
const MESSAGE_ADDED = `subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { id seq } }`;
/** A client's view of a message is the fragment `Shown`: the added and the updated event each replace it. */
const EVENTS = `subscription($c: UUID!, $after: Int, $streaming: [Int!]) {
  conversationEvents(conversationId: $c, afterSeq: $after, streamingSeqs: $streaming) {
    __typename
    ... on MessageAddedEvent { message { ...Shown } }
    ... on MessageUpdatedEvent { message { ...Shown } }
    ... on MessageDeltaEvent { messageId seq index text }
  }
}
fragment Shown on Message { id seq status content chunkCount }`;

/** The reply, chunk by chunk: distinct texts, so a doubled or lost chunk shows in the joined text. */
const CHUNKS = ["Once ", "upon ", "a tïme ", "🌍 ", "a server ", "died, ", "and then?"];
const joined = (count: number) => CHUNKS.slice(0, count).join("");

/** Liveness bound for waiting on a subscription (a hang fails with what was received, not a jest timeout). */
const WAIT_MS = 30_000;

let database: TestDatabase;
let member: string;
let worker: { id: string; token: string };
let servers: ServerProcess[] = [];
let clients: Client[] = [];

async function keyFor(role: Role, displayName: string) {
  const user = await User.query(database.db.knex).insertAndFetch({ displayName, role });
  return { id: user.id, token: (await createApiKey(database.db.knex, user.id, "test")).secret };
}

beforeAll(async () => {
  database = await createTestDatabase();
  member = (await keyFor(Role.MEMBER, "reader")).token;
  worker = await keyFor(Role.SERVICE, "writer");
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await Promise.all(servers.map((server) => server.stop()));
  [clients, servers] = [[], []];
});
afterAll(() => database?.dispose());

function serve(env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({ DATABASE_URL: database.url!, RATE_LIMIT_ENABLED: "false", ...env }).then((server) => {
    servers.push(server);
    return server;
  });
}

/** SIGKILL: no shutdown at all; resolves once the process is gone (and with it its sockets and sessions). */
async function crash({ child }: ServerProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) throw new Error("the server had already exited");
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await gone;
}

async function gql(server: ServerProcess, token: string, query: string, variables: Record<string, unknown>): Promise<GraphQLBody> {
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLBody;
}

async function ok(server: ServerProcess, token: string, query: string, variables: Record<string, unknown>): Promise<Record<string, any>> {
  const body = await gql(server, token, query, variables);
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data!;
}

/** A member's conversation that the writer (a service) is granted. */
async function conversationOn(server: ServerProcess): Promise<string> {
  const { createConversation } = await ok(server, member, `mutation { createConversation(input: { title: "crash" }) { id } }`, {});
  await database.db.knex("service_grants").insert({ serviceId: worker.id, conversationId: createConversation.id });
  return createConversation.id;
}

/** The writer's side. */
const writer = (server: ServerProcess) => ({
  start: async (conversationId: string, requestId: string, metadata?: object) =>
    (await ok(server, worker.token, START, { c: conversationId, r: requestId, meta: metadata })).startMessage as { id: string; seq: number; status: string },
  append: (messageId: string, index: number) => gql(server, worker.token, APPEND, { m: messageId, i: index, t: CHUNKS[index] }),
  complete: async (messageId: string) => (await ok(server, worker.token, COMPLETE, { m: messageId })).completeMessage,
});
const ackOf = (messageId: string, index: number) => ({ data: { appendMessageChunk: { messageId, index, text: CHUNKS[index] } } });

const read = async (server: ServerProcess, messageId: string) => (await ok(server, member, READ, { m: messageId })).message;

/** Appends chunks `from` up to before `to`, each acknowledged before the next is sent. */
async function appendAcknowledged(server: ServerProcess, messageId: string, from: number, to: number) {
  for (let index = from; index < to; index++) expect(await writer(server).append(messageId, index)).toEqual(ackOf(messageId, index));
}

type Payload = Record<string, any>;

interface Feed {
  /** Each event's payload (`data[field]`), in order of arrival. */
  payloads: Payload[];
  /** Resolves once `done(payloads)` holds; rejects if the stream ends first or after WAIT_MS. */
  until(done: (payloads: Payload[]) => boolean): Promise<void>;
  /** Resolves with why the stream ended ("complete", or the error the client reported); rejects after WAIT_MS. */
  closed(): Promise<unknown>;
}

/** A subscription over graphql-ws that does not reconnect by itself: the test resumes it as a client would. */
function listen(server: ServerProcess, field: "conversationEvents" | "messageAdded", variables: Record<string, unknown>): Feed {
  const client = wsClient(server.url, member);
  clients.push(client);
  const payloads: Payload[] = [];
  let ended: unknown;
  let wake: () => void = () => undefined;
  client.subscribe<Payload>(
    { query: field === "messageAdded" ? MESSAGE_ADDED : EVENTS, variables },
    {
      next: ({ data, errors }) => {
        payloads.push(errors ? { errors } : data![field]);
        wake();
      },
      error: (error) => {
        ended = error ?? "error";
        wake();
      },
      complete: () => {
        ended = "complete";
        wake();
      },
    },
  );
  async function until(done: (payloads: Payload[]) => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!done(payloads)) {
      const left = deadline - Date.now();
      if (ended !== undefined || left <= 0) {
        throw new Error(`${ended === undefined ? "still waiting" : "ended"}; received ${JSON.stringify(payloads).slice(0, 1500)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
  return {
    payloads,
    until,
    closed: async () => {
      await until(() => ended !== undefined);
      return ended;
    },
  };
}

interface Shown {
  seq: number;
  status: string;
  content: string;
  chunkCount: number;
}

/**
 * What a client shows of one message after `payloads` (conversationEvents), as README's "Rendering a streamed
 * reply" tells it to: a message event replaces it, a delta is appended when its index is the chunk count so
 * far. A delta that does not continue the text (a chunk missing or doubled) throws.
 */
function render(payloads: Payload[], messageId: string, shown?: Shown): Shown | undefined {
  for (const payload of payloads) {
    if (payload.message?.id === messageId) {
      const { seq, status, content, chunkCount } = payload.message;
      shown = { seq, status, content, chunkCount };
    } else if (payload.messageId === messageId) {
      if (!shown || shown.chunkCount !== payload.index) throw new Error(`delta ${payload.index} does not follow ${shown?.chunkCount} chunks`);
      shown = { ...shown, content: shown.content + payload.text, chunkCount: shown.chunkCount + 1 };
    }
  }
  return shown;
}

/** The highest seq the client received, which it resumes after. */
const lastSeq = (payloads: Payload[]) => Math.max(...payloads.map((payload) => payload.seq ?? payload.message.seq));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The message once it is no longer STREAMING, read through a server with a small STREAM_TIMEOUT_SECONDS (its
 * sweep runs every second): bounded polls, so a sweep that never fails it ends the test.
 */
async function swept(server: ServerProcess, messageId: string) {
  let shown = await read(server, messageId);
  for (let poll = 0; poll < 120 && shown.status === "STREAMING"; poll++) {
    await sleep(250);
    shown = await read(server, messageId);
  }
  return shown;
}

describe("a server killed mid-stream", () => {
  it("keeps the acknowledged chunks, and the writer goes on through another server: a retried chunk is not doubled", async () => {
    const a = await serve();
    const conversationId = await conversationOn(a);
    const message = await writer(a).start(conversationId, "gen-crash-1");
    await appendAcknowledged(a, message.id, 0, 3);
    await crash(a);

    const b = await serve();
    expect(await read(b, message.id)).toEqual({ status: "STREAMING", content: joined(3), chunkCount: 3, metadata: {} });
    // The worker, unsure of what made it, starts again with its request id and resends its last chunk.
    expect((await writer(b).start(conversationId, "gen-crash-1")).id).toBe(message.id);
    expect(await writer(b).append(message.id, 2)).toEqual(ackOf(message.id, 2));
    expect(await read(b, message.id)).toMatchObject({ content: joined(3), chunkCount: 3 });
    await appendAcknowledged(b, message.id, 3, CHUNKS.length);
    expect(await writer(b).complete(message.id)).toEqual({ status: "COMPLETE", content: joined(CHUNKS.length), chunkCount: CHUNKS.length });
    expect(await read(b, message.id)).toMatchObject({ status: "COMPLETE", content: joined(CHUNKS.length) });
  });

  it("stores a chunk that was in flight when the server died exactly once when the writer resends it", async () => {
    const a = await serve();
    const message = await writer(a).start(await conversationOn(a), "gen-crash-2");
    await appendAcknowledged(a, message.id, 0, 2);
    // Sent, then the process dies: the answer may never come, and the chunk may or may not be stored.
    const inFlight = writer(a).append(message.id, 2).catch(() => undefined);
    await crash(a);
    const answer = await inFlight;

    const b = await serve();
    const before = await read(b, message.id);
    expect([joined(2), joined(3)]).toContain(before.content);
    if (answer) {
      // An answer came before the process died: the chunk was stored.
      expect(answer).toEqual(ackOf(message.id, 2));
      expect(before.content).toBe(joined(3));
    }
    expect(await writer(b).append(message.id, 2)).toEqual(ackOf(message.id, 2));
    await appendAcknowledged(b, message.id, 3, CHUNKS.length);
    expect(await writer(b).complete(message.id)).toMatchObject({ content: joined(CHUNKS.length), chunkCount: CHUNKS.length });
  });

  it("fails the reply of a writer that never comes back after STREAM_TIMEOUT_SECONDS, keeping its text and metadata", async () => {
    const a = await serve();
    const message = await writer(a).start(await conversationOn(a), "gen-crash-3", { trace: "t-1" });
    await appendAcknowledged(a, message.id, 0, 4);
    await crash(a);

    const b = await serve({ STREAM_TIMEOUT_SECONDS: "2" });
    expect(await swept(b, message.id)).toEqual({
      status: "FAILED",
      content: joined(4),
      chunkCount: 4,
      metadata: { trace: "t-1", error: "The stream timed out: no chunk for 2 seconds" },
    });
    expect(await database.db.knex("message_chunks").where({ messageId: message.id }).count({ n: "*" })).toEqual([{ n: 0 }]);
    // A writer that does come back late: its retry is acknowledged, anything new is refused.
    expect(await writer(b).append(message.id, 3)).toEqual(ackOf(message.id, 3));
    expect((await writer(b).append(message.id, 4)).errors?.[0].extensions).toMatchObject({ code: "CONFLICT", reason: "MESSAGE_NOT_STREAMING" });
  });

  it("lets a subscriber resume on another server with afterSeq: the text so far, then each new chunk once, then the end", async () => {
    const a = await serve();
    const conversationId = await conversationOn(a);
    const events = listen(a, "conversationEvents", { c: conversationId, after: 0 });
    const added = listen(a, "messageAdded", { c: conversationId, after: 0 });
    await ok(a, member, ADD, { c: conversationId, t: "Tell me a story" });
    const message = await writer(a).start(conversationId, "gen-crash-4");
    await appendAcknowledged(a, message.id, 0, 3);
    await events.until((payloads) => render(payloads, message.id)?.chunkCount === 3);
    await added.until((payloads) => payloads.length === 2);
    await appendAcknowledged(a, message.id, 3, 4); // acknowledged; delivered before the crash or not
    await crash(a);
    for (const feed of [events, added]) expect(await feed.closed()).not.toBe("complete"); // the socket died: no orderly end
    const had = render(events.payloads, message.id)!;
    expect([joined(3), joined(4)]).toContain(had.content);
    expect(added.payloads.map((payload) => payload.seq)).toEqual([1, 2]);

    const b = await serve();
    await appendAcknowledged(b, message.id, 4, 5); // while the subscriber is away
    await ok(b, member, ADD, { c: conversationId, t: "Go on" });
    const resumed = listen(b, "conversationEvents", { c: conversationId, after: lastSeq(events.payloads) });
    const addedAgain = listen(b, "messageAdded", { c: conversationId, after: lastSeq(added.payloads) });
    await resumed.until((payloads) => payloads.length >= 2);
    expect(resumed.payloads.slice(0, 2)).toEqual([
      { __typename: "MessageUpdatedEvent", message: { id: message.id, seq: 2, status: "STREAMING", content: joined(5), chunkCount: 5 } },
      { __typename: "MessageAddedEvent", message: expect.objectContaining({ seq: 3, content: "Go on" }) },
    ]);
    for (let index = 5; index < CHUNKS.length; index++) {
      await appendAcknowledged(b, message.id, index, index + 1);
      await resumed.until((payloads) => render(payloads, message.id)!.chunkCount === index + 1);
    }
    const stored = await writer(b).complete(message.id);
    await resumed.until((payloads) => render(payloads, message.id)!.status === "COMPLETE");
    expect(resumed.payloads.filter((payload) => payload.messageId === message.id).map((payload) => payload.index)).toEqual([5, 6]);
    expect(render(resumed.payloads, message.id, had)).toEqual({ seq: 2, status: "COMPLETE", content: stored.content, chunkCount: CHUNKS.length });
    expect(stored.content).toBe(joined(CHUNKS.length));

    await ok(b, member, ADD, { c: conversationId, t: "The end" });
    await addedAgain.until((payloads) => payloads.length >= 2);
    expect(addedAgain.payloads.map((payload) => payload.seq)).toEqual([3, 4]);
  });
});

describe("a subscriber away while its streamed message ended", () => {
  it("gets the message as it ended when it names it in streamingSeqs on resuming, then only what follows", async () => {
    const a = await serve();
    const conversationId = await conversationOn(a);
    const events = listen(a, "conversationEvents", { c: conversationId, after: 0 });
    const message = await writer(a).start(conversationId, "gen-crash-8");
    await appendAcknowledged(a, message.id, 0, 2);
    await events.until((payloads) => render(payloads, message.id)?.chunkCount === 2);
    await crash(a);

    const b = await serve({ STREAM_TIMEOUT_SECONDS: "2" });
    expect(await swept(b, message.id)).toMatchObject({ status: "FAILED", content: joined(2) });
    const had = render(events.payloads, message.id)!;
    expect(had.status).toBe("STREAMING");
    // Without streamingSeqs nothing would tell this client that the reply it shows as typing has ended.
    const resumed = listen(b, "conversationEvents", { c: conversationId, after: had.seq, streaming: [had.seq] });
    await resumed.until((payloads) => payloads.length >= 1);
    await ok(b, member, ADD, { c: conversationId, t: "Are you there?" });
    await resumed.until((payloads) => payloads.length >= 2);
    expect(resumed.payloads.map((payload) => [payload.__typename, payload.message.seq, payload.message.status])).toEqual([
      ["MessageUpdatedEvent", had.seq, "FAILED"],
      ["MessageAddedEvent", had.seq + 1, "COMPLETE"],
    ]);
    expect(render(resumed.payloads, message.id, had)).toEqual({ seq: had.seq, status: "FAILED", content: joined(2), chunkCount: 2 });
  });
});

describe("a writer that comes back just as the stale-stream sweep runs", () => {
  /**
   * Runs a sweep (timeout 300 s) over `messageId`, made stale, while another transaction holds its row lock
   * (a writer's append or completion in progress), and commits that transaction only once the sweep waits on
   * the lock: the sweep picked the message from a snapshot older than what then commits.
   */
  async function sweepDuring(messageId: string, meanwhile: (trx: Knex.Transaction) => Promise<unknown>): Promise<number> {
    const knex = database.db.knex;
    await knex("messages").where({ id: messageId }).update({ updatedAt: knex.raw("now() - interval '1 hour'") });
    const trx = await knex.transaction();
    try {
      await trx("messages").where({ id: messageId }).forUpdate().first("id");
      const sweep = failStaleStreams(knex, database.config, 300);
      const waiting = () =>
        knex("pg_stat_activity").where({ datname: knex.raw("current_database()"), waitEventType: "Lock" }).count({ n: "*" }).first();
      for (let poll = 0; poll < 200 && Number((await waiting())?.n) === 0; poll++) await sleep(25);
      expect(Number((await waiting())?.n)).toBe(1);
      await meanwhile(trx);
      await trx.commit();
      return await sweep;
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  }

  it("does not fail a stream whose chunk committed after the sweep chose it", async () => {
    const a = await serve();
    const message = await writer(a).start(await conversationOn(a), "gen-crash-5");
    const failed = await sweepDuring(message.id, async (trx) => {
      // What appendMessageChunk writes for chunk 0 (the trigger moves updated_at to now).
      await trx("messages").where({ id: message.id }).increment("chunkCount", 1);
      const { conversationId } = await trx("messages").where({ id: message.id }).first("conversationId");
      await trx("message_chunks").insert({ messageId: message.id, idx: 0, ...storedContent(undefined, conversationId, message.seq, CHUNKS[0], 0) });
    });
    expect(failed).toBe(0);
    expect(await read(a, message.id)).toMatchObject({ status: "STREAMING", content: joined(1), chunkCount: 1 });
    await appendAcknowledged(a, message.id, 1, 2);
  });

  it("passes over a stream completed after the sweep chose it, and still fails the other stale ones", async () => {
    const a = await serve();
    const conversationId = await conversationOn(a);
    const completed = await writer(a).start(conversationId, "gen-crash-6");
    const abandoned = await writer(a).start(conversationId, "gen-crash-7");
    await database.db.knex("messages").where({ id: abandoned.id }).update({ updatedAt: database.db.knex.raw("now() - interval '30 minutes'") });
    const failed = await sweepDuring(completed.id, (trx) => trx("messages").where({ id: completed.id }).update({ status: "complete" }));
    expect(failed).toBe(1);
    expect((await read(a, completed.id)).status).toBe("COMPLETE");
    expect((await read(a, abandoned.id)).status).toBe("FAILED");
  });
});
