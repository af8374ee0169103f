/**
 * The S3 backend against a real S3-compatible server (s3rver, started here on a free loopback port with a
 * temp folder), through the real AWS SDK: single and multipart uploads, downloads streamed from S3 by the
 * download endpoint, deletion of objects with their conversation, and an unreachable S3 failing exports
 * cleanly.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import S3rver from "s3rver";
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { parse } from "csv-parse/sync";
import { loadConfig } from "../../src/config";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { freePort as closedPort } from "../setup/pg-cluster";
import { createTranscript, download, hostileConversation, neutralised, settled, sha256 } from "../helpers/transcripts";

const BUCKET = "parley-transcripts";
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }; // s3rver's fixed pair

let folder: string;
let s3rver: S3rver;
let endpoint: string;
let client: S3Client;
/** What s3rver reports: "ObjectCreated:Put key", "ObjectCreated:Post key" (multipart), "ObjectRemoved:Delete key". */
const events: string[] = [];
let app: TestApp;
let alice: TestUser;
let service: TestUser;

function s3Env(url: string): Record<string, string> {
  return {
    TRANSCRIPT_STORAGE: "s3",
    S3_ENDPOINT: url,
    S3_BUCKET: BUCKET,
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    S3_FORCE_PATH_STYLE: "true",
    S3_PART_SIZE_MB: "5",
  };
}

async function objectKeys(): Promise<string[]> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (listed.Contents ?? []).map((object) => object.Key!).sort();
}

async function storageKey(id: string): Promise<string> {
  return (await app.database.db.knex("transcripts").where({ id }).first("storageKey")).storageKey;
}

