/**
 * The read planner (src/graphql/planner) is an optimisation only: for ANY operation the HTTP answer (status,
 * data and errors) must be what the resolvers and DataLoaders give with it turned off. Two servers on one
 * database, READ_PLANNER on and off, answer a generated corpus of operations (test/helpers/read-operations.ts)
 * for four viewers: the member who owns the conversations, another member (NOT_FOUND and empty lists), an
 * admin, and a service with grants. Equal answers can still share a bug, so a few cases below pin the exact
 * answer to what was written.
 *
 * Message text is stored encrypted (MESSAGE_ENCRYPTION_KEYS); a second pair of servers, whose key ring lacks
 * that key, must fail on the text in the same way, at the same paths.
 *
 * One allowance, for answers whose failures left no data at all: which failures those report is a matter of
 * timing even on one server, so they are held to the same failures instead (sameFailures). The last block keeps
 * the differences the corpus found, in their smallest form.
 *
 * The corpus is deterministic: PARLEY_PLANNER_SEED=<seed> replays another one, and a failure names its seed and
 * operation number (`-t "operation #17 "` runs that one alone).
 */
import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { Kind, parse, print, validate, visit, type DirectiveNode } from "graphql";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type GqlResponse, type TestApp, type TestUser } from "../helpers/server";
import { settled } from "../helpers/transcripts";
import { generateCorpus, pageWalk, Random, resolveVariables, type ConversationName, type GeneratedOperation, type World } from "../helpers/read-operations";

const SEED = process.env.PARLEY_PLANNER_SEED ? Number(process.env.PARLEY_PLANNER_SEED) : 0x5eed2026;
const CORPUS_SIZE = 120;
const corpus = generateCorpus(SEED, CORPUS_SIZE);

/** Messages of the long conversation: enough that pages and cursors matter (the last one still STREAMING). */
const LONG_MESSAGES = 34;
const DECRYPT_ERROR = "Message content could not be decrypted";

const LIMITS = {
  // Generated operations nest and page further than clients do; over the limits both servers would only answer
  // the same 400, and the operation would test nothing.
  MAX_QUERY_DEPTH: "30",
  MAX_QUERY_COMPLEXITY: "100000000",
  MAX_QUERY_TOKENS: "100000",
  // The open stream must stay STREAMING while the file runs.
  STREAM_TIMEOUT_SECONDS: "86400",
};
const RING = { MESSAGE_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}` };
/** Another key only: every message text of the database is undecryptable here. */
const OTHER_RING = { MESSAGE_ENCRYPTION_KEYS: `k2:${randomBytes(32).toString("base64")}` };

interface Pair {
  name: string;
  planned: TestApp;
  resolvers: TestApp;
}

type ViewerName = "owner" | "other" | "admin" | "service";
const VIEWERS: ViewerName[] = ["owner", "other", "admin", "service"];

let main: Pair;
let keyless: Pair;
const viewers = {} as Record<ViewerName, TestUser>;
let world: World;

/** What was written to the long conversation, in seq order. */
interface Written {
  id: string;
  seq: number;
  content: string;
  status: "COMPLETE" | "FAILED" | "STREAMING";
  /** Display names; the author is null once the account is deleted. */
  author: string | null;
  sentBy: string | null;
  chunks: number;
}
const long: Written[] = [];

beforeAll(async () => {
  const planned = await createTestApp({ ...LIMITS, ...RING });
  main = { name: "main", planned, resolvers: await createTestApp({ ...LIMITS, ...RING, READ_PLANNER: "false" }, planned.database) };
  keyless = {
    name: "without the key",
    planned: await createTestApp({ ...LIMITS, ...OTHER_RING }, planned.database),
    resolvers: await createTestApp({ ...LIMITS, ...OTHER_RING, READ_PLANNER: "false" }, planned.database),
  };
  world = await seed(planned);
});
afterAll(async () => {
  for (const app of [keyless?.resolvers, keyless?.planned, main?.resolvers]) await app?.dispose();
  await main?.planned.dispose(); // last: it owns the database
});

// ---- the data, written through the API as clients write it ---------------------------------------------------

const CREATE_CONVERSATION = `mutation($in: CreateConversationInput!) { createConversation(input: $in) { id } }`;
const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id seq } }`;
const START = `mutation($in: StartMessageInput!) { startMessage(input: $in) { id seq } }`;
const APPEND = `mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`;
const COMPLETE = `mutation($m: UUID!, $u: CompleteMessageInput) { completeMessage(messageId: $m, usage: $u) { id } }`;
const FAIL = `mutation($m: UUID!, $e: String!) { failMessage(messageId: $m, error: $e) { id } }`;

