/**
 * The audit log: every mutation that changes access or data records actor, action, target, IP and
 * request id. Written in the same transaction as the change when there is one, so neither exists alone.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { ForbiddenError } from "../../graphql/errors";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { isAdmin } from "../user/viewer";
import { AuditLog } from "./audit-log.model";
import type { AuditLogsArgs } from "./audit.input";

export interface AuditEntry {
  action: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
}

export async function audit(ctx: Actor, entry: AuditEntry, trx?: Knex.Transaction): Promise<void> {
  await (trx ?? ctx.db.knex)("audit_logs").insert({
    actorId: ctx.viewer?.id ?? null,
    action: entry.action,
    targetType: entry.targetType ?? null,
    targetId: entry.targetId ?? null,
    details: JSON.stringify(entry.details ?? {}),
    ip: ctx.ip,
    requestId: ctx.requestId,
  });
}

export async function listAuditLogs(ctx: Actor, args: AuditLogsArgs): Promise<ConnectionShape<AuditLog>> {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("The audit log is for admins");
  const page = pageRequest(args, ctx.config);
  const { actorId, action, targetType, targetId, from, to } = args.filter ?? {};
  const filtered = () => {
    const query = AuditLog.query(ctx.db.knex);
    if (actorId) query.where("actorId", actorId);
    if (action) query.where("action", action);
    if (targetType) query.where("targetType", targetType);
    if (targetId) query.where("targetId", targetId);
    if (from) query.where("createdAt", ">=", from);
    if (to) query.where("createdAt", "<", to);
    return query;
  };
  return newestFirstPage(filtered, page, "createdAt", "created_at");
}
