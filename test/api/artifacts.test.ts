/**
 * Artifacts on the disk backend, driven over HTTP as clients drive them: text versions and their history,
 * files uploaded (PUT /artifacts/:id/content) and downloaded (GET /artifacts/:id/download, ranges included),
 * who may write and who may read, hostile titles, and the files going away with their conversation.
 * test/api/artifacts-s3.test.ts runs the file paths against a real S3-compatible server.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";
import { filesBelow } from "../helpers/transcripts";
import { artifactApi, type ArtifactApi } from "../helpers/artifacts";

const MAX_TEXT = 1024;
const MAX_FILE = 64 * 1024;

let outer: string;
let dir: string;
let app: TestApp;
let api: ArtifactApi;
let alice: TestUser; // owns the conversations (a member: reads artifacts, writes none)
let bob: TestUser; // another member
let service: TestUser; // granted the WEB origin: writes assistant messages and artifacts
let stranger: TestUser; // a service without grants
let admin: TestUser;
let counter: StatementCounter;

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

beforeAll(async () => {
  // The storage folder inside a folder of its own, so that "nothing was written elsewhere" can be checked.
  outer = fs.mkdtempSync(path.join(os.tmpdir(), "parley-artifacts-"));
  dir = path.join(outer, "store");
  app = await createTestApp({ TRANSCRIPT_DIR: dir, ARTIFACT_MAX_TEXT_BYTES: String(MAX_TEXT), ARTIFACT_MAX_FILE_BYTES: String(MAX_FILE), AUTH_CACHE_SECONDS: "0" });
  counter = countStatements(app);
  api = artifactApi(app);
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  service = await app.makeUser(Role.SERVICE, "service");
  stranger = await app.makeUser(Role.SERVICE, "stranger");
  admin = await app.makeUser(Role.ADMIN, "admin");
  await app.grant(service, { origin: "web" });
  // The token's once-a-minute last_used_at write is not awaited: keep it out of the statement counts.
  const knex = app.database.db.knex;
  await knex("api_keys").update({ lastUsedAt: knex.raw("now() + interval '1 day'") });
});
afterAll(async () => {
  await app?.dispose();
  fs.rmSync(outer, { recursive: true, force: true });
});

const rowCount = async () => Number((await app.database.db.knex("artifacts").count("* as n"))[0].n);

describe("text artifacts", () => {
  it("are created on an assistant message and read by whoever reads the conversation", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const created = await api.create(service, { messageId: assistantId, kind: "CODE", title: "fib.ts", language: "typescript", content: "export const fib = 1;" });
    expect(created).toMatchObject({
      version: 1,
      kind: "CODE",
      title: "fib.ts",
      language: "typescript",
      mimeType: null,
      content: "export const fib = 1;",
      sizeBytes: 21,
      sha256: null,
      status: "READY",
      downloadPath: `/artifacts/${created.id}/download`,
      uploadPath: null,
      parent: null,
      message: { id: assistantId },
      conversation: { id: conversationId },
      createdBy: { id: service.user.id },
    });
    const { artifact } = await app.ok(`query($id: UUID!) { artifact(id: $id) { id content versions { id version } } }`, { id: created.id }, alice.token);
    expect(artifact).toEqual({ id: created.id, content: "export const fib = 1;", versions: [{ id: created.id, version: 1 }] });
    const { conversation } = await app.ok(
      `query($id: UUID!) { conversation(id: $id) { artifacts { id } messages(first: 10) { edges { node { id artifacts { id } } } } } }`,
      { id: conversationId },
      alice.token,
    );
    expect(conversation.artifacts).toEqual([{ id: created.id }]);
    expect(conversation.messages.edges.map((edge: any) => edge.node)).toEqual([
      { id: expect.any(String), artifacts: [] }, // the user's question
      { id: assistantId, artifacts: [{ id: created.id }] },
    ]);
  });

  it("downloads inline text as text, with its media type", async () => {
    const { assistantId } = await api.conversation(alice, service);
    const plain = await api.create(service, { messageId: assistantId, kind: "DOCUMENT", title: "notes", content: "héllo\n" });
    const markdown = await api.create(service, { messageId: assistantId, kind: "DOCUMENT", title: "readme.md", mimeType: "Text/Markdown", content: "# Title" });
    expect(markdown.mimeType).toBe("text/markdown");
    const got = await api.download(plain.id, alice.token);
    expect(got.status).toBe(200);
    expect(got.bytes.toString("utf8")).toBe("héllo\n");
    expect(got.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(got.headers.get("content-length")).toBe(String(Buffer.byteLength("héllo\n")));
    expect((await api.download(markdown.id, alice.token)).headers.get("content-type")).toBe("text/markdown; charset=utf-8");
  });

  it("refuses text above ARTIFACT_MAX_TEXT_BYTES (counted in UTF-8) with PAYLOAD_TOO_LARGE, storing nothing", async () => {
    const { assistantId } = await api.conversation(alice, service);
    const before = await rowCount();
    // 513 characters, 1,026 bytes: only a byte count refuses it.
    const input = { messageId: assistantId, kind: "DOCUMENT", title: "big", content: "é".repeat(MAX_TEXT / 2 + 1) };
    expect(await app.errorCode(api.CREATE, { input }, service.token)).toBe("PAYLOAD_TOO_LARGE");
    expect(await rowCount()).toBe(before);
    const atLimit = await api.create(service, { ...input, content: "é".repeat(MAX_TEXT / 2) });
    expect(atLimit.sizeBytes).toBe(MAX_TEXT);
    const edit = `mutation($id: UUID!, $input: EditArtifactInput!) { editArtifact(id: $id, input: $input) { id } }`;
    expect(await app.errorCode(edit, { id: atLimit.id, input: { content: "x".repeat(MAX_TEXT + 1) } }, service.token)).toBe("PAYLOAD_TOO_LARGE");
    expect(await rowCount()).toBe(before + 1);
  });

  it("refuses bad input with clear codes, storing nothing", async () => {
    const { conversationId, assistantId, questionId } = await api.conversation(alice, service);
    const before = await rowCount();
    const input = { messageId: assistantId, kind: "CODE", title: "x", content: "x" };
    expect(await app.errorCode(api.CREATE, { input: { ...input, messageId: questionId } }, service.token)).toBe("BAD_USER_INPUT"); // a USER message
    expect(await app.errorCode(api.CREATE, { input: { ...input, mimeType: "text/html; charset=utf-8" } }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(api.CREATE, { input: { ...input, title: "   " } }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(api.CREATE, { input: { ...input, content: "nul \u0000" } }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(api.CREATE, { input: { ...input, kind: "SCRIPT" } }, service.token)).toBe("BAD_USER_INPUT");
    // Writers are services that reach the conversation, and admins; its owner, a member, reads only.
    expect(await app.errorCode(api.CREATE, { input }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(api.CREATE, { input }, bob.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(api.CREATE, { input }, stranger.token)).toBe("NOT_FOUND");
    await app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: conversationId }, alice.token);
    expect(await app.errorCode(api.CREATE, { input }, service.token)).toBe("CONFLICT");
    expect(await rowCount()).toBe(before);
    const { conversationId: other, assistantId: otherAnswer } = await api.conversation(alice, service);
    expect((await api.create(admin, { ...input, messageId: otherAnswer })).createdBy).toEqual({ id: admin.user.id });
    expect(other).not.toBe(conversationId);
  });
});

describe("versions", () => {
  it("an edit adds version n + 1 linked to the version it edits; old versions stay as they were", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const later = await api.say(service, conversationId, "ASSISTANT", "here is a fix");
    const v1 = await api.create(service, { messageId: assistantId, kind: "CODE", title: "app.py", language: "python", content: "print(1)" });
    const v2 = await api.edit(service, v1.id, { content: "print(2)", messageId: later });
    const v3 = await api.edit(service, v2.id, { content: "print(3)", title: "main.py" });
    expect(v2).toMatchObject({ version: 2, parent: { id: v1.id }, title: "app.py", language: "python", content: "print(2)", message: { id: later } });
    expect(v3).toMatchObject({ version: 3, parent: { id: v2.id }, title: "main.py", content: "print(3)", message: { id: later } });
    // Editing an old version continues the history rather than forking its numbers.
    const v4 = await api.edit(admin, v1.id, { content: "print(4)" });
    expect(v4).toMatchObject({ version: 4, parent: { id: v1.id }, title: "app.py", message: { id: assistantId } });

    const { artifact } = await app.ok(`query($id: UUID!) { artifact(id: $id) { content versions { id version content parent { id } } } }`, { id: v1.id }, alice.token);
    expect(artifact.content).toBe("print(1)");
    expect(artifact.versions).toEqual([
      { id: v1.id, version: 1, content: "print(1)", parent: null },
      { id: v2.id, version: 2, content: "print(2)", parent: { id: v1.id } },
      { id: v3.id, version: 3, content: "print(3)", parent: { id: v2.id } },
      { id: v4.id, version: 4, content: "print(4)", parent: { id: v1.id } },
    ]);
    // The conversation lists each artifact once, at its latest version; kind filters.
    const doc = await api.create(service, { messageId: later, kind: "DOCUMENT", title: "notes", content: "n" });
    const LIST = `query($id: UUID!, $kind: ArtifactKind) { conversation(id: $id) { artifacts(kind: $kind) { id version } } }`;
    expect((await app.ok(LIST, { id: conversationId }, alice.token)).conversation.artifacts).toEqual([
      { id: doc.id, version: 1 },
      { id: v4.id, version: 4 },
    ]);
    expect((await app.ok(LIST, { id: conversationId, kind: "CODE" }, alice.token)).conversation.artifacts).toEqual([{ id: v4.id, version: 4 }]);
    expect((await app.ok(LIST, { id: conversationId, kind: "IMAGE" }, alice.token)).conversation.artifacts).toEqual([]);
    // Message.artifacts: the versions each message produced.
    const MESSAGE = `query($id: UUID!) { message(id: $id) { artifacts { version } } }`;
    expect((await app.ok(MESSAGE, { id: later }, alice.token)).message.artifacts).toEqual([{ version: 2 }, { version: 3 }, { version: 1 }]);
  });

  it("concurrent edits of one history get distinct numbers", async () => {
    const { assistantId } = await api.conversation(alice, service);
    const v1 = await api.create(service, { messageId: assistantId, kind: "CODE", title: "c", content: "0" });
    const edits = await Promise.all([1, 2, 3, 4, 5].map((n) => api.edit(service, v1.id, { content: String(n) })));
    expect(edits.map((edit) => edit.version).sort()).toEqual([2, 3, 4, 5, 6]);
  });

  it("an edit's message must be an ASSISTANT or TOOL message of the same conversation", async () => {
    const { assistantId, questionId } = await api.conversation(alice, service);
    const { assistantId: elsewhere } = await api.conversation(alice, service);
    const v1 = await api.create(service, { messageId: assistantId, kind: "CODE", title: "c", content: "0" });
    const EDIT = `mutation($id: UUID!, $input: EditArtifactInput!) { editArtifact(id: $id, input: $input) { id } }`;
    expect(await app.errorCode(EDIT, { id: v1.id, input: { content: "1", messageId: elsewhere } }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(EDIT, { id: v1.id, input: { content: "1", messageId: questionId } }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(EDIT, { id: v1.id, input: { content: "1" } }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(EDIT, { id: v1.id, input: { content: "1" } }, bob.token)).toBe("NOT_FOUND");
  });
});

describe("files", () => {
  it("go up once, streamed, and come down whole or by range with the right headers", async () => {
    const { assistantId } = await api.conversation(alice, service);
    const pending = await api.create(service, { messageId: assistantId, kind: "IMAGE", title: "chart.png" });
    expect(pending).toMatchObject({ status: "PENDING", content: null, sizeBytes: null, downloadPath: null, uploadPath: `/artifacts/${pending.id}/content` });
    expect((await api.download(pending.id, alice.token)).status).toBe(409); // nothing to download yet

    const bytes = randomBytes(10_000);
    const put = await api.upload(pending.id, service.token, bytes, "image/png");
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ id: pending.id, status: "READY", sizeBytes: 10_000, sha256: sha256(bytes), mimeType: "image/png", downloadPath: `/artifacts/${pending.id}/download` });
    const read = await api.get(pending.id, alice);
    expect(read).toMatchObject({ status: "READY", sizeBytes: 10_000, sha256: sha256(bytes), mimeType: "image/png", uploadPath: null });
    // Stored under ids only.
    expect(filesBelow(dir).filter((file) => file.includes(pending.id))).toEqual([expect.stringMatching(new RegExp(`^artifacts[/\\\\]${read.conversation.id}[/\\\\]${pending.id}[/\\\\][0-9a-f]{16}$`))]);

    const whole = await api.download(pending.id, alice.token);
    expect(whole.status).toBe(200);
    expect(whole.bytes.equals(bytes)).toBe(true);
    expect(whole.headers.get("content-type")).toBe("image/png");
    expect(whole.headers.get("content-length")).toBe("10000");
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(whole.headers.get("x-content-type-options")).toBe("nosniff");
    expect(whole.headers.get("content-disposition")).toBe(`attachment; filename="chart.png"; filename*=UTF-8''chart.png`);
    expect(whole.headers.get("etag")).toBe(`"${sha256(bytes)}"`);

    const middle = await api.download(pending.id, alice.token, { range: "bytes=100-199" });
    expect(middle.status).toBe(206);
    expect(middle.headers.get("content-range")).toBe("bytes 100-199/10000");
    expect(middle.headers.get("content-length")).toBe("100");
    expect(middle.bytes.equals(bytes.subarray(100, 200))).toBe(true);
    const tail = await api.download(pending.id, alice.token, { range: "bytes=-10" });
    expect(tail.status).toBe(206);
    expect(tail.bytes.equals(bytes.subarray(9_990))).toBe(true);
    const open = await api.download(pending.id, alice.token, { range: "bytes=9000-" });
    expect(open.headers.get("content-range")).toBe("bytes 9000-9999/10000");
    expect(open.bytes.equals(bytes.subarray(9_000))).toBe(true);
    for (const range of ["bytes=10000-", "bytes=500-100", "bytes=-0"]) {
      const refused = await api.download(pending.id, alice.token, { range });
      expect(refused.status).toBe(416);
      expect(refused.headers.get("content-range")).toBe("bytes */10000");
      expect(refused.bytes.length).toBe(0);
    }
    const head = await api.download(pending.id, alice.token, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("10000");
    expect(head.bytes.length).toBe(0);

    // A READY version never changes: a second upload is refused and the first file stays.
    const again = await api.upload(pending.id, service.token, randomBytes(10), "image/png");
    expect(again.status).toBe(409);
    expect(again.json.errors[0].extensions).toEqual({ code: "CONFLICT", reason: "ARTIFACT_READY" });
    expect((await api.download(pending.id, alice.token)).bytes.equals(bytes)).toBe(true);
    expect(filesBelow(dir).filter((file) => file.includes(pending.id))).toHaveLength(1);
    // A new version is the way: a file edit is PENDING again and gets its own file.
    const v2 = await api.edit(service, pending.id, {});
    expect(v2).toMatchObject({ version: 2, status: "PENDING", title: "chart.png", mimeType: "image/png" });
    expect((await api.upload(v2.id, service.token, Buffer.from("v2"), "image/png")).status).toBe(200);
    expect((await api.download(v2.id, alice.token)).bytes.toString()).toBe("v2");
    expect((await api.download(pending.id, alice.token)).bytes.equals(bytes)).toBe(true);
    await api.removeConversation(alice, read.conversation.id);
  });

  it("takes a file without Content-Type as the version's media type, or as octet-stream", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const typed = await api.create(service, { messageId: assistantId, kind: "DATA", title: "rows.csv", mimeType: "text/csv" });
    const untyped = await api.create(service, { messageId: assistantId, kind: "FILE", title: "blob" });
    expect((await api.upload(typed.id, service.token, Buffer.from("a,b\n"))).json.mimeType).toBe("text/csv");
    expect((await api.upload(untyped.id, service.token, Buffer.from([0, 1, 2]))).json.mimeType).toBe("application/octet-stream");
    expect((await api.download(untyped.id, alice.token)).headers.get("content-type")).toBe("application/octet-stream");
    const badType = await api.create(service, { messageId: assistantId, kind: "FILE", title: "bad" });
    expect((await api.upload(badType.id, service.token, Buffer.from("x"), "text/html\r\nx-evil: 1".replace(/\r\n/, " "))).status).toBe(400);
    await api.removeConversation(alice, conversationId);
  });

  it("refuses a file above ARTIFACT_MAX_FILE_BYTES, declared or streamed, storing nothing", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const pending = await api.create(service, { messageId: assistantId, kind: "FILE", title: "big.bin" });
    const declared = await api.upload(pending.id, service.token, randomBytes(MAX_FILE + 1));
    expect(declared.status).toBe(413);
    expect(declared.json.errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
    // No Content-Length: the limit is enforced on the bytes as they arrive.
    const streamed = await api.upload(pending.id, service.token, randomBytes(MAX_FILE + 1), undefined, { chunked: true });
    expect(streamed.status).toBe(413);
    expect(streamed.json.errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
    expect(filesBelow(dir).filter((file) => file.includes(pending.id))).toEqual([]);
    expect(await api.get(pending.id, alice)).toMatchObject({ status: "PENDING", sizeBytes: null, sha256: null });
    // Exactly the limit, streamed, is fine.
    const exact = randomBytes(MAX_FILE);
    expect((await api.upload(pending.id, service.token, exact, undefined, { chunked: true })).json).toMatchObject({ sizeBytes: MAX_FILE, sha256: sha256(exact) });
    await api.removeConversation(alice, conversationId);
  });

  it("refuses uploads from anyone but the writer side, storing nothing", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const pending = await api.create(service, { messageId: assistantId, kind: "FILE", title: "f" });
    const text = await api.create(service, { messageId: assistantId, kind: "CODE", title: "t", content: "x" });
    const body = Buffer.from("not yours");
    expect((await api.upload(pending.id, alice.token, body)).status).toBe(403); // the owner reads, does not write
    const outsider = await api.upload(pending.id, bob.token, body);
    const unknown = await api.upload("00000000-0000-4000-8000-000000000000", bob.token, body);
    expect(outsider.status).toBe(404);
    expect(outsider.text).toBe(unknown.text);
    expect((await api.upload(pending.id, stranger.token, body)).status).toBe(404);
    expect((await api.upload(pending.id, undefined, body)).status).toBe(401);
    expect((await api.upload(pending.id, "pk_not-a-real-key", body)).status).toBe(401);
    expect((await api.upload("../../etc/passwd", service.token, body)).status).toBe(404);
    expect((await api.upload(text.id, service.token, body)).json.errors[0].extensions).toEqual({ code: "CONFLICT", reason: "ARTIFACT_IS_TEXT" });
    expect(filesBelow(dir).filter((file) => file.includes(conversationId))).toEqual([]);
    expect(await api.get(pending.id, alice)).toMatchObject({ status: "PENDING" });
    await api.removeConversation(alice, conversationId);
  });

  it("never lets a title reach a path: hostile titles only name the download, sanitised", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const cases: [string, string, string][] = [
      ["../../etc/passwd", `filename="_.._etc_passwd"`, `filename*=UTF-8''_.._etc_passwd`],
      ["..\\..\\boot.ini", `filename="_.._boot.ini"`, `filename*=UTF-8''_.._boot.ini`],
      ['Résumé "final"; v2.txt', `filename="R_sum_ _final_; v2.txt"`, `filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%3B%20v2.txt`],
      ["line\r\nx-injected: 1", `filename="line__x-injected: 1"`, `filename*=UTF-8''line__x-injected%3A%201`],
      ["...", `filename="artifact-`, ""],
    ];
    for (const [title, ascii, utf8] of cases) {
      const artifact = await api.create(service, { messageId: assistantId, kind: "FILE", title });
      expect((await api.upload(artifact.id, service.token, Buffer.from(title))).status).toBe(200);
      const got = await api.download(artifact.id, alice.token);
      expect(got.status).toBe(200);
      expect(got.headers.get("x-injected")).toBeNull();
      const disposition = got.headers.get("content-disposition")!;
      expect(disposition.startsWith(`attachment; ${ascii}`)).toBe(true);
      expect(disposition).toContain(utf8);
      expect(disposition).not.toMatch(/[/\\]/);
      expect(got.bytes.toString()).toBe(title);
    }
    // Every file is below artifacts/<conversation>/, named by ids; nothing was written anywhere else.
    const files = filesBelow(dir).filter((file) => file.includes(conversationId));
    expect(files).toHaveLength(cases.length);
    for (const file of files) expect(file).toMatch(/^artifacts.[0-9a-f-]{36}.[0-9a-f-]{36}.[0-9a-f]{16}$/);
    expect(filesBelow(outer).filter((file) => !file.startsWith(`store${path.sep}artifacts${path.sep}`))).toEqual([]);
    await api.removeConversation(alice, conversationId);
  });
});

