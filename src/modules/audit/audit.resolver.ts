import { Args, Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { AuditLog } from "./audit-log.model";
import { AuditLogsArgs } from "./audit.input";
import { listAuditLogs } from "./audit.service";
import { User } from "../user/user.model";

export const AuditLogConnection = ConnectionType(AuditLog);

@Resolver(() => AuditLog)
export class AuditLogResolver {
  @Query(() => AuditLogConnection, { description: "Admins only: changes to access and data, newest first" })
  auditLogs(@Args() args: AuditLogsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<AuditLog>> {
    return listAuditLogs(ctx, args);
  }

  @FieldResolver(() => User, { nullable: true, description: "Who did it; null for the system, or when that account was deleted" })
  actor(@Root() entry: AuditLog, @Ctx() ctx: Context): Promise<User | undefined> | undefined {
    return entry.actorId ? ctx.loaders.userById.load(entry.actorId) : undefined;
  }
}
