/**
 * Issue 13, storage faults: transcript storage failing mid-export ends that export FAILED with a clear, safe
 * error, leaves no partial file and no multipart upload behind, and a new export succeeds once the storage
 * is back (the same requestId keeps answering the FAILED transcript: see transcript.service.ts). Downloads
 * while the storage is away answer 503 with Retry-After.
 *
 * Real parts only: a tmpfs of 1 MiB filled for real (the kernel's ENOSPC), and s3rver behind a proxy that
 * refuses or vanishes mid-multipart (test/helpers/fault-proxy.ts).
 */
import fs from "node:fs";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { createTranscript, download, filesBelow, settled, sha256, type TranscriptData } from "../helpers/transcripts";
import { fillDisk, mountSmallDisk, type SmallDisk } from "../helpers/tmpfs";
import { s3Env, startS3, type TestS3 } from "../helpers/s3";
import { createFaultProxy, type Fault, type FaultProxy } from "../helpers/fault-proxy";

/** What no client may see of a storage failure: paths, errno codes, addresses, S3 wording. */
const LEAKS = /ENOSPC|EDQUOT|ECONN|parley-small-disk|127\.0\.0\.1|uploadId|ServiceUnavailable|InternalError|s3rver|stack/i;

/** A conversation of `count` messages of about 9.7 KB each (distinct text, so byte-identity means something). */
async function conversationOf(app: TestApp, owner: TestUser, count: number): Promise<string> {
  const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "faults" }) { id } }`, {}, owner.token);
  const id: string = createConversation.id;
  const knex = app.database.db.knex;
  await knex.raw(
    `insert into messages (conversation_id, seq, role, content) select ?, s, 'assistant', s || ':' || repeat(md5(s::text), 300) from generate_series(1, ?) s`,
    [id, count],
  );
  await knex("conversations").where({ id }).update({ lastSeq: count, messageCount: count });
  return id;
}

async function exported(app: TestApp, user: TestUser, input: Record<string, unknown>): Promise<TranscriptData> {
  const created = await createTranscript(app, user, input);
  return created.status === "PENDING" ? settled(app, user, created.id) : created;
}

/** Downloads the transcript and checks the file is the one its row describes, byte for byte. */
async function expectDownloadable(app: TestApp, user: TestUser, transcript: TranscriptData): Promise<void> {
  const got = await download(app, transcript.id, user.token);
  expect(got.status).toBe(200);
  expect(got.bytes.length).toBe(transcript.fileSizeBytes);
  expect(sha256(got.bytes)).toBe(transcript.sha256);
}

async function expectUnavailableDownload(app: TestApp, user: TestUser, id: string): Promise<void> {
  const got = await download(app, id, user.token);
  expect(got.status).toBe(503);
  expect(got.headers.get("retry-after")).toBe("5");
  const body = JSON.parse(got.bytes.toString("utf8"));
  expect(body.errors[0]).toEqual({
    message: "Transcript storage is unavailable; try again shortly",
    extensions: { code: "SERVICE_UNAVAILABLE", reason: "STORAGE_UNAVAILABLE", retryAfterSeconds: 5 },
  });
}

async function storageKey(app: TestApp, id: string): Promise<string | null> {
  return (await app.database.db.knex("transcripts").where({ id }).first("storageKey")).storageKey;
}

describe("a full disk", () => {
  const SIZE_KIB = 1024;
  let disk: SmallDisk;
  let app: TestApp;
  let alice: TestUser;

  beforeAll(async () => {
    disk = mountSmallDisk(SIZE_KIB);
    app = await createTestApp({ TRANSCRIPT_DIR: disk.dir });
    alice = await app.makeUser(Role.MEMBER);
  });
  afterAll(async () => {
    await app?.dispose();
    disk?.dispose();
  });

  it("fails the export mid-file with 'Transcript storage is full', leaves no file, and a new export succeeds once space is freed", async () => {
    const conversationId = await conversationOf(app, alice, 40); // about 390 KB of JSON: written inline
    const ballast = fillDisk(disk.dir, SIZE_KIB, 64);
    const { body } = await app.gql(
      `mutation($input: CreateTranscriptInput!) { createTranscript(input: $input) { id status error sha256 fileSizeBytes downloadPath } }`,
      { input: { conversationId, format: "JSON", requestId: "full-1" } },
      alice.token,
    );
    const failed = body.data!.createTranscript;
    expect(failed).toMatchObject({ status: "FAILED", error: "Transcript storage is full", sha256: null, fileSizeBytes: null, downloadPath: null });
    expect(JSON.stringify(body)).not.toMatch(LEAKS);
    expect(filesBelow(disk.dir)).toEqual(["ballast"]); // no .partial, nothing under the final name
    expect(await storageKey(app, failed.id)).toBeNull();

    fs.rmSync(ballast);
    // The same requestId answers the same FAILED transcript and writes nothing ...
    const replayed = await createTranscript(app, alice, { conversationId, format: "JSON", requestId: "full-1" });
    expect(replayed).toMatchObject({ id: failed.id, status: "FAILED", error: "Transcript storage is full" });
    expect(filesBelow(disk.dir)).toEqual([]);
    // ... and a new request is the retry.
    const ready = await exported(app, alice, { conversationId, format: "JSON", requestId: "full-2" });
    expect(ready).toMatchObject({ status: "READY", messageCount: 40, error: null });
    expect(filesBelow(disk.dir)).toEqual([`transcripts/${conversationId}/${ready.id}-1.json`]);
    await expectDownloadable(app, alice, ready);
  });

  it("answers downloads 503 with Retry-After while the disk is away, and the same file once it is back", async () => {
    const conversationId = await conversationOf(app, alice, 3);
    const ready = await exported(app, alice, { conversationId, format: "CSV" });
    expect(ready.status).toBe("READY");
    disk.takeAway();
    try {
      await expectUnavailableDownload(app, alice, ready.id);
    } finally {
      disk.bringBack();
    }
    await expectDownloadable(app, alice, ready);
  });
});

describe("S3 refusing or vanishing mid-multipart", () => {
  /** About 23 MB of JSON: five parts of 5 MiB, all exported in the background (over TRANSCRIPT_INLINE_MAX_MESSAGES). */
  const MESSAGES = 2400;
  /** Faults strike at the first part upload past this part number. */
  const AFTER_PART = 2;
  let s3: TestS3;
  let proxy: FaultProxy;
  let app: TestApp;
  let alice: TestUser;

  beforeAll(async () => {
    s3 = await startS3();
    proxy = await createFaultProxy(s3.endpoint);
    app = await createTestApp(s3Env(proxy.url));
    alice = await app.makeUser(Role.MEMBER);
  });
  afterEach(() => proxy.heal());
  afterAll(async () => {
    await app?.dispose();
    await proxy?.dispose();
    await s3?.dispose();
  });

  /** Breaks S3 mid-way through an export; checks the FAILED row and that nothing is visible under its key. */
  async function failedExport(conversationId: string, fault: Fault): Promise<TranscriptData> {
    proxy.failAfterPart(AFTER_PART, fault);
    const failed = await exported(app, alice, { conversationId, format: "JSON" });
    expect(proxy.faulted).toBeGreaterThan(0);
    expect(failed).toMatchObject({ status: "FAILED", error: "Transcript storage is unavailable", sha256: null, downloadPath: null });
    const { body } = await app.gql(`query($id: UUID!) { transcript(id: $id) { status error } }`, { id: failed.id }, alice.token);
    expect(JSON.stringify(body)).not.toMatch(LEAKS);
    expect(await s3.objectKeys(`transcripts/${conversationId}/`)).toEqual([]);
    return failed;
  }

  /** With S3 back: a new export is READY, the only object of the conversation, and downloads byte for byte. */
  async function retried(conversationId: string): Promise<void> {
    const ready = await exported(app, alice, { conversationId, format: "JSON" });
    expect(ready).toMatchObject({ status: "READY", messageCount: MESSAGES });
    expect(ready.fileSizeBytes).toBeGreaterThan(4 * 5 * 1024 * 1024);
    expect(await s3.objectKeys(`transcripts/${conversationId}/`)).toEqual([`transcripts/${conversationId}/${ready.id}-1.json`]);
    expect(s3.pendingUploads()).toEqual([]);
    await expectDownloadable(app, alice, ready);
  }

  it("refusing part uploads (HTTP 500): FAILED, the upload aborted at once, and a new export succeeds", async () => {
    const conversationId = await conversationOf(app, alice, MESSAGES);
    await failedExport(conversationId, { kind: "refuse", status: 500, requests: "parts" });
    expect(s3.pendingUploads()).toEqual([]);
    await proxy.heal();
    await retried(conversationId);
  });

  it("refusing every request (HTTP 503), the abort too: the upload is aborted before the next one once S3 answers", async () => {
    const conversationId = await conversationOf(app, alice, MESSAGES);
    const failed = await failedExport(conversationId, { kind: "refuse", status: 503, requests: "all" });
    // Real, not assumed: s3rver still holds the parts while it refuses.
    expect(s3.pendingUploads()).toEqual([{ uploadId: expect.any(String), key: `transcripts/${conversationId}/${failed.id}-1.json` }]);
    await proxy.heal();
    await retried(conversationId);
  });

  it("vanishing (connections cut, port closed): downloads answer 503, the sweep aborts the upload once S3 is back", async () => {
    const small = await exported(app, alice, { conversationId: await conversationOf(app, alice, 2), format: "CSV" });
    expect(small.status).toBe("READY");
    const conversationId = await conversationOf(app, alice, MESSAGES);
    const failed = await failedExport(conversationId, { kind: "vanish" });
    expect(s3.pendingUploads()).toEqual([{ uploadId: expect.any(String), key: `transcripts/${conversationId}/${failed.id}-1.json` }]);
    await expectUnavailableDownload(app, alice, small.id);

    await proxy.heal();
    await app.server.transcripts.sweep();
    expect(s3.pendingUploads()).toEqual([]);
    await expectDownloadable(app, alice, small);
    await retried(conversationId);
  });
});
