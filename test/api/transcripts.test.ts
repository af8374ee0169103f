/**
 * Transcripts on the disk backend, through the API and the download endpoint: JSON and CSV exports parsed
 * back and compared with the database (hostile content included), ranges and filters, encrypted messages,
 * background jobs and their takeover after a crash, idempotency, download authorisation and headers,
 * deletion of files with their conversation, and failures that leave nothing READY and no file behind.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import {
  createTranscript,
  download,
  filesBelow,
  hostileConversation,
  HOSTILE_TEXTS,
  neutralised,
  readTranscript,
  settled,
  sha256,
  type TranscriptData,
} from "../helpers/transcripts";

const KEY_RING = `k1:${Buffer.alloc(32, 7).toString("base64")}`;

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-transcripts-"));
  dirs.push(dir);
  return dir;
}

let dir: string;
let app: TestApp;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
let service: TestUser;
let conversationId: string;

beforeAll(async () => {
  dir = tempDir();
  app = await createTestApp({ TRANSCRIPT_DIR: dir });
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  admin = await app.makeUser(Role.ADMIN, "admin");
  service = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(service, { origin: "web" });
  conversationId = await hostileConversation(app, alice, service);
});
afterAll(async () => {
  await app.dispose();
  for (const folder of dirs) fs.rmSync(folder, { recursive: true, force: true });
});

/** The conversation's message rows as the database holds them, in seq order. */
async function storedMessages(id: string) {
  return app.database.db.knex("messages").where({ conversationId: id }).orderBy("seq");
}

async function newConversation(owner: TestUser, messages: number, target: TestApp = app): Promise<string> {
  const { createConversation } = await target.ok(`mutation { createConversation(input: { title: "plain" }) { id } }`, {}, owner.token);
  for (let i = 1; i <= messages; i++) {
    await target.ok(`mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id } }`, { id: createConversation.id, c: `m${i}` }, owner.token);
  }
  return createConversation.id;
}

function json(bytes: Buffer) {
  return JSON.parse(bytes.toString("utf8"));
}

describe("JSON export", () => {
  let transcript: TranscriptData;
  let file: Buffer;

  beforeAll(async () => {
    transcript = await createTranscript(app, alice, { conversationId, format: "JSON" });
    const got = await download(app, transcript.id, alice.token);
    expect(got.status).toBe(200);
    file = got.bytes;
  });

  it("finishes inside the request for a small conversation and records size, count and sha256 of the file", async () => {
    const rows = await storedMessages(conversationId);
    expect(transcript).toMatchObject({
      status: "READY",
      format: "JSON",
      error: null,
      messageCount: rows.length,
      fileSizeBytes: file.length,
      sha256: sha256(file),
      downloadPath: `/transcripts/${transcript.id}/download`,
      createdBy: { id: alice.user.id },
      conversation: { id: conversationId },
    });
    const row = await app.database.db.knex("transcripts").where({ id: transcript.id }).first();
    expect(row.storageKey).toBe(`transcripts/${conversationId}/${transcript.id}-1.json`);
    expect(fs.readFileSync(path.join(dir, row.storageKey)).equals(file)).toBe(true);
  });

  it("parses back to the conversation and its messages exactly as stored, hostile content included", async () => {
    const document = json(file);
    const conversation = await app.database.db.knex("conversations").where({ id: conversationId }).first();
    expect(Object.keys(document)).toEqual(["schema", "transcript", "conversation", "messages", "messageCount"]);
    expect(document.schema).toBe("parley.transcript/v1");
    expect(document.conversation).toEqual({
      id: conversationId,
      title: conversation.title,
      origin: "web",
      status: "active",
      ownerId: alice.user.id,
      parameters: { model: "m1", temperature: 0.2 },
      createdAt: conversation.createdAt.toISOString(),
      updatedAt: conversation.updatedAt.toISOString(),
    });
    const rows = await storedMessages(conversationId);
    expect(document.messageCount).toBe(rows.length);
    expect(document.messages).toEqual(
      rows.map((row) => ({
        seq: row.seq,
        id: row.id,
        role: row.role,
        status: row.status,
        createdAt: row.createdAt.toISOString(),
        authorId: row.authorId,
        content: row.content,
        model: row.model,
        promptTokens: row.promptTokens,
        completionTokens: row.completionTokens,
        costUsd: row.costUsd == null ? null : Number(row.costUsd),
        latencyMs: row.latencyMs,
        toolCalls: row.toolCalls,
        metadata: row.metadata,
      })),
    );
    for (const text of HOSTILE_TEXTS) expect(document.messages.map((m: { content: string }) => m.content)).toContain(text);
    expect(document.messages.some((m: { content: string }) => m.content.length > 99_000)).toBe(true);
  });

  it("keeps a fixed field order in every message and one message per line", () => {
    const document = json(file);
    for (const message of document.messages) {
      expect(Object.keys(message)).toEqual([
        "seq", "id", "role", "status", "createdAt", "authorId", "content", "model",
        "promptTokens", "completionTokens", "costUsd", "latencyMs", "toolCalls", "metadata",
      ]);
    }
    const lines = file.toString("utf8").split("\n");
    expect(lines.filter((line) => line.startsWith('{"seq":'))).toHaveLength(document.messages.length);
  });

  it("gives the same bytes for the same export, apart from the transcript's own id and time", async () => {
    const again = await createTranscript(app, alice, { conversationId, format: "JSON" });
    const second = (await download(app, again.id, alice.token)).bytes.toString("utf8");
    const strip = (text: string) => text.replace(/\n"transcript":[^\n]*\n/, "\n");
    expect(strip(second)).toBe(strip(file.toString("utf8")));
  });
});

