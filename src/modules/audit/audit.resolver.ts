import { Args, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { AuditLog } from "./audit-log.model";
import { AuditLogsArgs } from "./audit.input";
import { listAuditLogs } from "./audit.service";

export const AuditLogConnection = ConnectionType(AuditLog);

@Resolver(() => AuditLog)
export class AuditLogResolver {
  @Query(() => AuditLogConnection, { description: "Admins only: changes to access and data, newest first" })
  auditLogs(@Args() args: AuditLogsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<AuditLog>> {
    return listAuditLogs(ctx, args);
  }
}
