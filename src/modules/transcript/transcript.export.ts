/**
 * The export pipeline, shared by the API's jobs and `npm run cli -- export`:
 *
 *   messages (keyset pages of EXPORT_BATCH rows in seq order) → serializer (JSON or CSV text)
 *     → bytes counted and hashed (sha256) → a sink (a storage backend, or a file)
 *
 * Everything is pulled: Readable.from() asks the generators for the next piece only when the sink has
 * taken the last one, so a slow disk or S3 upload slows the database reads instead of filling memory, and
 * memory stays about one page of rows whatever the conversation's size.
 *
 * Pages rather than one server-side cursor: a keyset page (`seq > last seen order by seq limit n`) is one
 * short indexed query, it works the same on PostgreSQL and PGlite, and it holds no connection between pages
 * (PGlite has only one, which requests would otherwise wait for during a long export). seq has no gaps and
 * rows are never renumbered, so pages neither skip nor repeat a message.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Knex } from "knex";
import type { EncryptionConfig } from "../../config";
import { messageText, UndecryptableContentError } from "../message/encryption";
import { MessageRole } from "../message/message.enums";
import type { Conversation } from "../conversation/conversation.model";
import { MESSAGE_FIELDS, serialize, type ExportHeader, type ExportMessage } from "./transcript.serializers";

export const EXPORT_BATCH = 1000;

/** What to export: the header written first, and the messages' range and filters. */
export interface ExportSpec extends ExportHeader {
  /** The conversation's messages with fromSeq <= seq <= toSeq pass (then the time and role filters). */
  range: { fromSeq: number; toSeq: number; from: Date | null; to: Date | null; includeToolCalls: boolean; includeSystem: boolean };
}

export type ExportRequest = ExportHeader["transcript"];

/** The spec of exporting `conversation` as `request` asks (the transcript's id is null for a CLI export). */
export function exportSpec(conversation: Conversation, request: ExportRequest): ExportSpec {
  const { fromSeq, toSeq, from, to, includeToolCalls, includeSystem } = request;
  return {
    transcript: request,
    conversation: {
      id: conversation.id,
      title: conversation.title,
      origin: conversation.origin,
      status: conversation.status,
      ownerId: conversation.ownerId,
      parameters: conversation.parameters,
      createdAt: conversation.createdAt,
      updatedAt: conversation.updatedAt,
    },
    range: { fromSeq, toSeq, from, to, includeToolCalls, includeSystem },
  };
}

export interface ExportProgress {
  messages: number;
  bytes: number;
  /** The last seq read so far. */
  seq: number;
}

export interface ExportResult {
  messageCount: number;
  fileSizeBytes: number;
  sha256: string;
}

/** An export that cannot be completed for a reason a client may read (the cause goes to the logs). */
export class ExportError extends Error {
  override name = "ExportError";
}

/** What the serializers write, plus what reading the text needs. */
const COLUMNS = [...MESSAGE_FIELDS, "conversationId", "encryptedContent", "keyId"];

type MessageRow = Omit<ExportMessage, "content" | "costUsd"> & {
  conversationId: string;
  content: string | null;
  encryptedContent: Uint8Array | null;
  keyId: string | null;
  costUsd: string | number | null;
};

/** The messages of the spec in seq order, decrypted, one keyset page at a time; onPage runs after each page. */
export async function* readMessages(
  knex: Knex,
  encryption: EncryptionConfig | undefined,
  spec: ExportSpec,
  onPage?: (lastSeq: number) => Promise<void>,
): AsyncGenerator<ExportMessage> {
  const { range } = spec;
  const excludedRoles = [...(range.includeSystem ? [] : [MessageRole.SYSTEM]), ...(range.includeToolCalls ? [] : [MessageRole.TOOL])];
  let after = range.fromSeq - 1;
  while (after < range.toSeq) {
    const rows: MessageRow[] = await knex("messages")
      .select(COLUMNS)
      .where("conversationId", spec.conversation.id)
      .where("seq", ">", after)
      .where("seq", "<=", range.toSeq)
      .modify((query) => {
        if (excludedRoles.length) query.whereNotIn("role", excludedRoles);
        if (range.from) query.where("createdAt", ">=", range.from);
        if (range.to) query.where("createdAt", "<", range.to);
      })
      .orderBy("seq")
      .limit(EXPORT_BATCH);
    for (const row of rows) yield exported(encryption, row, range.includeToolCalls);
    if (rows.length < EXPORT_BATCH) return;
    after = rows[rows.length - 1].seq;
    await onPage?.(after);
  }
}

