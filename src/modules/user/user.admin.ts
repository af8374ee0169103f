/**
 * User management: admins list, create, re-role, deactivate and reactivate users; the Discord adapter
 * (a service granted the DISCORD origin) upserts users by Discord id. Admins cannot demote or deactivate
 * themselves, so an install cannot lose its last way in by accident.
 */
import type { Actor } from "../actor";
import { viewerOf } from "./viewer";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { ACCESS_CHANNEL, notify } from "../../db/notifications";
import { audit } from "../audit/audit.service";
import { assertMayActFor } from "../access/access.service";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { Role } from "./role.enum";
import { User } from "./user.model";
import { isAdmin } from "./viewer";
import type { CreateUserInput, UpsertDiscordUserInput, UsersArgs } from "./user.input";

function assertAdmin(ctx: Actor): void {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("User management is for admins");
}

export async function listUsers(ctx: Actor, args: UsersArgs): Promise<ConnectionShape<User>> {
  assertAdmin(ctx);
  const filtered = () => {
    const query = User.query(ctx.db.knex);
    if (args.filter?.role) query.where("role", args.filter.role);
    if (args.filter?.isActive != null) query.where("isActive", args.filter.isActive);
    const search = args.filter?.search?.trim();
    if (search) {
      // A plain substring: % and _ typed by the admin match themselves. No index serves it, so it scans users:
      // fine for an admin's picker; a trigram index would be the step for deployments with millions of users.
      const pattern = `%${search.replace(/[\\%_]/g, "\\$&")}%`;
      query.where((match) => match.where("displayName", "ilike", pattern).orWhere("email", "ilike", pattern));
    }
    return query;
  };
  return newestFirstPage(filtered, pageRequest(args, ctx.config), "createdAt", "created_at");
}

export async function createUser(ctx: Actor, input: CreateUserInput): Promise<User> {
  assertAdmin(ctx);
  return ctx.db.knex.transaction(async (trx) => {
    const user = await User.query(trx).insertAndFetch({
      displayName: input.displayName,
      role: input.role ?? Role.MEMBER, // an explicit null means the default
      email: input.email ?? null,
      externalId: input.externalId ?? null,
    });
    await audit(ctx, { action: "user.create", targetType: "user", targetId: user.id, details: { role: user.role } }, trx);
    return user;
  });
}

async function changeUser(ctx: Actor, id: string, patch: Partial<User>, action: string): Promise<User> {
  assertAdmin(ctx);
  if (id === ctx.viewer!.id) throw new ForbiddenError("Admins cannot change their own role or deactivate themselves");
  const changed = await ctx.db.knex.transaction(async (trx) => {
    const [user] = (await User.query(trx).patch(patch).where("id", id).returning("*")) as unknown as User[];
    if (!user) throw new NotFoundError("User");
    await audit(ctx, { action, targetType: "user", targetId: id, details: patch as Record<string, unknown> }, trx);
    // Open websockets of the user run with the old role or after deactivation: every server closes them.
    await notify(trx, ACCESS_CHANNEL, { userId: id });
    ctx.loaders.userById.clear(id).prime(id, user);
    return user;
  });
  ctx.apiKeyCache?.clear(); // this process at once; the others when the notification arrives
  return changed;
}

export const setUserRole = (ctx: Actor, id: string, role: Role) => changeUser(ctx, id, { role }, "user.set_role");
/** A deactivated user's keys and tokens stop working at once. */
export const deactivateUser = (ctx: Actor, id: string) => changeUser(ctx, id, { isActive: false }, "user.deactivate");
export const reactivateUser = (ctx: Actor, id: string) => changeUser(ctx, id, { isActive: true }, "user.reactivate");

/** The member with this Discord id, created or renamed as needed (Discord names change). */
export async function upsertDiscordUser(ctx: Actor, input: UpsertDiscordUserInput): Promise<User> {
  await assertMayActFor(ctx, ConversationOrigin.DISCORD);
  if (input.displayName.trim() === "") throw new BadUserInputError("displayName must not be blank");
  checkText(input.displayName, "displayName");
  checkText(input.discordId, "discordId");
  return ctx.db.knex.transaction(async (trx) => {
    const [row] = await trx("users")
      .insert({ discordId: input.discordId, displayName: input.displayName, role: Role.MEMBER })
      .onConflict("discordId")
      .merge(["displayName"])
      // A Discord id an admin linked to a non-member account is left alone: the adapter renames only its members.
      .where("users.role", Role.MEMBER)
      .returning(["*", trx.raw("(xmax = 0) as inserted")]);
    if (!row) return User.query(trx).findOne({ discordId: input.discordId }).throwIfNotFound();
    if (row.inserted) await audit(ctx, { action: "user.create", targetType: "user", targetId: row.id, details: { discordId: input.discordId } }, trx);
    const { inserted: _inserted, ...user } = row;
    return User.fromDatabaseJson(user);
  });
}
