/**
 * Key management through the API: users create, list and revoke their own keys; admins also other users'.
 * Every change is audited in the same transaction.
 */
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { ACCESS_CHANNEL, notify } from "../../db/notifications";
import { audit } from "../audit/audit.service";
import { Role } from "../user/role.enum";
import { User } from "../user/user.model";
import { isAdmin, roleAtMost } from "../user/viewer";
import { ApiKey, CreatedApiKey } from "./api-key.model";
import { createApiKey } from "./api-key.service";

/** Whose keys the viewer means: their own, or (admins only) another user's. */
function keyOwner(ctx: Actor, userId: string | undefined | null): string {
  const viewer = viewerOf(ctx);
  if (!userId || userId === viewer.id) return viewer.id;
  if (!isAdmin(viewer)) throw new ForbiddenError("Only admins manage other users' keys");
  return userId;
}

export async function createKey(ctx: Actor, name: string, role: Role | null | undefined, userId?: string | null): Promise<CreatedApiKey> {
  if (name.trim().length < 1 || name.length > 100) throw new BadUserInputError("name must be 1 to 100 characters", { field: "name" });
  checkText(name, "name");
  const ownerId = keyOwner(ctx, userId);
  const owner = await User.query(ctx.db.knex).findById(ownerId);
  if (!owner) throw new NotFoundError("User");
  // A key may be limited to a lower role, never raised above its user's (nor, for the caller's own keys,
  // above the role the caller is acting with now).
  const ceiling = ownerId === ctx.viewer!.id ? ctx.viewer!.role : owner.role;
  const requested = role ?? ceiling;
  if (!roleAtMost(requested, ceiling)) throw new ForbiddenError(`A key cannot have a higher role than ${ceiling.toUpperCase()}`);
  const keyRole = requested === owner.role ? null : requested; // NULL: simply the user's role
  return ctx.db.knex.transaction(async (trx) => {
    const { key, secret } = await createApiKey(trx, ownerId, name, keyRole);
    await audit(ctx, { action: "api_key.create", targetType: "api_key", targetId: key.id, details: { userId: ownerId, name, role: keyRole } }, trx);
    return Object.assign(new CreatedApiKey(), key, { key: secret });
  });
}

export async function listKeys(ctx: Actor, userId?: string | null): Promise<ApiKey[]> {
  return ApiKey.query(ctx.db.knex).where("userId", keyOwner(ctx, userId)).orderBy("createdAt", "desc");
}

/**
 * Idempotent. The key stops working at once: authentication reads revoked_at on every request, and the
 * notification (sent when the revocation commits) closes the key's open websockets on every server.
 */
export async function revokeKey(ctx: Actor, id: string): Promise<ApiKey> {
  const viewer = viewerOf(ctx);
  const key = await ApiKey.query(ctx.db.knex).findById(id);
  if (!key || (key.userId !== viewer.id && !isAdmin(viewer))) throw new NotFoundError("API key");
  if (key.revokedAt) return key;
  const revoked = await ctx.db.knex.transaction(async (trx) => {
    const [row] = (await ApiKey.query(trx).patch({ revokedAt: new Date() }).where("id", id).returning("*")) as unknown as ApiKey[];
    await audit(ctx, { action: "api_key.revoke", targetType: "api_key", targetId: id, details: { userId: key.userId } }, trx);
    await notify(trx, ACCESS_CHANNEL, { apiKeyId: id });
    return row;
  });
  ctx.apiKeyCache?.clear(); // this process at once; the others when the notification arrives
  return revoked;
}