async function seed(app: TestApp): Promise<World> {
  const owner = (viewers.owner = await app.makeUser(Role.MEMBER, "olivia"));
  viewers.other = await app.makeUser(Role.MEMBER, "mallory");
  const admin = (viewers.admin = await app.makeUser(Role.ADMIN, "ada"));
  const service = (viewers.service = await app.makeUser(Role.SERVICE, "worker"));
  const dave = await app.makeUser(Role.MEMBER, "dave");
  await app.grant(service, { origin: "web" }); // the AI worker answers (and writes for) every web conversation
  const carol = (
    await app.ok(`mutation($in: CreateUserInput!) { createUser(input: $in) { id } }`, { in: { displayName: "carol", email: "carol@example.com", externalId: "idp|carol" } }, admin.token)
  ).createUser.id;
  // Private fields with values: the owner's preferences, carol's email and external id.
  await app.ok(`mutation($p: JSON!) { updatePreferences(preferences: $p) { id } }`, { p: { theme: "dark", language: "pt-BR" } }, owner.token);

  const conversation = async (by: TestUser, input: Record<string, unknown>) => (await app.ok(CREATE_CONVERSATION, { in: input }, by.token)).createConversation.id as string;
  const add = async (by: TestUser, input: Record<string, unknown>) => (await app.ok(ADD, { in: input }, by.token)).addMessage as { id: string; seq: number };
  const stream = async (by: TestUser, conversationId: string, chunks: string[]) => {
    const started = (await app.ok(START, { in: { conversationId, model: "gpt-4o-mini" } }, by.token)).startMessage as { id: string; seq: number };
    for (const [index, text] of chunks.entries()) await app.ok(APPEND, { m: started.id, i: index, t: text }, by.token);
    return started;
  };

  // The long conversation: the owner, the worker (assistant replies, and writing as the owner), an admin (system
  // notes, and writing as carol and as dave, whose account is deleted below), streamed replies of every ending.
  const longId = await conversation(owner, { title: "Trip planning", parameters: { model: "gpt-4o-mini", temperature: 0.3 } });
  const assistant = (await app.ok(`mutation($in: CreateAssistantInput!) { createAssistant(input: $in) { id } }`, { in: { name: "Travel helper", model: "gpt-4o-mini" } }, owner.token))
    .createAssistant.id;
  await app.ok(`mutation($c: UUID!, $a: UUID!) { pinAssistant(conversationId: $c, assistantId: $a) { id } }`, { c: longId, a: assistant }, owner.token);
  const record = (message: { id: string; seq: number }, rest: Omit<Written, "id" | "seq">) => long.push({ ...message, ...rest });
  const complete = { status: "COMPLETE", chunks: 0 } as const;
  for (let i = 1; i < LONG_MESSAGES; i++) {
    const conversationId = longId;
    if (i === 12) {
      const chunks = ["Streamed ", "reply in ", "three parts"];
      const started = await stream(service, conversationId, chunks);
      await app.ok(COMPLETE, { m: started.id, u: { promptTokens: 40, completionTokens: 9, costUsd: 0.0042, latencyMs: 1300 } }, service.token);
      record(started, { content: chunks.join(""), status: "COMPLETE", author: "worker", sentBy: null, chunks: 3 });
    } else if (i === 21) {
      const chunks = ["Half an ", "answer"];
      const started = await stream(service, conversationId, chunks);
      await app.ok(FAIL, { m: started.id, e: "upstream timeout" }, service.token);
      record(started, { content: chunks.join(""), status: "FAILED", author: "worker", sentBy: null, chunks: 2 });
    } else if (i === 27) {
      const toolCalls = [{ id: "call_27", type: "function", function: { name: "weather", arguments: '{"city":"Porto"}' } }];
      record(await add(service, { conversationId, role: "ASSISTANT", content: "", toolCalls, model: "gpt-4o-mini" }), { content: "", author: "worker", sentBy: null, ...complete });
    } else if (i % 6 === 0) {
      const content = `Question ${i}: how far is stop ${i}?`;
      record(await add(owner, { conversationId, content, metadata: { client: "web", draft: i % 4 === 0 } }), { content, author: "olivia", sentBy: null, ...complete });
    } else if (i % 6 === 1) {
      const content = `Answer ${i}: about ${i * 7} km.`;
      const toolCalls = i % 4 === 1 ? [{ id: `call_${i}`, type: "function", function: { name: "search", arguments: `{"q":"stop ${i}"}` } }] : undefined;
      const usage = { model: "gpt-4o-mini", promptTokens: 100 + i, completionTokens: 20 + i, costUsd: i * 0.00125, latencyMs: 300 + i * 7 };
      record(await add(service, { conversationId, role: "ASSISTANT", content, toolCalls, metadata: { finish: "stop" }, ...usage }), { content, author: "worker", sentBy: null, ...complete });
    } else if (i % 6 === 2) {
      const content = `Relayed ${i} from the owner's phone`;
      record(await add(service, { conversationId, content, actAs: owner.user.id, metadata: { via: "worker" } }), { content, author: "olivia", sentBy: "worker", ...complete });
    } else if (i % 6 === 3) {
      const content = `Carol says ${i} — ünïcödé 🌍`;
      record(await add(admin, { conversationId, content, actAs: carol, requestId: `carol-${i}` }), { content, author: "carol", sentBy: "ada", ...complete });
    } else if (i % 6 === 4) {
      const content = `Dave says ${i}`;
      record(await add(admin, { conversationId, content, actAs: dave.user.id }), { content, author: null, sentBy: "ada", ...complete });
    } else {
      const content = `Note ${i}: keep answers short`;
      record(await add(admin, { conversationId, role: "SYSTEM", content }), { content, author: "ada", sentBy: null, ...complete });
    }
  }
  const open = ["still ", "typing"];
  record(await stream(service, longId, open), { content: open.join(""), status: "STREAMING", author: "worker", sentBy: null, chunks: 2 });

  const rated = long.find((message) => message.seq === 13)!; // an assistant answer
  const RATE = `mutation($in: RateMessageInput!) { rateMessage(input: $in) { id } }`;
  await app.ok(RATE, { in: { messageId: rated.id, rating: "UP", score: 4, tags: ["HELPFUL"], comment: "thanks" } }, owner.token);
  await app.ok(RATE, { in: { messageId: rated.id, rating: "DOWN", tags: ["TOO_LONG"] } }, admin.token);
  const ARTIFACT = `mutation($in: CreateArtifactInput!) { createArtifact(input: $in) { id } }`;
  await app.ok(ARTIFACT, { in: { messageId: long.find((message) => message.seq === 7)!.id, kind: "CODE", title: "route.py", content: "print('Porto')", language: "python" } }, service.token);
  const transcript = (await app.ok(`mutation($in: CreateTranscriptInput!) { createTranscript(input: $in) { id } }`, { in: { conversationId: longId, format: "JSON" } }, owner.token))
    .createTranscript.id;
  expect((await settled(app, owner, transcript)).status).toBe("READY"); // no status may change while the corpus runs

  // An archived API conversation, which the worker was granted by itself.
  const archived = await conversation(owner, { title: "Old invoices", origin: "API" });
  for (const content of ["Invoice 1", "Invoice 2", "Invoice 3"]) await add(owner, { conversationId: archived, content });
  await app.grant(service, { conversationId: archived });
  await app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: archived }, owner.token);

  // A Discord channel's conversation, bound by an admin (the adapter's job), not granted to the worker.
  const discord = await conversation(admin, { title: "#general", origin: "DISCORD", ownerId: owner.user.id, discordGuildId: "112233445566778899", discordChannelId: "998877665544332211" });
  await add(admin, { conversationId: discord, content: "hi from Discord", actAs: owner.user.id, requestId: "1300000000000000001" });
  await add(admin, { conversationId: discord, role: "ASSISTANT", content: "Hello!", model: "gpt-4o" });

  const empty = await conversation(owner, { title: "Nothing yet" });

  // A message whose key left the ring (as encryption.test.ts does it): undecryptable on every server.
  const broken = await conversation(owner, { title: "Broken" });
  await add(owner, { conversationId: broken, content: "still readable" });
  const unreadable = await add(owner, { conversationId: broken, content: "soon unreadable" });
  await app.database.db.knex("messages").where({ id: unreadable.id }).update({ keyId: "retired" });

  // The worker's own conversation, and an admin's: their inboxes are not empty.
  const serviceOwn = await conversation(service, { title: "Worker log", origin: "API" });
  await add(service, { conversationId: serviceOwn, role: "SYSTEM", content: "job started" });
  await add(service, { conversationId: serviceOwn, role: "ASSISTANT", content: "job done", model: "gpt-4o-mini" });
  const adminOwn = await conversation(admin, { title: "Ops" });
  await add(admin, { conversationId: adminOwn, content: "rotate keys on Friday" });

  // There is no API to delete an account (an operator does it in SQL); its messages stay, with author null.
  await app.database.db.knex("users").where({ id: dave.user.id }).delete();

  // Cursors for the corpus, from answers of the resolvers.
  const messageCursors = (await main.resolvers.ok(`query($id: UUID!) { conversation(id: $id) { messages(first: 100) { edges { cursor } } } }`, { id: longId }, owner.token)).conversation
    .messages.edges.map((edge: { cursor: string }) => edge.cursor);
  const conversationCursors = (await main.resolvers.ok(`{ conversations(first: 100) { edges { cursor } } }`, {}, owner.token)).conversations.edges.map(
    (edge: { cursor: string }) => edge.cursor,
  );
  const conversations: Record<ConversationName, string> = {
    long: longId,
    archived,
    discord,
    empty,
    broken,
    service: serviceOwn,
    missing: "00000000-0000-4000-8000-00000000dead",
    upperCase: longId.toUpperCase(),
  };
  return { conversations, users: { owner: owner.user.id, admin: admin.user.id }, messageCursors, conversationCursors };
}