function exported(encryption: EncryptionConfig | undefined, row: MessageRow, includeToolCalls: boolean): ExportMessage {
  let content: string;
  try {
    content = messageText(encryption, row);
  } catch (error) {
    if (error instanceof UndecryptableContentError) {
      throw new ExportError(`Message ${row.seq} could not be decrypted`, { cause: error.reason });
    }
    throw error;
  }
  return {
    seq: row.seq,
    id: row.id,
    role: row.role,
    status: row.status,
    createdAt: row.createdAt,
    authorId: row.authorId,
    content,
    model: row.model,
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    costUsd: row.costUsd == null ? null : Number(row.costUsd), // numeric arrives as a string from both drivers
    latencyMs: row.latencyMs,
    toolCalls: includeToolCalls ? (row.toolCalls ?? null) : null,
    metadata: row.metadata,
  };
}

/**
 * Runs the pipeline into `sink`, which must consume the stream it is given and resolve once the bytes are
 * stored. `onProgress` runs after every page; a rejection from it stops the export (and the sink's write).
 *
 * When the export fails, the error says which side failed. A failure of the messages' side (a run stopped,
 * a message undecryptable, the database) reaches the sink as a stream error, which the sink reports as its
 * own: it is rethrown as it was instead. A failure of the sink's side (a full disk, S3 gone) is the sink's
 * rejection, even though the stream also sees it: a failing sink destroys the stream with its own error,
 * which arrives inside the generator at `yield`, where it is not taken for the messages' failure.
 */
export async function exportConversation(
  knex: Knex,
  encryption: EncryptionConfig | undefined,
  spec: ExportSpec,
  sink: (body: Readable) => Promise<void>,
  onProgress?: (progress: ExportProgress) => Promise<void> | void,
): Promise<ExportResult> {
  const progress: ExportProgress = { messages: 0, bytes: 0, seq: spec.range.fromSeq - 1 };
  const messages = readMessages(knex, encryption, spec, async (seq) => {
    progress.seq = seq;
    await onProgress?.({ ...progress });
  });
  async function* counted(): AsyncGenerator<ExportMessage> {
    for await (const message of messages) {
      progress.messages++;
      yield message;
    }
  }
  const written = await sinkText(serialize(spec.transcript.format, spec, counted()), sink, (bytes) => (progress.bytes += bytes));
  progress.seq = spec.range.toSeq;
  await onProgress?.({ ...progress });
  return { messageCount: progress.messages, ...written };
}

/**
 * Streams `texts` as UTF-8 into `sink`, hashing what goes: the file's size and SHA-256 once the sink resolved.
 * A failure of the reading side reaches the sink as a stream error and is rethrown as it was (not as the sink's
 * wrapping of it); a failing sink's own rejection is rethrown as the sink's, and stops the reading.
 */
export async function sinkText(
  texts: AsyncGenerator<string>,
  sink: (body: Readable) => Promise<void>,
  onBytes?: (bytes: number) => void,
): Promise<{ fileSizeBytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  let sourceError: unknown;
  async function* encoded(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const next = await texts.next().catch((error: unknown) => {
          sourceError = error;
          throw error;
        });
        if (next.done) return;
        const bytes = Buffer.from(next.value, "utf8");
        hash.update(bytes);
        size += bytes.length;
        onBytes?.(bytes.length);
        yield bytes;
      }
    } finally {
      await texts.return(undefined); // stops the reading when the sink gave up first
    }
  }
  try {
    await sink(Readable.from(encoded(), { objectMode: false }));
  } catch (error) {
    throw sourceError ?? error;
  }
  return { fileSizeBytes: size, sha256: hash.digest("hex") };
}
