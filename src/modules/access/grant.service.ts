/** Managing service grants (admins), audited in the same transaction. */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { ACCESS_CHANNEL, notify } from "../../db/notifications";
import { audit } from "../audit/audit.service";
import { Role } from "../user/role.enum";
import { User } from "../user/user.model";
import { isAdmin } from "../user/viewer";
import { Conversation } from "../conversation/conversation.model";
import type { ConversationOrigin } from "../conversation/conversation.enums";
import { ServiceGrant } from "./grant.model";
import type { GrantServiceInput } from "./grant.input";

function assertAdmin(ctx: Actor): void {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("Grants are managed by admins");
}

export async function grantService(ctx: Actor, input: GrantServiceInput): Promise<ServiceGrant> {
  assertAdmin(ctx);
  if ((input.conversationId == null) === (input.origin == null)) {
    throw new BadUserInputError("Pass exactly one of conversationId and origin");
  }
  const service = await User.query(ctx.db.knex).findById(input.serviceId);
  if (!service) throw new NotFoundError("User");
  if (service.role !== Role.SERVICE) throw new BadUserInputError("Grants are for users with role SERVICE");
  if (input.conversationId && !(await Conversation.query(ctx.db.knex).findById(input.conversationId))) {
    throw new NotFoundError("Conversation");
  }
  return ctx.db.knex.transaction(async (trx) => {
    const [row] = await trx("service_grants")
      .insert({ serviceId: input.serviceId, conversationId: input.conversationId ?? null, origin: input.origin ?? null, createdBy: ctx.viewer!.id })
      .onConflict()
      .ignore()
      .returning("*");
    if (!row) throw new ConflictError("The service already has this grant");
    await audit(ctx, { action: "grant.create", targetType: "service_grant", targetId: row.id, details: { ...input } }, trx);
    return ServiceGrant.fromDatabaseJson(row);
  });
}

export async function revokeServiceGrant(ctx: Actor, id: string): Promise<boolean> {
  assertAdmin(ctx);
  return ctx.db.knex.transaction(async (trx) => {
    const [row] = await trx("service_grants").where({ id }).delete().returning("*");
    if (!row) throw new NotFoundError("Grant");
    await audit(ctx, { action: "grant.revoke", targetType: "service_grant", targetId: id, details: { serviceId: row.serviceId } }, trx);
    await notify(trx, ACCESS_CHANNEL, { serviceId: row.serviceId }); // its open streams re-check their access
    return true;
  });
}

export async function listServiceGrants(ctx: Actor, serviceId: string | null): Promise<ServiceGrant[]> {
  const viewer = viewerOf(ctx);
  const query = ServiceGrant.query(ctx.db.knex).orderBy("createdAt");
  if (isAdmin(viewer)) return serviceId ? query.where("serviceId", serviceId) : query;
  if (viewer.role !== Role.SERVICE || (serviceId && serviceId !== viewer.id)) throw new ForbiddenError("Only admins see other services' grants");
  return query.where("serviceId", viewer.id);
}

/**
 * The operator's CLI (`create-key --grant ORIGIN`): a service gets every conversation of an origin, audited
 * without an actor (whoever runs the CLI has the database). Idempotent.
 */
export async function grantOrigin(knex: Knex, serviceId: string, origin: ConversationOrigin): Promise<void> {
  await knex.transaction(async (trx) => {
    const [row] = await trx("service_grants").insert({ serviceId, origin }).onConflict().ignore().returning("id");
    if (!row) return;
    await trx("audit_logs").insert({
      action: "grant.create",
      targetType: "service_grant",
      targetId: row.id,
      details: JSON.stringify({ serviceId, origin, via: "cli" }),
    });
  });
}