// ---- comparing the two servers --------------------------------------------------------------------------------

/** The path to the first place where two JSON values differ, with both values there. */
function firstDifference(a: unknown, b: unknown, path = "answer"): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const found = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}.${key}`);
      if (found) return found;
    }
  }
  return `${path}: planner ${JSON.stringify(a)} vs resolvers ${JSON.stringify(b)}`;
}

const clip = (text: string, length = 6000) => (text.length > length ? `${text.slice(0, length)}… (${text.length} characters)` : text);

async function ask(pair: Pair, query: string, variables: Record<string, unknown>, viewer: ViewerName): Promise<[GqlResponse, GqlResponse]> {
  const token = viewers[viewer].token;
  return Promise.all([pair.planned.gql(query, variables, token), pair.resolvers.gql(query, variables, token)]);
}

/** The failure, with everything needed to replay it. */
async function mismatch(
  pair: Pair,
  label: string,
  query: string,
  variables: Record<string, unknown>,
  viewer: ViewerName,
  [planned, resolvers]: GqlResponse[],
  note?: string,
): Promise<Error> {
  // Asked again: a server answering differently each time is a race; the same way each time is not.
  const token = viewers[viewer].token;
  const again = async (app: TestApp) => new Set([JSON.stringify(await app.gql(query, variables, token)), JSON.stringify(await app.gql(query, variables, token))]).size;
  return new Error(
    [
      `READ_PLANNER on and off answer differently (${pair.name} servers, viewer ${viewer}, ${label}, seed ${SEED})`,
      `first difference: ${firstDifference(planned, resolvers)}`,
      `asked twice more: the planner gave ${await again(pair.planned)} different answer(s), the resolvers ${await again(pair.resolvers)}`,
      ...(note ? [note] : []),
      `query:\n${query}`,
      `variables: ${JSON.stringify(variables)}`,
      `planner:   ${clip(JSON.stringify(planned))}`,
      `resolvers: ${clip(JSON.stringify(resolvers))}`,
    ].join("\n"),
  );
}

/** Sends the operation to both servers of `pair` as `viewer`, and fails unless the answers are the same. */
async function same(pair: Pair, label: string, query: string, variables: Record<string, unknown>, viewer: ViewerName): Promise<GqlResponse> {
  const answers = await ask(pair, query, variables, viewer);
  if (!isDeepStrictEqual(answers[0], answers[1])) throw await mismatch(pair, label, query, variables, viewer, answers);
  return answers[0];
}

type GqlError = NonNullable<GqlResponse["body"]["errors"]>[number] & { locations?: { line: number; column: number }[] };
/** An error without its place in the query text (which moves when the query is printed again). */
const failure = (error: GqlError) => JSON.stringify({ ...error, locations: undefined });

/** `@skip(if: true)`, or `@include(if: false)` on a field that has a @skip already (a directive may appear once). */
const never = (name: "skip" | "include"): DirectiveNode => ({
  kind: Kind.DIRECTIVE,
  name: { kind: Kind.NAME, value: name },
  arguments: [{ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: "if" }, value: { kind: Kind.BOOLEAN, value: name === "skip" } }],
});

/** The fields of a query by where they start ("line:column", as errors give it) → where they are in its AST. */
function fieldsOf(query: string): Map<string, string> {
  const fields = new Map<string, string>();
  visit(parse(query), {
    Field(node, _key, _parent, path) {
      const start = node.loc?.startToken;
      if (start) fields.set(`${start.line}:${start.column}`, path.join("."));
    },
  });
  return fields;
}

/** The query without the fields at these places of its AST (printed again: the AST keeps its shape). */
function skipping(query: string, places: ReadonlySet<string>): string {
  return print(
    visit(parse(query), {
      Field(node, _key, _parent, path) {
        if (!places.has(path.join("."))) return undefined;
        const directives = node.directives ?? [];
        return { ...node, directives: [...directives, never(directives.some((directive) => directive.name.value === "skip") ? "include" : "skip")] };
      },
    }),
  );
}

/**
 * Answers that differ only in which failures they report, when the failures left no data at all. A failure under
 * non-null fields all the way up makes data null, and execution (graphql-jit, as graphql-js) then reports the
 * failures that happened before, not those after: which ones depends on timing, and changes from one request to
 * the next even with the planner off (PostgreSQL runs the roots' statements side by side), while the planner
 * makes most failures happen sooner. So such answers are held to this instead: a failure only one server reports
 * must be reported by both once the other failing fields are skipped. A failure the planner alone makes up fails.
 */
async function sameFailures(pair: Pair, query: string, variables: Record<string, unknown>, viewer: ViewerName, answers: GqlResponse[]): Promise<boolean> {
  if (answers.some((answer) => answer.status !== answers[0].status || answer.body.data !== null || !answer.body.errors?.length)) return false;
  const reported = answers.map((answer) => new Set(answer.body.errors!.map(failure)));
  const errors: GqlError[] = answers.flatMap((answer) => answer.body.errors!);
  const places = (error: GqlError, fields: Map<string, string>) => (error.locations ?? []).flatMap(({ line, column }) => fields.get(`${line}:${column}`) ?? []);
  const original = fieldsOf(query);
  for (const error of errors) {
    const key = failure(error);
    if (reported.every((keys) => keys.has(key))) continue;
    const own = new Set(places(error, original));
    const skipped = new Set(errors.filter((other) => failure(other) !== key).flatMap((other) => places(other, original)));
    let found = false;
    // Skipping fields can let failures that were cut off before show up: those are skipped too, a few rounds at most.
    for (let round = 0; round < 4 && !found; round++) {
      for (const place of own) skipped.delete(place);
      const probe = skipping(query, skipped);
      const probes = await ask(pair, probe, variables, viewer);
      found = probes.every((answer) => answer.body.errors?.some((other) => failure(other) === key));
      const fields = fieldsOf(probe);
      for (const answer of probes) for (const other of answer.body.errors ?? []) if (failure(other) !== key) places(other, fields).forEach((place) => skipped.add(place));
    }
    if (!found) return false;
  }
  return true;
}

/** `same` for a generated operation, but with failures that left no data held to sameFailures. */
async function sameOperation(pair: Pair, op: GeneratedOperation, viewer: ViewerName): Promise<GqlResponse> {
  const label = `operation #${op.index}`;
  const variables = resolveVariables(op.variables, world);
  const answers = await ask(pair, op.query, variables, viewer);
  if (isDeepStrictEqual(answers[0], answers[1]) || (await sameFailures(pair, op.query, variables, viewer, answers))) return answers[0];
  const collapsed = answers.every((answer) => answer.body.data === null && answer.body.errors?.length);
  const note = collapsed ? "no data on either side, and a failure only one server reports was not reported by both with the other failing fields skipped" : undefined;
  throw await mismatch(pair, label, op.query, variables, viewer, answers, note);
}

