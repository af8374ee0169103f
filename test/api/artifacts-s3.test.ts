/**
 * Artifact files on the S3 backend, against a real S3-compatible server (s3rver, test/helpers/s3.ts) through
 * the real AWS SDK: single and multipart uploads, ranged downloads read from S3, oversize uploads leaving no
 * object and no multipart upload behind, and every object going away with its conversation or artifact.
 */
import { createHash, randomBytes } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { s3Env, startS3, type TestS3 } from "../helpers/s3";
import { artifactApi, type ArtifactApi } from "../helpers/artifacts";

const MiB = 1024 * 1024;
/** Above S3_PART_SIZE_MB (5): a file this size goes up as a multipart upload. */
const MAX_FILE = 7 * MiB;

let s3: TestS3;
let app: TestApp;
let api: ArtifactApi;
let alice: TestUser;
let bob: TestUser;
let service: TestUser;

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

beforeAll(async () => {
  s3 = await startS3();
  app = await createTestApp({ ...s3Env(s3.endpoint), ARTIFACT_MAX_FILE_BYTES: String(MAX_FILE) });
  api = artifactApi(app);
  alice = await app.makeUser(Role.MEMBER, "alice");
  bob = await app.makeUser(Role.MEMBER, "bob");
  service = await app.makeUser(Role.SERVICE, "service");
  await app.grant(service, { origin: "web" });
});
afterAll(async () => {
  await app?.dispose();
  await s3?.dispose();
});

it("stores small and multipart files under artifacts/ and serves them whole and by range", async () => {
  const { conversationId, assistantId } = await api.conversation(alice, service);
  const small = await api.create(service, { messageId: assistantId, kind: "IMAGE", title: "../../etc/passwd" });
  const large = await api.create(service, { messageId: assistantId, kind: "FILE", title: "big.bin" });
  const smallBytes = randomBytes(3000);
  const largeBytes = randomBytes(6 * MiB + 123);
  expect((await api.upload(small.id, service.token, smallBytes, "image/webp")).json).toMatchObject({ status: "READY", sha256: sha256(smallBytes), mimeType: "image/webp" });
  expect((await api.upload(large.id, service.token, largeBytes, undefined, { chunked: true })).json).toMatchObject({ sizeBytes: largeBytes.length, sha256: sha256(largeBytes) });

  const keys = await s3.objectKeys();
  expect(keys).toHaveLength(2);
  for (const key of keys) expect(key).toMatch(new RegExp(`^artifacts/${conversationId}/(${small.id}|${large.id})/[0-9a-f]{16}$`));

  const whole = await api.download(large.id, alice.token);
  expect(whole.status).toBe(200);
  expect(whole.bytes.equals(largeBytes)).toBe(true);
  const range = await api.download(large.id, alice.token, { range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` });
  expect(range.status).toBe(206);
  expect(range.headers.get("content-range")).toBe(`bytes ${5 * MiB - 10}-${5 * MiB + 9}/${largeBytes.length}`);
  expect(range.bytes.equals(largeBytes.subarray(5 * MiB - 10, 5 * MiB + 10))).toBe(true);
  const image = await api.download(small.id, alice.token);
  expect(image.headers.get("content-type")).toBe("image/webp");
  expect(image.headers.get("x-content-type-options")).toBe("nosniff");
  expect(image.headers.get("content-disposition")).toBe(`attachment; filename="_.._etc_passwd"; filename*=UTF-8''_.._etc_passwd`);
  expect((await api.download(small.id, bob.token)).status).toBe(404);

  await api.removeConversation(alice, conversationId);
  expect(await s3.objectKeys("artifacts/")).toEqual([]);
});

it("refuses a file above ARTIFACT_MAX_FILE_BYTES while it streams, leaving no object and no multipart upload", async () => {
  const { conversationId, assistantId } = await api.conversation(alice, service);
  const pending = await api.create(service, { messageId: assistantId, kind: "FILE", title: "too big" });
  // Past the first 5 MiB part: the multipart upload has begun when the limit is crossed.
  const refused = await api.upload(pending.id, service.token, randomBytes(MAX_FILE + 1), undefined, { chunked: true });
  expect(refused.status).toBe(413);
  expect(refused.json.errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
  expect(await s3.objectKeys("artifacts/")).toEqual([]);
  expect(s3.pendingUploads()).toEqual([]);
  expect(await api.get(pending.id, alice)).toMatchObject({ status: "PENDING", sizeBytes: null });
  await api.removeConversation(alice, conversationId);
});

it("deleteArtifact removes the objects of every version, and only those", async () => {
  const { conversationId, assistantId } = await api.conversation(alice, service);
  const v1 = await api.create(service, { messageId: assistantId, kind: "FILE", title: "f" });
  await api.upload(v1.id, service.token, Buffer.from("one"));
  const v2 = await api.edit(service, v1.id, {});
  await api.upload(v2.id, service.token, Buffer.from("two"));
  const other = await api.create(service, { messageId: assistantId, kind: "FILE", title: "other" });
  await api.upload(other.id, service.token, Buffer.from("other"));
  expect(await s3.objectKeys(`artifacts/${conversationId}/`)).toHaveLength(3);
  await app.ok(`mutation($id: UUID!) { deleteArtifact(id: $id) }`, { id: v1.id }, service.token);
  const left = await s3.objectKeys(`artifacts/${conversationId}/`);
  expect(left).toEqual([expect.stringContaining(`/${other.id}/`)]);
  await api.removeConversation(alice, conversationId);
  expect(await s3.objectKeys("artifacts/")).toEqual([]);
});