describe("reading", () => {
  it("is the conversation's readers' only: others get NOT_FOUND in GraphQL and 404 downloads identical to an unknown id", async () => {
    const { assistantId } = await api.conversation(alice, service);
    const file = await api.create(service, { messageId: assistantId, kind: "FILE", title: "secret.txt" });
    await api.upload(file.id, service.token, Buffer.from("alice's secret"), "text/plain");
    const text = await api.create(service, { messageId: assistantId, kind: "CODE", title: "secret.py", content: "SECRET = 1" });
    for (const id of [file.id, text.id]) {
      expect(await app.errorCode(`query($id: UUID!) { artifact(id: $id) { id } }`, { id }, bob.token)).toBe("NOT_FOUND");
      expect(await app.errorCode(`query($id: UUID!) { artifact(id: $id) { id } }`, { id }, stranger.token)).toBe("NOT_FOUND");
      const outsider = await api.download(id, bob.token);
      const unknown = await api.download("00000000-0000-4000-8000-000000000000", bob.token);
      const malformed = await api.download("not-an-id", bob.token);
      expect(outsider.status).toBe(404);
      expect(outsider.bytes.toString()).toBe(unknown.bytes.toString());
      expect(outsider.bytes.toString()).toBe(malformed.bytes.toString());
      expect(outsider.bytes.toString()).not.toMatch(/secret/i);
      expect((await api.download(id, stranger.token)).status).toBe(404);
      expect((await api.download(id, undefined)).status).toBe(401);
      expect((await api.download(id, "pk_not-a-real-key")).status).toBe(401);
      expect((await api.download(id, alice.token)).status).toBe(200);
      expect((await api.download(id, admin.token)).status).toBe(200);
    }
  });
});