/** The owner's answer to each operation of the corpus, for the check that the corpus is not all errors. */
const ownerAnswers = new Map<number, GqlResponse>();

async function run(op: GeneratedOperation): Promise<void> {
  for (const viewer of VIEWERS) {
    const answer = await sameOperation(main, op, viewer);
    if (viewer === "owner") ownerAnswers.set(op.index, answer);
  }
  // Every fourth operation again where no text can be decrypted: the errors must match too.
  if (op.index % 4 === 0) await sameOperation(keyless, op, "owner");
}

describe(`the generated corpus (seed ${SEED})`, () => {
  it("is valid GraphQL for the schema, except the operations made invalid on purpose", () => {
    const schema = main.planned.server.schema; // the server's own: its UUID scalar refuses invalid literals
    const invalid = corpus.filter((op) => validate(schema, parse(op.query)).length > 0);
    expect(invalid.map((op) => op.index)).toEqual(corpus.filter((op) => op.invalid).map((op) => op.index));
  });

  it("covers the shapes the planner must get right", () => {
    const features = new Set(corpus.flatMap((op) => [...op.features]));
    const required = [
      "alias:scalar",
      "alias:same-field-other-arguments",
      "merge:relation",
      "fragment:Conversation",
      "fragment:Message",
      "inline:Message",
      "inline:Conversation",
      "inline:untyped",
      "@include:variable",
      "@skip:variable",
      "__typename",
      "totalCount",
      "pageInfo",
      "page:default",
      "page:first0",
      "page:after",
      "page:before",
      "page:size-variable",
      "page:size-default-variable",
      "page:invalid",
      "connection:edges-twice",
      "path:Conversation.messages>Message.author",
      "path:Message.conversation>Conversation.owner",
      "path:Conversation.lastMessage>Message.author",
      "path:Conversation.messages>Message.conversation>Conversation.messages",
      "path:Conversation.messages>Message.sentBy",
      "private:User",
      "fallback:Conversation.transcripts",
      "fallback:Message.myFeedback",
      "fallback:Message.feedbackSummary",
      "fallback:Message.assistant",
      "fallback:User.activity",
      "root:conversation:long",
      "root:conversation:missing",
      "root:conversation:upperCase",
      "root:conversation:broken",
      "root:same-shape",
      "roots:several",
      "root:conversations",
      "root:conversations:filter",
    ];
    expect(required.filter((feature) => !features.has(feature))).toEqual([]);
  });
});