describe("CSV export", () => {
  let transcript: TranscriptData;
  let text: string;
  let records: string[][];

  beforeAll(async () => {
    transcript = await createTranscript(app, alice, { conversationId, format: "CSV" });
    const got = await download(app, transcript.id, alice.token);
    text = got.bytes.toString("utf8");
    records = parse(got.bytes, { relax_column_count: false });
  });

  it("has a header row naming each column, with the text in `content`", () => {
    expect(records[0]).toEqual([
      "conversation_id", "seq", "message_id", "created_at", "role", "status", "author_id", "model", "content",
      "tool_calls", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "metadata",
    ]);
  });

  it("parses back (RFC 4180) to the stored messages, with formula-like cells neutralised", async () => {
    const rows = await storedMessages(conversationId);
    expect(transcript.messageCount).toBe(rows.length);
    const [header, ...body] = records;
    expect(body).toHaveLength(rows.length);
    body.forEach((record, index) => {
      const cell = Object.fromEntries(header.map((name, i) => [name, record[i]]));
      const row = rows[index];
      expect(cell).toEqual({
        conversation_id: conversationId,
        seq: String(row.seq),
        message_id: row.id,
        created_at: row.createdAt.toISOString(),
        role: row.role,
        status: row.status,
        author_id: row.authorId ?? "",
        model: row.model ?? "",
        content: neutralised(row.content),
        tool_calls: row.toolCalls == null ? "" : JSON.stringify(row.toolCalls),
        prompt_tokens: row.promptTokens == null ? "" : String(row.promptTokens),
        completion_tokens: row.completionTokens == null ? "" : String(row.completionTokens),
        cost_usd: row.costUsd == null ? "" : String(Number(row.costUsd)),
        latency_ms: row.latencyMs == null ? "" : String(row.latencyMs),
        metadata: neutralised(JSON.stringify(row.metadata)),
      });
    });
  });

  it("puts a single quote before cells starting with = + - @ tab or CR, and leaves other cells alone", () => {
    const contents = records.slice(1).map((record) => record[8]);
    expect(contents).toContain("'=cmd|' /C calc'!A0");
    expect(contents).toContain("'+1+1");
    expect(contents).toContain("'-2+3");
    expect(contents).toContain("'@SUM(A1:A2)");
    expect(contents).toContain("'\tstarts with a tab");
    expect(contents).toContain("'\rstarts with a carriage return");
    expect(contents).toContain("'＝HYPERLINK(\"x\")");
    expect(contents).toContain("'=already quoted"); // starts with ', so it is not quoted again
    expect(contents).toContain('He said "hi", then "bye"');
    expect(contents).toContain("emoji 😀 family 👩‍👩‍👧‍👦 flag 🇵🇹");
    expect(text).not.toMatch(/(^|,)=cmd/m);
  });

  it("ends records with CRLF and quotes fields holding quotes, commas or line breaks", () => {
    expect(text.endsWith("\r\n")).toBe(true);
    expect(text.split("\r\n")[0]).toBe(
      "conversation_id,seq,message_id,created_at,role,status,author_id,model,content,tool_calls,prompt_tokens,completion_tokens,cost_usd,latency_ms,metadata",
    );
    expect(text).toContain(`,"He said ""hi"", then ""bye""",`);
    expect(text).toContain(`,"a,b,,c,",`);
  });
});

