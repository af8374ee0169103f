/**
 * Encryption at rest of message content. With a key ring (MESSAGE_ENCRYPTION_KEYS) a message's text is
 * stored only as AES-256-GCM ciphertext in messages.encrypted_content, with the id of its key in key_id;
 * without one it stays plain text in messages.content. The database's check constraint allows exactly one
 * of the two per row, so every reader goes through messageText() and works with either.
 *
 * encrypted_content layout: version (1 byte) | iv (12 bytes, random per message) | GCM tag (16) | ciphertext.
 * The additional authenticated data is `${conversationId}:${seq}`, so a ciphertext copied onto another row
 * (or another conversation) fails authentication instead of showing up as that row's text.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { EncryptionConfig } from "../../config";
import { AppError, ErrorCode } from "../../graphql/errors";

const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
const ALGORITHM = "aes-256-gcm";

/** The columns that hold a message's text: either content, or encrypted_content with key_id. */
export interface StoredContent {
  content: string | null;
  /** pg returns bytea as a Buffer, PGlite as a plain Uint8Array; both are handled as Uint8Array. */
  encryptedContent: Uint8Array | null;
  keyId: string | null;
}

/** What reading a message's text needs: its text columns and the position its ciphertext is bound to. */
export interface ContentRow extends StoredContent {
  id?: string;
  conversationId: string;
  seq: number;
  /** Set for a chunk of a streamed message: its index, part of what the ciphertext is bound to. */
  chunk?: number;
}

/**
 * Stored content that cannot be turned back into text: tampered or moved ciphertext, a key id missing from
 * the ring, or no ring at all. An AppError so clients get a clear message rather than the generic "Internal
 * server error" (and never garbage); `reason` is for the logs only.
 */
export class UndecryptableContentError extends AppError {
  constructor(readonly reason: string) {
    super("Message content could not be decrypted", ErrorCode.INTERNAL_SERVER_ERROR, {
      extensions: { reason: "CONTENT_UNDECRYPTABLE" },
    });
  }
}

/** What a ciphertext is bound to: its row (and chunk), so one moved elsewhere fails authentication. */
function aad(conversationId: string, seq: number, chunk?: number): Buffer {
  return Buffer.from(chunk === undefined ? `${conversationId}:${seq}` : `${conversationId}:${seq}:chunk:${chunk}`, "utf8");
}

/** Encrypts `text` for the row (conversationId, seq) with the ring's current key. */
export function encryptContent(
  encryption: EncryptionConfig,
  conversationId: string,
  seq: number,
  text: string,
  chunk?: number,
): { encryptedContent: Buffer; keyId: string } {
  const iv = randomBytes(IV_BYTES); // random per message: GCM must never reuse an iv under one key
  const cipher = createCipheriv(ALGORITHM, encryption.keys.get(encryption.currentKeyId)!, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(conversationId, seq, chunk));
  const ciphertext = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
  return {
    encryptedContent: Buffer.concat([Buffer.of(FORMAT_VERSION), iv, cipher.getAuthTag(), ciphertext]),
    keyId: encryption.currentKeyId,
  };
}

/** Decrypts a row's encrypted_content; UndecryptableContentError when that is impossible or fails authentication. */
export function decryptContent(encryption: EncryptionConfig | undefined, message: ContentRow): string {
  if (!encryption) throw new UndecryptableContentError("content is encrypted but no key ring is configured (MESSAGE_ENCRYPTION_KEYS)");
  const key = message.keyId == null ? undefined : encryption.keys.get(message.keyId);
  if (!key) throw new UndecryptableContentError(`key "${message.keyId}" is not in MESSAGE_ENCRYPTION_KEYS`);
  const blob = message.encryptedContent;
  if (!blob || blob.length < HEADER_BYTES || blob[0] !== FORMAT_VERSION) {
    throw new UndecryptableContentError("encrypted_content is missing or not in a known format");
  }
  try {
    const decipher = createDecipheriv(ALGORITHM, key, blob.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(message.conversationId, message.seq, message.chunk));
    decipher.setAuthTag(blob.subarray(1 + IV_BYTES, HEADER_BYTES));
    return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    // final() throws when the tag does not match: altered bytes, another row's ciphertext, or the wrong key.
    throw new UndecryptableContentError("authentication failed: the ciphertext was altered, moved from another row, or the key is wrong");
  }
}

/** The text of a message, whichever way it is stored. The one way to read message content. */
export function messageText(encryption: EncryptionConfig | undefined, message: ContentRow): string {
  return message.content ?? decryptContent(encryption, message);
}

/** The text columns to store for a new message: encrypted with the current key when there is a ring, else plain. */
export function storedContent(
  encryption: EncryptionConfig | undefined,
  conversationId: string,
  seq: number,
  text: string,
  chunk?: number,
): StoredContent {
  return encryption
    ? { content: null, ...encryptContent(encryption, conversationId, seq, text, chunk) }
    : { content: text, encryptedContent: null, keyId: null };
}
