/**
 * Artifacts: content assistant and tool messages produced, as a history of versions. Reading follows the
 * conversation (an artifact of a conversation the viewer cannot read is NOT_FOUND, like an unknown id);
 * writing follows assistant messages: services that reach the conversation, and admins (members read).
 *
 * A version is inline text or a file. A file version starts PENDING and becomes READY with its one upload
 * (PUT /artifacts/:id/content), streamed to the transcripts' storage backend under a key made of ids and a
 * random part, never of the title: two uploads racing for one version write different keys, and the loser
 * deletes only its own file. A READY version never changes; a new version is an edit.
 *
 * Files outlive no row: deleting removes the rows first and the files after the commit, and an upload that
 * finds its row gone afterwards removes what it stored (the transcripts' rule, transcript.jobs.ts).
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { canWriteRole, viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { ArchivedConversationError, getConversation } from "../conversation/conversation.service";
import { ConversationStatus } from "../conversation/conversation.enums";
import type { Conversation } from "../conversation/conversation.model";
import { getMessage } from "../message/message.service";
import { MessageRole } from "../message/message.enums";
import type { Message } from "../message/message.model";
import type { ByteRange, TranscriptStorage } from "../transcript/transcript.storage";
import { audit } from "../audit/audit.service";
import { Artifact, ArtifactStatus } from "./artifact.types";
import type { CreateArtifactInput, EditArtifactInput } from "./artifact.input";

/** A media type without parameters, as the column's check states it. */
const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

function storageOf(ctx: Actor): TranscriptStorage {
  if (!ctx.transcripts) throw new Error("artifact files need a running server (its storage backend)");
  return ctx.transcripts.storage;
}

class ArtifactConflictError extends ConflictError {
  constructor(message: string, reason: string) {
    super(message);
    this.extensions.reason = reason;
  }
}

/** The artifact version if the viewer may read its conversation, else NOT_FOUND. */
export async function getArtifact(ctx: Actor, id: string): Promise<Artifact> {
  viewerOf(ctx);
  const artifact = await ctx.loaders.artifactById.load(id);
  if (!artifact) throw new NotFoundError("Artifact");
  await getConversation(ctx, artifact.conversationId).catch((error: unknown) => {
    throw error instanceof NotFoundError ? new NotFoundError("Artifact") : error;
  });
  return artifact;
}

/**
 * The conversation, if the viewer may write artifacts into it. Call after a read check: an outsider has
 * been told NOT_FOUND before being told anything else.
 */
async function writableConversation(ctx: Actor, conversationId: string): Promise<Conversation> {
  const conversation = await getConversation(ctx, conversationId);
  if (!canWriteRole(viewerOf(ctx), MessageRole.ASSISTANT)) {
    throw new ForbiddenError("Artifacts come from services and admins, as assistant messages do; members read them");
  }
  if (conversation.status === ConversationStatus.ARCHIVED) throw new ArchivedConversationError();
  return conversation;
}

function producedBy(message: Message): void {
  if (message.role !== MessageRole.ASSISTANT && message.role !== MessageRole.TOOL) {
    throw new BadUserInputError("Artifacts belong to ASSISTANT or TOOL messages", { field: "messageId" });
  }
}

function checkMimeType(value: string | null | undefined, field: string): string | null {
  if (value == null) return null;
  const mimeType = value.trim().toLowerCase();
  if (!MIME_TYPE.test(mimeType)) throw new BadUserInputError(`${field} must be a media type such as text/markdown (no parameters)`, { field });
  return mimeType;
}

/** Checks the fields a version carries; returns them as stored. */
function versionFields(ctx: Actor, input: { title: string; language?: string | null; mimeType?: string | null; content?: string | null }) {
  const title = input.title.trim();
  if (title === "") throw new BadUserInputError("title must not be empty", { field: "title" });
  checkText(title, "title");
  if (input.language != null) checkText(input.language, "language");
  const content = input.content ?? null;
  if (content != null) {
    checkText(content, "content");
    const max = ctx.config.artifacts.maxTextBytes;
    // Byte length is only ever larger than UTF-16 length / 2, so most texts are judged without encoding them.
    if (content.length > max / 3 && Buffer.byteLength(content) > max) {
      throw new PayloadTooLargeError(`content must be at most ${max} bytes of UTF-8; upload larger content as a file`);
    }
  }
  return {
    title,
    language: input.language?.trim() || null,
    mimeType: checkMimeType(input.mimeType, "mimeType"),
    content,
    status: content != null ? ArtifactStatus.READY : ArtifactStatus.PENDING,
  };
}