describe("deleting", () => {
  it("a conversation deletes its artifacts' files, and nothing of other conversations", async () => {
    const kept = await api.conversation(alice, service);
    const keptFile = await api.create(service, { messageId: kept.assistantId, kind: "FILE", title: "keep" });
    await api.upload(keptFile.id, service.token, Buffer.from("keep me"));
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const artifact = await api.create(service, { messageId: assistantId, kind: "FILE", title: `f${n}` });
      await api.upload(artifact.id, service.token, randomBytes(1000 * n));
      ids.push(artifact.id);
    }
    await api.edit(service, ids[0], {}); // a PENDING version: no file
    await api.create(service, { messageId: assistantId, kind: "CODE", title: "t", content: "x" });
    expect(filesBelow(dir).filter((file) => file.includes(conversationId))).toHaveLength(3);
    await api.removeConversation(alice, conversationId);
    expect(filesBelow(dir).filter((file) => file.includes(conversationId))).toEqual([]);
    expect(Number((await app.database.db.knex("artifacts").where({ conversationId }).count("* as n"))[0].n)).toBe(0);
    expect((await api.download(keptFile.id, alice.token)).bytes.toString()).toBe("keep me");
    expect(filesBelow(dir).filter((file) => file.includes(kept.conversationId))).toHaveLength(1);
  });

  it("deleteArtifact removes every version of the history and their files; writers only", async () => {
    const { conversationId, assistantId } = await api.conversation(alice, service);
    const v1 = await api.create(service, { messageId: assistantId, kind: "FILE", title: "f" });
    await api.upload(v1.id, service.token, Buffer.from("one"));
    const v2 = await api.edit(service, v1.id, {});
    await api.upload(v2.id, service.token, Buffer.from("two"));
    const other = await api.create(service, { messageId: assistantId, kind: "CODE", title: "other", content: "x" });
    const DELETE = `mutation($id: UUID!) { deleteArtifact(id: $id) }`;
    expect(await app.errorCode(DELETE, { id: v2.id }, alice.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DELETE, { id: v2.id }, bob.token)).toBe("NOT_FOUND");
    expect(filesBelow(dir).filter((file) => file.includes(conversationId))).toHaveLength(2);
    expect((await app.ok(DELETE, { id: v2.id }, service.token)).deleteArtifact).toBe(true);
    expect(filesBelow(dir).filter((file) => file.includes(conversationId))).toEqual([]);
    for (const id of [v1.id, v2.id]) expect(await app.errorCode(`query($id: UUID!) { artifact(id: $id) { id } }`, { id }, alice.token)).toBe("NOT_FOUND");
    expect((await api.get(other.id, alice)).content).toBe("x");
    await api.removeConversation(alice, conversationId);
  });
});

