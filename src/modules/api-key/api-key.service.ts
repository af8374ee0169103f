/**
 * API keys: random secrets shown once and stored only as a SHA-256 hash. A 256-bit random secret needs no
 * slow hash (there is nothing to brute-force), and a plain hash lets the lookup use a unique index.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { prepared } from "../../db/prepared";
import { Role } from "../user/role.enum";
import { lowerRole, type Viewer } from "../user/viewer";
import { User } from "../user/user.model";
import { ApiKey } from "./api-key.model";
import type { ApiKeyCache } from "./api-key.cache";

const KEY_PREFIX = "pk_";
const KEY_PATTERN = /^pk_[A-Za-z0-9_-]{43}$/;
/** last_used_at is a hint for operators; writing it at most once a minute keeps reads read-only. */
const LAST_USED_RESOLUTION_MS = 60_000;

export const isApiKey = (token: string) => token.startsWith(KEY_PREFIX);

export function hashKey(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function generateKey(): { secret: string; prefix: string; hash: string } {
  const secret = KEY_PREFIX + randomBytes(32).toString("base64url");
  return { secret, prefix: secret.slice(0, 11), hash: hashKey(secret) };
}

/** Creates a key for a user; returns the row and the secret (which is not stored). */
export async function createApiKey(knex: Knex, userId: string, name: string, role: Role | null = null) {
  const { secret, prefix, hash } = generateKey();
  const key = await ApiKey.query(knex).insertAndFetch({ userId, name, prefix, keyHash: hash, role });
  return { key, secret };
}

/** The viewer a bearer secret stands for, or undefined (unknown, revoked or deactivated). */
export async function authenticateApiKey(knex: Knex, secret: string, cache?: ApiKeyCache): Promise<Viewer | undefined> {
  if (!KEY_PATTERN.test(secret)) return undefined;
  const hash = hashKey(secret);
  const now = Date.now();
  const cached = cache?.get(hash, now);
  const found = cached ?? (await lookUpKey(knex, hash));
  if (!found) return undefined;
  if (now - found.lastUsedAt > LAST_USED_RESOLUTION_MS) {
    found.lastUsedAt = now;
    touch(knex, [found.viewer.apiKeyId!]);
  }
  if (!cached) cache?.set(hash, found.viewer, found.lastUsedAt, now);
  return found.viewer;
}

/** The key's viewer, and when its last_used_at was written (epoch ms, 0 for never). */
async function lookUpKey(knex: Knex, hash: string): Promise<{ viewer: Viewer; lastUsedAt: number } | undefined> {
  const row:
    | { keyId: string; keyRole: Role | null; lastUsedAt: Date | null; id: string; role: Role; displayName: string }
    | undefined = await prepared(knex("api_keys as k"))
    .join("users as u", "u.id", "k.user_id")
    .where("k.key_hash", hash)
    .whereNull("k.revoked_at")
    .where("u.is_active", true)
    .first("k.id as key_id", "k.role as key_role", "k.last_used_at", "u.id", "u.role", "u.display_name");
  if (!row) return undefined;
  const role = row.keyRole ? lowerRole(row.role, row.keyRole) : row.role;
  return { viewer: { id: row.id, role, displayName: row.displayName, apiKeyId: row.keyId }, lastUsedAt: row.lastUsedAt?.getTime() ?? 0 };
}

/** Per database: keys used lately whose last_used_at is still to be written, and the timer that writes them. */
const touched = new WeakMap<Knex, { keys: Set<string>; timer: NodeJS.Timeout }>();
/** How long touches gather before one statement writes them all. */
const TOUCH_BATCH_MS = 100;
/** How long touches wait after a failed write (the database away) before the next try. */
const TOUCH_RETRY_MS = 2_000;

/**
 * Not awaited: bookkeeping must not slow down or fail the request. The keys touched within TOUCH_BATCH_MS
 * are written by one statement, so many first requests of many keys (a deploy, a burst of new sessions)
 * cost one write, not one each. Shutdown writes what is pending (flushKeyUsage) before the pool closes.
 */
function touch(knex: Knex, keyIds: Iterable<string>, delayMs = TOUCH_BATCH_MS): void {
  const pending = touched.get(knex);
  if (pending) {
    for (const keyId of keyIds) pending.keys.add(keyId);
    return;
  }
  const timer = setTimeout(() => void flushKeyUsage(knex, { retry: true }), delayMs).unref();
  touched.set(knex, { keys: new Set(keyIds), timer });
}

/**
 * Writes the pending last_used_at touches now; the server calls it on shutdown, before closing the database.
 * With `retry`, touches that could not be written (the database away) are kept and tried again later.
 */
export async function flushKeyUsage(knex: Knex, { retry = false } = {}): Promise<void> {
  const pending = touched.get(knex);
  if (!pending) return;
  touched.delete(knex);
  clearTimeout(pending.timer);
  await knex("api_keys")
    .whereRaw("id = any(?::uuid[])", [[...pending.keys]])
    .update({ lastUsedAt: knex.fn.now() })
    .catch(() => {
      if (retry) touch(knex, pending.keys, TOUCH_RETRY_MS);
    });
}

/**
 * First start of an empty embedded database: an admin and its key, so that `npm start` alone gives a usable
 * server (the CLI cannot open the folder while the server runs). Returns undefined when users exist.
 */
export async function bootstrapAdmin(knex: Knex) {
  return knex.transaction(async (trx) => {
    await trx.raw("lock table users in exclusive mode"); // two first starts must not both bootstrap
    if (await User.query(trx).first()) return undefined;
    return createUserKey(trx, "admin", Role.ADMIN);
  });
}

/**
 * The CLI's `create-key`: the user with this display name and role (created when missing) and a new key.
 */
export async function createUserKey(knex: Knex, name: string, role: Role) {
  // Inside bootstrapAdmin this is a savepoint of the outer transaction.
  return knex.transaction(async (trx) => {
    let user = await User.query(trx).where({ displayName: name, role }).orderBy("createdAt").first();
    user ??= await User.query(trx).insertAndFetch({ displayName: name, role });
    const { key, secret } = await createApiKey(trx, user.id, `${name} (cli)`);
    return { user, key, secret };
  });
}