describe("ranges and filters", () => {
  let id: string;

  beforeAll(async () => {
    id = await newConversation(alice, 0);
    const roles = ["SYSTEM", "USER", "ASSISTANT", "TOOL", "USER", "ASSISTANT", "SYSTEM", "USER"];
    for (const [i, role] of roles.entries()) {
      const user = role === "USER" ? alice : service;
      const toolCalls = role === "ASSISTANT" ? [{ id: `c${i}`, type: "function", function: { name: "f", arguments: "{}" } }] : undefined;
      await app.ok(`mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`, { input: { conversationId: id, role, content: `${role} ${i + 1}`, toolCalls } }, user.token);
    }
    // Message n was created at 2026-01-01T00:0n:00Z.
    await app.database.db.knex.raw("update messages set created_at = timestamptz '2026-01-01T00:00:00Z' + seq * interval '1 minute' where conversation_id = ?", [id]);
  });

  async function exported(input: Record<string, unknown>) {
    const transcript = await createTranscript(app, alice, { conversationId: id, format: "JSON", ...input });
    expect(transcript.status).toBe("READY");
    const document = json((await download(app, transcript.id, alice.token)).bytes);
    expect(transcript.messageCount).toBe(document.messages.length);
    return { transcript, document, seqs: document.messages.map((m: { seq: number }) => m.seq) };
  }

  it("exports fromSeq..toSeq inclusive and records the range", async () => {
    const { transcript, document, seqs } = await exported({ fromSeq: 3, toSeq: 6 });
    expect(seqs).toEqual([3, 4, 5, 6]);
    expect(transcript).toMatchObject({ fromSeq: 3, toSeq: 6 });
    expect(document.transcript).toMatchObject({ fromSeq: 3, toSeq: 6, includeSystem: true, includeToolCalls: true });
  });

  it("stops at the last message when toSeq is beyond it, and exports nothing past it", async () => {
    expect((await exported({ fromSeq: 7, toSeq: 1000 })).seqs).toEqual([7, 8]);
    const empty = await exported({ fromSeq: 50 });
    expect(empty.seqs).toEqual([]);
    expect(empty.document.messageCount).toBe(0);
  });

  it("filters by creation time: from inclusive, to exclusive", async () => {
    const { seqs, transcript } = await exported({ from: "2026-01-01T00:02:00.000Z", to: "2026-01-01T00:05:00.000Z" });
    expect(seqs).toEqual([2, 3, 4]);
    expect(transcript).toMatchObject({ from: "2026-01-01T00:02:00.000Z", to: "2026-01-01T00:05:00.000Z" });
  });

  it("leaves out SYSTEM messages without includeSystem, and TOOL messages and tool calls without includeToolCalls", async () => {
    expect((await exported({ includeSystem: false })).seqs).toEqual([2, 3, 4, 5, 6, 8]);
    const { document, seqs } = await exported({ includeToolCalls: false });
    expect(seqs).toEqual([1, 2, 3, 5, 6, 7, 8]);
    expect(document.messages.map((m: { toolCalls: unknown }) => m.toolCalls)).toEqual(Array(7).fill(null));
    const all = await exported({});
    expect(all.document.messages.filter((m: { toolCalls: unknown }) => m.toolCalls !== null)).toHaveLength(2);
  });

  it("applies the same range to CSV", async () => {
    const transcript = await createTranscript(app, alice, { conversationId: id, format: "CSV", fromSeq: 2, toSeq: 4, includeToolCalls: false });
    const records = parse((await download(app, transcript.id, alice.token)).bytes);
    expect(records.slice(1).map((record: string[]) => record[1])).toEqual(["2", "3"]);
    expect(transcript.messageCount).toBe(2);
  });

  it("refuses inverted or impossible ranges with BAD_USER_INPUT", async () => {
    const refuse = (input: Record<string, unknown>) =>
      app.errorCode(`mutation($input: CreateTranscriptInput!) { createTranscript(input: $input) { id } }`, { input: { conversationId: id, format: "CSV", ...input } }, alice.token);
    expect(await refuse({ fromSeq: 5, toSeq: 4 })).toBe("BAD_USER_INPUT");
    expect(await refuse({ fromSeq: 0 })).toBe("BAD_USER_INPUT");
    expect(await refuse({ from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z" })).toBe("BAD_USER_INPUT");
    expect(await refuse({ requestId: "" })).toBe("BAD_USER_INPUT");
  });
});

describe("idempotency", () => {
  it("returns the same transcript for a retried requestId and CONFLICT for other settings", async () => {
    const input = { conversationId, format: "CSV", requestId: "export-42", fromSeq: 2 };
    const first = await createTranscript(app, alice, input);
    const retries = await Promise.all([createTranscript(app, alice, input), createTranscript(app, alice, input)]);
    for (const retry of retries) expect(retry.id).toBe(first.id);
    expect(first.requestId).toBe("export-42");
    const rows = await app.database.db.knex("transcripts").where({ requestId: "export-42" });
    expect(rows).toHaveLength(1);
    const code = await app.errorCode(
      `mutation($input: CreateTranscriptInput!) { createTranscript(input: $input) { id } }`,
      { input: { ...input, format: "JSON" } },
      alice.token,
    );
    expect(code).toBe("CONFLICT");
  });
});

describe("access", () => {
  let transcriptId: string;
  beforeAll(async () => {
    transcriptId = (await createTranscript(app, alice, { conversationId, format: "CSV" })).id;
  });

  it("hides another member's conversation and transcripts as NOT_FOUND", async () => {
    const create = await app.errorCode(`mutation($id: UUID!) { createTranscript(input: { conversationId: $id, format: CSV }) { id } }`, { id: conversationId }, bob.token);
    expect(create).toBe("NOT_FOUND");
    expect(await app.errorCode(`query($id: UUID!) { transcript(id: $id) { id } }`, { id: transcriptId }, bob.token)).toBe("NOT_FOUND");
  });

  it("lets admins and granted services read and export it", async () => {
    expect((await readTranscript(app, admin, transcriptId)).id).toBe(transcriptId);
    expect((await readTranscript(app, service, transcriptId)).id).toBe(transcriptId);
    expect((await createTranscript(app, service, { conversationId, format: "JSON" })).status).toBe("READY");
  });

  it("lists a conversation's transcripts newest first, loading them for many conversations in one query", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await newConversation(bob, 1);
      ids.push(id);
      await createTranscript(app, bob, { conversationId: id, format: "CSV" });
      await createTranscript(app, bob, { conversationId: id, format: "JSON" });
    }
    const statements: string[] = [];
    const listen = (query: { sql: string }) => statements.push(query.sql);
    app.database.db.knex.on("query", listen);
    try {
      const { conversations } = await app.ok(`{ conversations(first: 10) { edges { node { id transcripts { format createdAt } } } } }`, {}, bob.token);
      for (const edge of conversations.edges) expect(edge.node.transcripts.map((t: { format: string }) => t.format)).toEqual(["JSON", "CSV"]);
      expect(conversations.edges).toHaveLength(5);
    } finally {
      app.database.db.knex.off("query", listen);
    }
    expect(statements.filter((sql) => /from "transcripts"/.test(sql))).toHaveLength(1);
  });
});

describe("GET /transcripts/:id/download", () => {
  let ready: TranscriptData;

  beforeAll(async () => {
    ready = await createTranscript(app, alice, { conversationId, format: "CSV" });
  });

  it("streams the file with its type, length, name and hash", async () => {
    const got = await download(app, ready.id, alice.token);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(Number(got.headers.get("content-length"))).toBe(ready.fileSizeBytes);
    expect(got.headers.get("content-disposition")).toBe(`attachment; filename="transcript-${ready.id}.csv"`);
    expect(got.headers.get("etag")).toBe(`"${ready.sha256}"`);
    expect(sha256(got.bytes)).toBe(ready.sha256);
    const head = await download(app, ready.id, alice.token, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(ready.fileSizeBytes));
    expect(head.bytes.length).toBe(0);
  });

  it("serves JSON as application/json", async () => {
    const transcript = await createTranscript(app, alice, { conversationId, format: "JSON", toSeq: 2 });
    const got = await download(app, transcript.id, admin.token);
    expect(got.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(json(got.bytes).messageCount).toBe(2);
  });

  it("is authorised like reading the conversation: 401 without a valid token, 404 for outsiders, unknown and malformed ids", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000";
    expect((await download(app, ready.id)).status).toBe(401);
    expect((await download(app, ready.id, "pk_not-a-real-key")).status).toBe(401);
    const outsider = await download(app, ready.id, bob.token);
    expect(outsider.status).toBe(404);
    expect(JSON.parse(outsider.bytes.toString())).toEqual({ errors: [{ message: "Transcript not found", extensions: { code: "NOT_FOUND" } }] });
    expect((await download(app, unknown, alice.token)).status).toBe(404);
    expect((await download(app, "not-a-uuid", alice.token)).status).toBe(404);
    expect((await download(app, ready.id, service.token)).status).toBe(200);
  });

  it("answers 409 CONFLICT while a transcript is not READY", async () => {
    const [row] = await app.database.db
      .knex("transcripts")
      .insert({ conversationId, format: "csv", status: "failed", error: "x", createdBy: alice.user.id })
      .returning("id");
    const got = await download(app, row.id, alice.token);
    expect(got.status).toBe(409);
    expect(JSON.parse(got.bytes.toString()).errors[0].extensions.code).toBe("CONFLICT");
  });
});

describe("background exports", () => {
  let jobs: TestApp;
  let jobsDir: string;
  let owner: TestUser;

  beforeAll(async () => {
    jobsDir = tempDir();
    jobs = await createTestApp({ TRANSCRIPT_DIR: jobsDir, TRANSCRIPT_INLINE_MAX_MESSAGES: "3" });
    owner = await jobs.makeUser(Role.MEMBER);
  });
  afterAll(() => jobs.dispose());

  it("returns PENDING for an export over the threshold, then becomes READY; small ones stay inline", async () => {
    const id = await newConversation(owner, 12, jobs);
    const pending = await createTranscript(jobs, owner, { conversationId: id, format: "JSON" });
    expect(pending).toMatchObject({ status: "PENDING", messageCount: null, sha256: null, downloadPath: null });
    const done = await settled(jobs, owner, pending.id);
    expect(done).toMatchObject({ status: "READY", messageCount: 12, error: null });
    const got = await download(jobs, done.id, owner.token);
    expect(sha256(got.bytes)).toBe(done.sha256);
    expect(json(got.bytes).messages.map((m: { content: string }) => m.content)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i + 1}`));
    const { conversation } = await jobs.ok(`query($id: UUID!) { conversation(id: $id) { transcripts { id status } } }`, { id }, owner.token);
    expect(conversation.transcripts).toEqual([{ id: done.id, status: "READY" }]);
    expect((await createTranscript(jobs, owner, { conversationId: id, format: "CSV", fromSeq: 10 })).status).toBe("READY");
  });

  it("exports the messages that existed when the transcript was created, not later ones", async () => {
    const id = await newConversation(owner, 5, jobs);
    const pending = await createTranscript(jobs, owner, { conversationId: id, format: "CSV" });
    await jobs.ok(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "later" }) { id } }`, { id }, owner.token);
    const done = await settled(jobs, owner, pending.id);
    expect(done.messageCount).toBe(5);
    expect((await download(jobs, done.id, owner.token)).bytes.toString()).not.toContain("later");
  });

  it("takes over an export whose server died, when a server starts", async () => {
    const id = await newConversation(owner, 4, jobs);
    const knex = jobs.database.db.knex;
    const base = { conversationId: id, createdBy: owner.user.id, snapshotSeq: 4, status: "pending" };
    const stale = knex.raw("now() - interval '1 hour'");
    const [orphan] = await knex("transcripts").insert({ ...base, format: "json", attempts: 1, heartbeatAt: stale }).returning("id");
    const [hopeless] = await knex("transcripts").insert({ ...base, format: "csv", attempts: 3, heartbeatAt: stale }).returning("id");
    const [alive] = await knex("transcripts").insert({ ...base, format: "csv", attempts: 1, heartbeatAt: knex.raw("now()") }).returning("id");
    const restarted = await createTestApp({ TRANSCRIPT_DIR: jobsDir }, jobs.database);
    try {
      const done = await settled(restarted, owner, orphan.id);
      expect(done).toMatchObject({ status: "READY", messageCount: 4 });
      expect(sha256((await download(restarted, orphan.id, owner.token)).bytes)).toBe(done.sha256);
      expect(await settled(restarted, owner, hopeless.id)).toMatchObject({ status: "FAILED", error: "The export was interrupted 3 times" });
      // A fresh heartbeat belongs to a live server: left alone.
      expect(await knex("transcripts").where({ id: alive.id }).first("status", "attempts")).toEqual({ status: "pending", attempts: 1 });
      expect(await knex("transcripts").where({ id: orphan.id }).first("attempts")).toEqual({ attempts: 2 });
    } finally {
      await restarted.dispose();
      await knex("transcripts").where({ id: alive.id }).delete();
    }
  });
});