describe(`READ_PLANNER on and off give the same answers (seed ${SEED})`, () => {
  it.each(corpus.map((op) => [op.index, op.summary, op] as const))("operation #%i %s", async (_index, _summary, op) => {
    await run(op);
  });

  it("answers most operations with data, and some with errors", async () => {
    // Operations a -t filter left out are asked here, so that the count is of the whole corpus.
    for (const op of corpus) {
      if (!ownerAnswers.has(op.index)) ownerAnswers.set(op.index, await main.planned.gql(op.query, resolveVariables(op.variables, world), viewers.owner.token));
    }
    const answers = [...ownerAnswers.values()];
    const clean = answers.filter((answer) => answer.status === 200 && !answer.body.errors && answer.body.data);
    const failed = answers.filter((answer) => answer.body.errors?.length);
    expect(clean.length).toBeGreaterThan(CORPUS_SIZE / 2);
    expect(failed.length).toBeGreaterThan(5);
  });
});

// ---- pages walked with the cursors of the previous answer --------------------------------------------------------

interface PageAnswer {
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  edges: { cursor: string; node: Record<string, any> }[];
}

/**
 * Walks pages of random sizes until there is none further; each step is compared on both servers for every
 * viewer, and continued with `walker`'s answer. Returns the pages in the order walked.
 */