beforeAll(async () => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), "parley-s3rver-"));
  s3rver = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: folder, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = await s3rver.run();
  endpoint = `http://127.0.0.1:${port}`;
  s3rver.on("event", (event: { Records: { eventName: string; s3: { object: { key: string } } }[] }) => {
    for (const record of event.Records) events.push(`${record.eventName} ${decodeURIComponent(record.s3.object.key)}`);
  });
  client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: CREDENTIALS });
  app = await createTestApp(s3Env(endpoint));
  alice = await app.makeUser(Role.MEMBER);
  service = await app.makeUser(Role.SERVICE);
  await app.grant(service, { origin: "web" });
});
afterAll(async () => {
  await app?.dispose();
  client?.destroy();
  await s3rver?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

describe("S3 settings", () => {
  it("are checked at start-up", () => {
    expect(() => loadConfig({ TRANSCRIPT_STORAGE: "s3" })).toThrow("S3_BUCKET is required with TRANSCRIPT_STORAGE=s3");
    expect(() => loadConfig({ TRANSCRIPT_STORAGE: "ftp" })).toThrow("TRANSCRIPT_STORAGE must be one of disk, s3");
    expect(() => loadConfig({ ...s3Env(endpoint), S3_SECRET_ACCESS_KEY: "" })).toThrow("Set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither");
    expect(() => loadConfig({ ...s3Env(endpoint), S3_PART_SIZE_MB: "4" })).toThrow("S3_PART_SIZE_MB must be an integer >= 5");
    expect(() => loadConfig({ ...s3Env("minio:9000") })).toThrow("S3_ENDPOINT must be an http(s) URL");
    expect(loadConfig(s3Env(endpoint)).transcripts.s3).toEqual({
      endpoint,
      bucket: BUCKET,
      region: "us-east-1",
      credentials: CREDENTIALS,
      forcePathStyle: true,
      partSizeBytes: 5 * 1024 * 1024,
    });
  });
});

describe("S3 storage", () => {
  it("uploads a small export as one object and serves it through the download endpoint", async () => {
    const conversationId = await hostileConversation(app, alice, service);
    const transcript = await createTranscript(app, alice, { conversationId, format: "CSV" });
    expect(transcript.status).toBe("READY");
    const key = await storageKey(transcript.id);
    expect(events).toContain(`ObjectCreated:Put ${key}`);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ContentLength).toBe(transcript.fileSizeBytes);
    expect(head.ContentType).toBe("text/csv; charset=utf-8");

    const got = await download(app, transcript.id, alice.token);
    expect(got.status).toBe(200);
    expect(got.headers.get("content-length")).toBe(String(transcript.fileSizeBytes));
    expect(sha256(got.bytes)).toBe(transcript.sha256);
    const rows = await app.database.db.knex("messages").where({ conversationId }).orderBy("seq");
    const contents = parse(got.bytes).slice(1).map((record: string[]) => record[8]);
    expect(contents).toEqual(rows.map((row) => neutralised(row.content)));
  });

  it("uploads an export larger than a part as a multipart upload, byte for byte", async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "big" }) { id } }`, {}, alice.token);
    const id = createConversation.id;
    const knex = app.database.db.knex;
    // 700 messages of 10,000 characters: about 7 MB of JSON, two parts of 5 MiB.
    await knex.raw(
      `insert into messages (conversation_id, seq, role, content) select ?, s, 'assistant', s || ':' || repeat('é"x', 3333) from generate_series(1, 700) s`,
      [id],
    );
    await knex("conversations").where({ id }).update({ lastSeq: 700, messageCount: 700 });
    const created = await createTranscript(app, alice, { conversationId: id, format: "JSON" });
    const transcript = created.status === "PENDING" ? await settled(app, alice, created.id) : created;
    expect(transcript).toMatchObject({ status: "READY", messageCount: 700 });
    expect(transcript.fileSizeBytes).toBeGreaterThan(5 * 1024 * 1024);
    const key = await storageKey(transcript.id);
    expect(events).toContain(`ObjectCreated:Post ${key}`);
    const got = await download(app, transcript.id, alice.token);
    expect(got.bytes.length).toBe(transcript.fileSizeBytes);
    expect(sha256(got.bytes)).toBe(transcript.sha256);
    const document = JSON.parse(got.bytes.toString("utf8"));
    expect(document.messages).toHaveLength(700);
    expect(document.messages[699].content).toBe(`700:${'é"x'.repeat(3333)}`);
  });

  it("deletes a conversation's objects with it", async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "gone" }) { id } }`, {}, alice.token);
    const id = createConversation.id;
    await app.ok(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "bye" }) { id } }`, { id }, alice.token);
    const transcripts = [await createTranscript(app, alice, { conversationId: id, format: "CSV" }), await createTranscript(app, alice, { conversationId: id, format: "JSON" })];
    const keys = await Promise.all(transcripts.map((t) => storageKey(t.id)));
    expect(await objectKeys()).toEqual(expect.arrayContaining(keys));
    await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id }, alice.token);
    const left = await objectKeys();
    for (const key of keys) {
      expect(left).not.toContain(key);
      expect(events).toContain(`ObjectRemoved:Delete ${key}`);
    }
    expect(left.filter((key) => key.includes(id))).toEqual([]);
  });

  it("fails exports with a clear error when S3 cannot be reached, and stores nothing", async () => {
    const down = await createTestApp({ ...s3Env(`http://127.0.0.1:${await closedPort()}`), TRANSCRIPT_INLINE_MAX_MESSAGES: "1" });
    try {
      const owner = await down.makeUser(Role.MEMBER);
      const { createConversation } = await down.ok(`mutation { createConversation(input: { title: "x" }) { id } }`, {}, owner.token);
      const id = createConversation.id;
      await down.ok(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "one" }) { id } }`, { id }, owner.token);
      const inline = await createTranscript(down, owner, { conversationId: id, format: "CSV" });
      expect(inline).toMatchObject({ status: "FAILED", error: "Transcript storage is unavailable", sha256: null, downloadPath: null });
      await down.ok(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "two" }) { id } }`, { id }, owner.token);
      const background = await createTranscript(down, owner, { conversationId: id, format: "JSON" });
      expect(background.status).toBe("PENDING");
      expect(await settled(down, owner, background.id)).toMatchObject({ status: "FAILED", error: "Transcript storage is unavailable" });
      const rows = await down.database.db.knex("transcripts").select("status", "storageKey");
      expect(rows).toEqual([
        { status: "failed", storageKey: null },
        { status: "failed", storageKey: null },
      ]);
      const { body } = await down.gql(`query($id: UUID!) { transcript(id: $id) { error } }`, { id: background.id }, owner.token);
      expect(JSON.stringify(body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|amazonaws|stack/i);
    } finally {
      await down.dispose();
    }
  });
});