export async function createArtifact(ctx: Actor, input: CreateArtifactInput): Promise<Artifact> {
  const viewer = viewerOf(ctx);
  const message = await getMessage(ctx, input.messageId);
  await writableConversation(ctx, message.conversationId);
  producedBy(message);
  const fields = versionFields(ctx, input);
  // The id is chosen here because the first version is its own root (a column default cannot name itself).
  const id = randomUUID();
  const artifact = await ctx.db.knex.transaction(async (trx) => {
    const row = await Artifact.query(trx).insertAndFetch({
      id,
      rootId: id,
      version: 1,
      conversationId: message.conversationId,
      messageId: message.id,
      parentId: null,
      kind: input.kind,
      createdBy: viewer.id,
      ...fields,
    });
    await audit(ctx, { action: "artifact.create", targetType: "artifact", targetId: id, details: { messageId: message.id, kind: input.kind } }, trx);
    return row;
  });
  ctx.loaders.artifactsByMessageId.clear(message.id);
  return artifact;
}

/** Adds version n + 1 of the history `id` belongs to, edited from `id` (which need not be the latest). */
export async function editArtifact(ctx: Actor, id: string, input: EditArtifactInput): Promise<Artifact> {
  const viewer = viewerOf(ctx);
  const parent = await getArtifact(ctx, id);
  await writableConversation(ctx, parent.conversationId);
  let messageId = parent.messageId;
  if (input.messageId != null && input.messageId !== parent.messageId) {
    const message = await getMessage(ctx, input.messageId);
    if (message.conversationId !== parent.conversationId) {
      throw new BadUserInputError("The message of an edit must be in the artifact's conversation", { field: "messageId" });
    }
    producedBy(message);
    messageId = message.id;
  }
  const fields = versionFields(ctx, {
    title: input.title ?? parent.title,
    language: input.language !== undefined ? input.language : parent.language,
    mimeType: input.mimeType !== undefined ? input.mimeType : parent.mimeType,
    content: input.content,
  });
  const artifact = await ctx.db.knex.transaction(async (trx) => {
    // The root's row lock queues concurrent edits of one history, so each gets the next number.
    const root = await trx("artifacts").where({ id: parent.rootId }).forUpdate().first("id");
    if (!root) throw new NotFoundError("Artifact");
    const [{ latest }] = (await trx("artifacts").where({ rootId: parent.rootId }).max("version as latest")) as { latest: number }[];
    const row = await Artifact.query(trx).insertAndFetch({
      rootId: parent.rootId,
      parentId: parent.id,
      version: Number(latest) + 1,
      conversationId: parent.conversationId,
      messageId,
      kind: parent.kind,
      createdBy: viewer.id,
      ...fields,
    });
    await audit(ctx, { action: "artifact.edit", targetType: "artifact", targetId: row.id, details: { parentId: parent.id, version: row.version } }, trx);
    return row;
  });
  ctx.loaders.artifactsByMessageId.clear(messageId);
  return artifact;
}

/** Every version of the artifact's history, first to latest. */
export async function artifactVersions(ctx: Actor, artifact: Artifact): Promise<Artifact[]> {
  return Artifact.query(ctx.db.knex).where({ rootId: artifact.rootId }).orderBy("version");
}

/**
 * The storage keys of a conversation's artifact files, read inside the transaction that deletes it. FOR UPDATE
 * on every artifact row: an upload finishing meanwhile waits, then finds its row gone and removes its file.
 */
export async function lockArtifactKeys(trx: Knex.Transaction, conversationId: string): Promise<string[]> {
  const rows: { storageKey: string | null }[] = await trx("artifacts").where({ conversationId }).forUpdate().select("storageKey");
  return rows.flatMap((row) => (row.storageKey ? [row.storageKey] : []));
}

/** Deletes files of rows already gone; failures are logged with the keys (to remove by hand), never thrown. */
export async function removeArtifactFiles(ctx: Actor, keys: readonly string[]): Promise<void> {
  if (keys.length === 0 || !ctx.transcripts) return;
  try {
    await ctx.transcripts.storage.delete(keys);
  } catch (error) {
    ctx.log.error({ err: error, keys }, "could not delete artifact files");
  }
}

/** Deletes the whole history the version belongs to, its files after the commit. */
export async function deleteArtifact(ctx: Actor, id: string): Promise<boolean> {
  const artifact = await getArtifact(ctx, id);
  await writableConversation(ctx, artifact.conversationId);
  const keys = await ctx.db.knex.transaction(async (trx) => {
    const rows: { id: string; storageKey: string | null; messageId: string }[] = await trx("artifacts")
      .where({ rootId: artifact.rootId })
      .forUpdate()
      .select("id", "storageKey", "messageId");
    if (rows.length === 0) throw new NotFoundError("Artifact");
    // returning: a bare delete inside a transaction answers PGlite's result object, not a count.
    await trx("artifacts").where({ rootId: artifact.rootId }).delete().returning("id");
    await audit(ctx, { action: "artifact.delete", targetType: "artifact", targetId: artifact.rootId, details: { versions: rows.length, title: artifact.title } }, trx);
    for (const row of rows) {
      ctx.loaders.artifactById.clear(row.id);
      ctx.loaders.artifactsByMessageId.clear(row.messageId);
    }
    return rows.flatMap((row) => (row.storageKey ? [row.storageKey] : []));
  });
  await removeArtifactFiles(ctx, keys);
  return true;
}