async function walk(
  kind: "message" | "conversation",
  direction: "forward" | "backward",
  variables: Record<string, unknown>,
  walker: ViewerName = "owner",
): Promise<PageAnswer[]> {
  const { query, variables: generated } = pageWalk(SEED, kind, direction);
  const sizes = new Random(SEED ^ 0x3a1c);
  const pages: PageAnswer[] = [];
  let cursor: string | null = null;
  for (let step = 0; step < 40; step++) {
    const all = { ...resolveVariables(generated, world), ...variables, size: sizes.int(1, 7), cursor };
    let page: PageAnswer | undefined;
    for (const viewer of VIEWERS) {
      const answer = await same(main, `${kind} walk ${direction}, step ${step}`, query, all, viewer);
      if (viewer === walker) {
        expect(answer.body.errors).toBeUndefined();
        page = kind === "message" ? answer.body.data!.conversation.messages : answer.body.data!.conversations;
      }
    }
    pages.push(page!);
    const more = direction === "forward" ? page!.pageInfo.hasNextPage : page!.pageInfo.hasPreviousPage;
    if (!more) return pages;
    cursor = direction === "forward" ? page!.pageInfo.endCursor : page!.pageInfo.startCursor;
  }
  throw new Error(`the ${kind} walk ${direction} did not end within 40 pages`);
}

describe("pages walked with cursors from the previous answer", () => {
  const seqs = (pages: PageAnswer[]) => pages.flatMap((page) => page.edges.map((edge) => edge.node.seq));
  const allSeqs = () => long.map((message) => message.seq);

  it("messages forwards (first/after endCursor): every message once, in order", async () => {
    const pages = await walk("message", "forward", { id: world.conversations.long });
    expect(seqs(pages)).toEqual(allSeqs());
  });

  it("messages backwards (last/before startCursor): every message once, in order", async () => {
    const pages = await walk("message", "backward", { id: world.conversations.long });
    expect(seqs(pages.reverse())).toEqual(allSeqs());
  });

  it.each([
    ["the owner's inbox", "owner", null],
    ["an admin listing the owner's (filter.ownerId)", "admin", "owner"],
  ] as const)("conversations both ways: %s", async (_name, walker, ownerOf) => {
    const filter = ownerOf ? { ownerId: world.users[ownerOf] } : null;
    const forward = await walk("conversation", "forward", { filter }, walker);
    const backward = await walk("conversation", "backward", { filter }, walker);
    const ids = (pages: PageAnswer[]) => pages.flatMap((page) => page.edges.map((edge) => edge.node.id));
    // Most recently active first, as stored.
    const stored = await main.planned.database.db
      .knex("conversations")
      .where({ ownerId: viewers.owner.user.id })
      .orderBy([
        { column: "updatedAt", order: "desc" },
        { column: "id", order: "desc" },
      ])
      .pluck("id");
    expect(ids(forward)).toEqual(stored);
    expect(ids(backward.reverse())).toEqual(stored);
  });
});

// ---- answers pinned to what was written ---------------------------------------------------------------------------

/** The data of an answer both servers give alike, which must have no errors. */
async function data(query: string, variables: Record<string, unknown>, viewer: ViewerName = "owner", pair = main): Promise<Record<string, any>> {
  const answer = await same(pair, "pinned case", query, variables, viewer);
  expect(answer.body.errors).toBeUndefined();
  return answer.body.data!;
}