describe("N+1", () => {
  it("Message.artifacts costs one statement for a page of 5 or of 50 messages", async () => {
    const extra: Record<number, number> = {};
    for (const n of [5, 50]) {
      const conversationId = await api.newConversation(alice);
      for (let i = 0; i < n; i++) {
        const messageId = await api.say(service, conversationId, "ASSISTANT", `answer ${i}`);
        // Every message has artifacts of its own, so DataLoader's merging of equal keys cannot hide a query per message.
        await api.create(service, { messageId, kind: "CODE", title: `a${i}`, content: String(i) });
        if (i % 2 === 0) await api.create(service, { messageId, kind: "DATA", title: `b${i}`, content: String(i) });
      }
      const page = (fields: string) => `query($id: UUID!) { conversation(id: $id) { messages(last: 50) { edges { node { id ${fields} } } } } }`;
      const without = await counter.run(page(""), { id: conversationId }, alice.token);
      const withArtifacts = await counter.run(page("artifacts { id title version }"), { id: conversationId }, alice.token);
      const nodes = withArtifacts.data.conversation.messages.edges.map((edge: any) => edge.node);
      expect(nodes).toHaveLength(n);
      expect(nodes.flatMap((node: any) => node.artifacts)).toHaveLength(n + Math.ceil(n / 2));
      extra[n] = withArtifacts.statements.length - without.statements.length;
    }
    expect(extra).toEqual({ 5: 1, 50: 1 });
  });

  it("Conversation.artifacts costs one statement for a list of conversations", async () => {
    const conversationIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { conversationId, assistantId } = await api.conversation(alice, service);
      await api.create(service, { messageId: assistantId, kind: "CODE", title: `c${i}`, content: "x" });
      conversationIds.push(conversationId);
    }
    const query = (fields: string) => `{ conversations(first: 100) { edges { node { id ${fields} } } } }`;
    const without = await counter.run(query(""), {}, alice.token);
    const withArtifacts = await counter.run(query("artifacts { id } code: artifacts(kind: CODE) { id }"), {}, alice.token);
    const nodes = withArtifacts.data.conversations.edges.map((edge: any) => edge.node);
    for (const id of conversationIds) expect(nodes.find((node: any) => node.id === id).artifacts).toHaveLength(1);
    expect(withArtifacts.statements.length - without.statements.length).toBe(1);
  });
});