describe("deleting a conversation", () => {
  it("deletes its transcripts' rows and files, and nothing of other conversations", async () => {
    const id = await newConversation(alice, 3);
    const other = await newConversation(alice, 2);
    const mine = [await createTranscript(app, alice, { conversationId: id, format: "CSV" }), await createTranscript(app, alice, { conversationId: id, format: "JSON" })];
    const kept = await createTranscript(app, alice, { conversationId: other, format: "CSV" });
    expect(filesBelow(path.join(dir, "transcripts", id))).toHaveLength(2);
    await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id }, alice.token);
    expect(filesBelow(path.join(dir, "transcripts", id))).toEqual([]);
    expect(await app.database.db.knex("transcripts").whereIn("id", mine.map((t) => t.id))).toEqual([]);
    expect(filesBelow(path.join(dir, "transcripts", other))).toEqual([`${kept.id}-1.csv`]);
    expect((await download(app, kept.id, alice.token)).status).toBe(200);
  });
});

describe("failures", () => {
  it("marks an export FAILED with a clear error when the storage cannot be written, leaving no file", async () => {
    const blocker = path.join(tempDir(), "a-file");
    fs.writeFileSync(blocker, "not a folder");
    const broken = await createTestApp({ TRANSCRIPT_DIR: path.join(blocker, "transcripts"), TRANSCRIPT_INLINE_MAX_MESSAGES: "2" });
    try {
      const owner = await broken.makeUser(Role.MEMBER);
      const id = await newConversation(owner, 2, broken);
      const inline = await createTranscript(broken, owner, { conversationId: id, format: "CSV" });
      expect(inline).toMatchObject({ status: "FAILED", error: "Transcript storage is unavailable", sha256: null, fileSizeBytes: null, downloadPath: null });
      await broken.ok(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "third" }) { id } }`, { id }, owner.token);
      const background = await createTranscript(broken, owner, { conversationId: id, format: "JSON" });
      expect(background.status).toBe("PENDING");
      expect(await settled(broken, owner, background.id)).toMatchObject({ status: "FAILED", error: "Transcript storage is unavailable" });
      expect((await download(broken, background.id, owner.token)).status).toBe(409);
      const row = await broken.database.db.knex("transcripts").where({ id: background.id }).first("storageKey", "completedAt");
      expect(row.storageKey).toBeNull();
      expect(row.completedAt).toBeInstanceOf(Date);
    } finally {
      await broken.dispose();
    }
  });

  it("removes the partial file when an export breaks off midway, and says which message stopped it", async () => {
    const encryptedDir = tempDir();
    const encrypted = await createTestApp({ TRANSCRIPT_DIR: encryptedDir, MESSAGE_ENCRYPTION_KEYS: KEY_RING });
    try {
      const owner = await encrypted.makeUser(Role.MEMBER);
      const id = await newConversation(owner, 0, encrypted);
      // 2,500 messages: the damaged one is read after two pages were already written to the file.
      await encrypted.database.db.knex.raw(
        `insert into messages (conversation_id, seq, role, content) select ?, s, 'user', 'row ' || s from generate_series(1, 2500) s`,
        [id],
      );
      await encrypted.database.db.knex("conversations").where({ id }).update({ lastSeq: 2500, messageCount: 2500 });
      await encrypted.database.db.knex("messages").where({ conversationId: id, seq: 2400 }).update({ content: null, encryptedContent: Buffer.from("garbage"), keyId: "k1" });
      const failed = await createTranscript(encrypted, owner, { conversationId: id, format: "JSON" });
      const done = failed.status === "PENDING" ? await settled(encrypted, owner, failed.id) : failed;
      expect(done).toMatchObject({ status: "FAILED", error: "Message 2400 could not be decrypted", sha256: null });
      expect(filesBelow(encryptedDir)).toEqual([]);
    } finally {
      await encrypted.dispose();
    }
  });
});

describe("encrypted messages", () => {
  it("are exported as their plain text, in both formats", async () => {
    const encrypted = await createTestApp({ TRANSCRIPT_DIR: tempDir(), MESSAGE_ENCRYPTION_KEYS: KEY_RING });
    try {
      const owner = await encrypted.makeUser(Role.MEMBER);
      const { createConversation } = await encrypted.ok(`mutation { createConversation(input: { title: "secret" }) { id } }`, {}, owner.token);
      const id = createConversation.id;
      for (const text of ["top secret, \"quoted\"", "=SUM(1)", "😀"]) {
        await encrypted.ok(`mutation($id: UUID!, $c: String!) { addMessage(input: { conversationId: $id, content: $c }) { id } }`, { id, c: text }, owner.token);
      }
      const stored = await encrypted.database.db.knex("messages").where({ conversationId: id }).select("content", "encryptedContent");
      expect(stored.every((row) => row.content === null && row.encryptedContent)).toBe(true);
      const asJson = await createTranscript(encrypted, owner, { conversationId: id, format: "JSON" });
      const document = json((await download(encrypted, asJson.id, owner.token)).bytes);
      expect(document.messages.map((m: { content: string }) => m.content)).toEqual(["top secret, \"quoted\"", "=SUM(1)", "😀"]);
      const asCsv = await createTranscript(encrypted, owner, { conversationId: id, format: "CSV" });
      const records = parse((await download(encrypted, asCsv.id, owner.token)).bytes);
      expect(records.slice(1).map((record: string[]) => record[8])).toEqual(["top secret, \"quoted\"", "'=SUM(1)", "😀"]);
    } finally {
      await encrypted.dispose();
    }
  });
});