describe("answers pinned to the seeded data (on both servers)", () => {
  const author = (message: Written) => message.author && { displayName: message.author };

  it("the newest three messages, in order, with their authors; the last one still streaming", async () => {
    const NEWEST = `query($id: UUID!) {
      conversation(id: $id) {
        messageCount
        lastMessage { seq status content chunkCount }
        messages(last: 3) { totalCount pageInfo { hasNextPage hasPreviousPage } edges { node { seq content status author { displayName } } } }
      }
    }`;
    const { conversation } = await data(NEWEST, { id: world.conversations.long });
    const last = long[long.length - 1];
    expect(conversation).toEqual({
      messageCount: LONG_MESSAGES,
      lastMessage: { seq: last.seq, status: "STREAMING", content: last.content, chunkCount: last.chunks },
      messages: {
        totalCount: LONG_MESSAGES,
        pageInfo: { hasNextPage: false, hasPreviousPage: true },
        edges: long.slice(-3).map((message) => ({ node: { seq: message.seq, content: message.content, status: message.status, author: author(message) } })),
      },
    });
  });

  it("a backward page before a cursor, and a forward one after it", async () => {
    const FIRST = `query($id: UUID!) { conversation(id: $id) { messages(first: 10) { pageInfo { endCursor } } } }`;
    const cursor = (await data(FIRST, { id: world.conversations.long })).conversation.messages.pageInfo.endCursor; // at seq 10
    const AROUND = `query($id: UUID!, $c: String!) {
      conversation(id: $id) {
        before: messages(last: 4, before: $c) { pageInfo { hasNextPage hasPreviousPage } edges { node { seq content author { displayName } } } }
        after: messages(first: 2, after: $c) { pageInfo { hasNextPage hasPreviousPage } edges { node { seq content author { displayName } } } }
      }
    }`;
    const { conversation } = await data(AROUND, { id: world.conversations.long, c: cursor });
    const page = (from: number, to: number) => long.slice(from - 1, to).map((message) => ({ node: { seq: message.seq, content: message.content, author: author(message) } }));
    expect(conversation.before).toEqual({ pageInfo: { hasNextPage: true, hasPreviousPage: true }, edges: page(6, 9) });
    expect(conversation.after).toEqual({ pageInfo: { hasNextPage: true, hasPreviousPage: true }, edges: page(11, 12) });
  });

  it("encrypted text comes back decrypted; streamed, failed, relayed and orphaned messages as written", async () => {
    const ALL = `query($id: UUID!) {
      conversation(id: $id) { messages(first: 100) { edges { node { id seq content status chunkCount metadata author { displayName } sentBy { displayName } } } } }
    }`;
    const nodes = (await data(ALL, { id: world.conversations.long })).conversation.messages.edges.map((edge: { node: Record<string, any> }) => edge.node);
    expect(nodes.map(({ metadata: _metadata, ...rest }: Record<string, any>) => rest)).toEqual(
      long.map((message) => ({
        id: message.id,
        seq: message.seq,
        content: message.content,
        status: message.status,
        chunkCount: message.chunks,
        author: author(message),
        sentBy: message.sentBy && { displayName: message.sentBy },
      })),
    );
    expect(nodes.find((message: { status: string }) => message.status === "FAILED").metadata).toEqual({ error: "upstream timeout" });
    // Stored as ciphertext only, so the text above was decrypted on the way out.
    const rows = await main.planned.database.db.knex("messages").whereIn("id", long.map((message) => message.id)).whereNot({ status: "streaming" }).select("content", "keyId");
    expect(rows).toHaveLength(LONG_MESSAGES - 1);
    expect(rows.every((row: { content: string | null; keyId: string }) => row.content === null && row.keyId === "k1")).toBe(true);
  });

  it("another member finds none of the owner's conversations, and an empty inbox", async () => {
    for (const name of ["long", "archived", "discord", "empty", "broken"] as const) {
      const answer = await same(main, "pinned case", `query($id: UUID!) { conversation(id: $id) { id title } }`, { id: world.conversations[name] }, "other");
      expect(answer.body).toEqual({
        data: null,
        errors: [expect.objectContaining({ message: "Conversation not found", path: ["conversation"], extensions: expect.objectContaining({ code: "NOT_FOUND" }) })],
      });
    }
    expect(await data(`{ conversations { totalCount edges { node { id } } } }`, {}, "other")).toEqual({ conversations: { totalCount: 0, edges: [] } });
  });

  it("the worker reads what it was granted (web conversations, the archived one), and not the Discord one", async () => {
    const READ = `query($a: UUID!, $b: UUID!) { a: conversation(id: $a) { title status } b: conversation(id: $b) { title status } }`;
    expect(await data(READ, { a: world.conversations.long, b: world.conversations.archived }, "service")).toEqual({
      a: { title: "Trip planning", status: "ACTIVE" },
      b: { title: "Old invoices", status: "ARCHIVED" },
    });
    const answer = await same(main, "pinned case", READ, { a: world.conversations.discord, b: world.conversations.long }, "service");
    expect(answer.body.data).toBeNull();
    expect(answer.body.errors).toEqual([expect.objectContaining({ path: ["a"], extensions: expect.objectContaining({ code: "NOT_FOUND" }) })]);
  });

  it("a message whose key is not in the ring: the same error at the same path, the rest of the history readable", async () => {
    const HISTORY = `query($id: UUID!) { conversation(id: $id) { title messages { edges { node { seq content } } } } }`;
    const answer = await same(main, "pinned case", HISTORY, { id: world.conversations.broken }, "owner");
    expect(answer.body).toEqual({
      data: null, // content is non-null, and so is every field up to the root
      errors: [
        expect.objectContaining({
          message: DECRYPT_ERROR,
          path: ["conversation", "messages", "edges", 1, "node", "content"],
          extensions: { code: "INTERNAL_SERVER_ERROR", reason: "CONTENT_UNDECRYPTABLE" },
        }),
      ],
    });
    const seqs = await data(`query($id: UUID!) { conversation(id: $id) { messages { edges { node { seq } } } } }`, { id: world.conversations.broken });
    expect(seqs.conversation.messages.edges).toEqual([{ node: { seq: 1 } }, { node: { seq: 2 } }]);
  });

  it("servers without the key fail on every text alike, the streamed chunks included", async () => {
    const error = (path: (string | number)[]) =>
      expect.objectContaining({ message: DECRYPT_ERROR, path, extensions: { code: "INTERNAL_SERVER_ERROR", reason: "CONTENT_UNDECRYPTABLE" } });
    // lastMessage is nullable: it alone becomes null. The last message is the open stream: its chunks fail.
    const LAST = `query($id: UUID!) { conversation(id: $id) { title lastMessage { seq status content } } }`;
    expect((await same(keyless, "pinned case", LAST, { id: world.conversations.long }, "owner")).body).toEqual({
      data: { conversation: { title: "Trip planning", lastMessage: null } },
      errors: [error(["conversation", "lastMessage", "content"])],
    });
    // A stored text, non-null up to the root.
    const FIRST = `query($id: UUID!) { conversation(id: $id) { messages(first: 1) { edges { node { seq content } } } } }`;
    expect((await same(keyless, "pinned case", FIRST, { id: world.conversations.long }, "owner")).body).toEqual({
      data: null,
      errors: [error(["conversation", "messages", "edges", 0, "node", "content"])],
    });
    // Everything but the text stays readable.
    expect((await data(`query($id: UUID!) { conversation(id: $id) { title messageCount } }`, { id: world.conversations.long }, "owner", keyless)).conversation).toEqual({
      title: "Trip planning",
      messageCount: LONG_MESSAGES,
    });
  });

  it("private fields: the owner's own preferences, carol's email for admins only", async () => {
    const PRIVATE = `query($id: UUID!) {
      conversation(id: $id) { owner { displayName preferences } messages(first: 3) { edges { node { author { displayName email externalId } } } } }
    }`;
    const carol = { displayName: "carol", email: "carol@example.com", externalId: "idp|carol" };
    const asOwner = await data(PRIVATE, { id: world.conversations.long }, "owner");
    expect(asOwner.conversation.owner).toEqual({ displayName: "olivia", preferences: { theme: "dark", language: "pt-BR" } });
    expect(asOwner.conversation.messages.edges[2].node.author).toEqual({ ...carol, email: null, externalId: null });
    const asAdmin = await data(PRIVATE, { id: world.conversations.long }, "admin");
    expect(asAdmin.conversation.owner.preferences).toEqual({ theme: "dark", language: "pt-BR" });
    expect(asAdmin.conversation.messages.edges[2].node.author).toEqual(carol);
  });
});