/** Counts and hashes what passes; past `limit` bytes it fails the stream, so the storage keeps nothing. */
class Meter extends Transform {
  readonly hash = createHash("sha256");
  // Not `size`: lib-storage takes a body's `size` for its length (as of a Blob) and plans the upload by it.
  bytes = 0;
  overLimit = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.overLimit = true;
      return done(new PayloadTooLargeError(`The file exceeds ARTIFACT_MAX_FILE_BYTES (${this.limit} bytes)`));
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

export interface Upload {
  body: Readable;
  /** The Content-Type header, if any. */
  contentType: string | undefined;
  /** The Content-Length header, if any: a larger one is refused before a byte is read. */
  declaredLength: number | undefined;
}

/** Stores the one file of a PENDING file version and makes it READY. */
export async function uploadArtifactContent(ctx: Actor, id: string, upload: Upload): Promise<Artifact> {
  const artifact = await getArtifact(ctx, id);
  await writableConversation(ctx, artifact.conversationId);
  if (artifact.content != null) throw new ArtifactConflictError("This version holds inline text; a file goes into a new version", "ARTIFACT_IS_TEXT");
  if (artifact.status === ArtifactStatus.READY) {
    throw new ArtifactConflictError("This version already has its file; upload into a new version (editArtifact)", "ARTIFACT_READY");
  }
  const essence = upload.contentType?.split(";")[0];
  const mimeType = essence ? checkMimeType(essence, "Content-Type")! : (artifact.mimeType ?? "application/octet-stream");
  const limit = ctx.config.artifacts.maxFileBytes;
  if (upload.declaredLength !== undefined && upload.declaredLength > limit) {
    throw new PayloadTooLargeError(`The file exceeds ARTIFACT_MAX_FILE_BYTES (${limit} bytes)`);
  }
  const key = `artifacts/${artifact.conversationId}/${artifact.id}/${randomBytes(8).toString("hex")}`;
  const meter = new Meter(limit);
  pipeline(upload.body, meter, () => undefined); // errors on either side reach put() through the meter
  const storage = storageOf(ctx);
  try {
    await storage.put(key, meter, mimeType);
  } catch (error) {
    // The backend reports every failure as its own; the meter knows when the client sent too much.
    if (meter.overLimit) throw new PayloadTooLargeError(`The file exceeds ARTIFACT_MAX_FILE_BYTES (${limit} bytes)`);
    throw error;
  }
  const [ready] = (await Artifact.query(ctx.db.knex)
    .patch({ status: ArtifactStatus.READY, storageKey: key, sizeBytes: meter.bytes, sha256: meter.hash.digest("hex"), mimeType })
    .where({ id: artifact.id, status: ArtifactStatus.PENDING })
    .returning("*")) as unknown as Artifact[];
  if (ready) {
    ctx.loaders.artifactById.clear(artifact.id).prime(artifact.id, ready);
    ctx.loaders.artifactsByMessageId.clear(artifact.messageId);
    return ready;
  }
  // Deleted meanwhile, or another upload won: this file belongs to no row.
  await removeArtifactFiles(ctx, [key]);
  const now = await Artifact.query(ctx.db.knex).findById(artifact.id);
  if (!now) throw new NotFoundError("Artifact");
  throw new ArtifactConflictError("This version already has its file; upload into a new version (editArtifact)", "ARTIFACT_READY");
}

/** A version's bytes as GET /artifacts/:id/download serves them. */
export interface ArtifactDownload {
  artifact: Artifact;
  size: number;
  contentType: string;
  /** The download name, made from the title: never a path (see downloadName). */
  filename: string;
  open(range?: ByteRange): Promise<Readable>;
}

/**
 * A name for the browser to save the file under: the title without path separators, control characters or
 * leading dots. It only ever names the download; keys in the storage are made of ids.
 */
export function downloadName(artifact: Pick<Artifact, "id" | "title">): string {
  const name = artifact.title
    .replace(/[\\/\u0000-\u001f\u007f]/g, "_")
    .replace(/^[.\s]+/, "")
    .trim()
    .slice(0, 200);
  return name === "" ? `artifact-${artifact.id}` : name;
}

export async function openArtifactDownload(ctx: Actor, id: string): Promise<ArtifactDownload> {
  const artifact = await getArtifact(ctx, id);
  const filename = downloadName(artifact);
  if (artifact.content != null) {
    const bytes = Buffer.from(artifact.content, "utf8");
    const type = artifact.mimeType ?? "text/plain";
    return {
      artifact,
      size: bytes.length,
      filename,
      contentType: type.startsWith("text/") ? `${type}; charset=utf-8` : type,
      open: async (range) => Readable.from(range ? [bytes.subarray(range.start, range.end + 1)] : [bytes]),
    };
  }
  if (artifact.status !== ArtifactStatus.READY) {
    throw new ArtifactConflictError("The file of this version has not been uploaded yet", "ARTIFACT_NOT_READY");
  }
  const storage = storageOf(ctx);
  return {
    artifact,
    size: artifact.sizeBytes!,
    filename,
    contentType: artifact.mimeType ?? "application/octet-stream",
    open: async (range) => (await storage.get(artifact.storageKey!, range)).body,
  };
}