// ---- differences the corpus found (and that were fixed), in their smallest form ---------------------------------

describe("operations the corpus found to differ, in their smallest form", () => {
  it("a relation asked twice under one key, one of them skipped, with a fragment inside the skipped one", async () => {
    // By the spec (and graphql-js) the skipped field's selection is not asked at all; graphql-jit 0.8.9 still ran
    // the fragment inside it and answered its fields. The planner read the selection as graphql-js does, so the
    // planned row lacked what those fields read (content failed as undecryptable, role as an internal error).
    // Now documents with @skip/@include run on graphql-js (server/apollo.ts), and plans cover everything an
    // operation may ask anyway (planner/selection.ts): both servers answer exactly the unskipped selection.
    const SKIPPED = `query($id: UUID!, $skip: Boolean!) {
      conversation(id: $id) { lastMessage { seq } lastMessage @skip(if: $skip) { ... on Message { role content author { displayName } } } }
    }`;
    const id = world.conversations.archived;
    await same(main, "smallest form", SKIPPED, { id, skip: true }, "owner");
    const unskipped = await main.planned.gql(`query($id: UUID!) { conversation(id: $id) { lastMessage { seq } } }`, { id }, viewers.owner.token);
    expect(unskipped.body.data?.conversation.lastMessage.seq).toEqual(expect.any(Number));
    for (const app of [main.planned, main.resolvers]) expect((await app.gql(SKIPPED, { id, skip: true }, viewers.owner.token)).body).toEqual(unskipped.body);
  });

  it("two failures under nullable fields: the same errors, in the same order", async () => {
    // Errors happen in an order that depends on what was planned or batched: planned values are at hand at once,
    // the resolvers' nested read waits for its loaders. The server now lists errors in document order
    // (server/apollo.ts, orderedErrors), so both answer the same.
    const TWICE = `query($id: UUID!) { conversation(id: $id) { lastMessage { conversation { lastMessage { content } } } x: lastMessage { content } } }`;
    await same(main, "smallest form", TWICE, { id: world.conversations.broken }, "owner");
  });

  it("two roots that both fail: data is null on both, and each reports one of the two failures", async () => {
    // Not held to `same` (see sameFailures): only the first failure in time is reported, and the planner changes
    // which one comes first. Without it r0 reads its page of messages before its conversation and fails second.
    const TWO = `query($a: UUID!, $b: UUID!) { r0: conversation(id: $a) { messages(first: 1) { totalCount } } r1: conversation(id: $b) { id } }`;
    for (const answer of await ask(main, TWO, { a: world.conversations.missing, b: "00000000-0000-4000-8000-00000000beef" }, "owner")) {
      expect(answer.body.data).toBeNull();
      expect(answer.body.errors).toEqual([expect.objectContaining({ message: "Conversation not found", path: [expect.stringMatching(/^r[01]$/)] })]);
    }
  });
});
