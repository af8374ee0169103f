/**
 * Alerts (system_alerts): raised by services and admins here, and by the ledger in its own statement when a
 * budget threshold is crossed (usage/budget.*). Whoever inserts one announces it (publishAlertRaised or
 * alertRaisedSql), which wakes alertRaised streams and the webhook worker (webhook.ts).
 *
 * Who sees what: admins every alert; anyone else only the alerts whose userId is theirs (a member's budget
 * alerts, a service's own). Only admins acknowledge and resolve, audited; both are idempotent.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { isAdmin, viewerOf, type Viewer } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, trimmedText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { audit } from "../audit/audit.service";
import { publishAlertRaised } from "../live/live.hub";
import { SystemAlert } from "./alert.model";
import type { AlertsArgs, RaiseAlertInput } from "./alert.input";

/** Trimmed, 1 to `max` characters (as PostgreSQL counts them: code points), no NUL. */
/**
 * Whom a new alert may concern. Naming a user lets that user see the alert, so only admins name anyone; a
 * service may name itself (its own alerts, which it can then list and watch) and no one else, since alerting
 * a member about a conversation it serves is not what its grants are for.
 */
async function concerned(ctx: Actor, viewer: Viewer, userId: string | null | undefined): Promise<string | null> {
  if (userId == null) return null;
  if (!isAdmin(viewer) && userId !== viewer.id) throw new ForbiddenError("A service may raise alerts about itself only; admins may name any user");
  const exists = await ctx.db.knex("users").where({ id: userId }).first("id");
  if (!exists) throw new BadUserInputError("userId names no user", { field: "userId" });
  return userId;
}

export async function raiseAlert(ctx: Actor, input: RaiseAlertInput): Promise<SystemAlert> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Alerts are raised by services and admins");
  const source = trimmedText(input.source, "source", 100);
  const message = trimmedText(input.message, "message", 2000);
  const details = input.details ?? {};
  checkJson(details, "details", "object");
  const userId = await concerned(ctx, viewer, input.userId);
  return ctx.db.knex.transaction(async (trx) => {
    const [row] = await trx("system_alerts")
      .insert({ source, severity: input.severity, message, details: JSON.stringify(details), userId, raisedBy: viewer.id })
      .returning("*");
    const alert = SystemAlert.fromDatabaseJson(row);
    await publishAlertRaised(trx, alert.id, alert.userId);
    return alert;
  });
}

function alertAdmin(ctx: Actor): Viewer {
  const viewer = viewerOf(ctx);
  if (!isAdmin(viewer)) throw new ForbiddenError("Alerts are acknowledged and resolved by admins");
  return viewer;
}

/**
 * Sets the alert's `step` (acknowledged or resolved) unless it is set already, audited; returns the alert as
 * it is either way, so a retry (or a second admin) changes nothing and gets the first one's answer.
 */
async function settle(
  ctx: Actor,
  id: string,
  step: "acknowledged" | "resolved",
  also: (trx: Knex.Transaction, viewer: Viewer) => Record<string, Knex.Raw> = () => ({}),
): Promise<SystemAlert> {
  const viewer = alertAdmin(ctx);
  return ctx.db.knex.transaction(async (trx) => {
    const [changed] = await trx("system_alerts")
      .where({ id })
      .whereNull(`${step}At`)
      .update({ [`${step}At`]: trx.fn.now(), [`${step}By`]: viewer.id, ...also(trx, viewer) })
      .returning("*");
    if (changed) {
      await audit(ctx, { action: `alert.${step === "acknowledged" ? "acknowledge" : "resolve"}`, targetType: "system_alert", targetId: id }, trx);
      return SystemAlert.fromDatabaseJson(changed);
    }
    const alert = await SystemAlert.query(trx).findById(id);
    if (!alert) throw new NotFoundError("Alert");
    return alert;
  });
}

/** Someone is on it (idempotent). */
export function acknowledgeAlert(ctx: Actor, id: string): Promise<SystemAlert> {
  return settle(ctx, id, "acknowledged");
}

/** It is over (idempotent); an alert resolved before anyone acknowledged it counts as acknowledged by the resolver. */
export function resolveAlert(ctx: Actor, id: string): Promise<SystemAlert> {
  return settle(ctx, id, "resolved", (trx, viewer) => ({
    acknowledgedAt: trx.raw("coalesce(acknowledged_at, now())"),
    acknowledgedBy: trx.raw("case when acknowledged_at is null then ?::uuid else acknowledged_by end", [viewer.id]),
  }));
}

/** The alerts the viewer may see: all for admins, else those about the viewer. */
export function visibleAlerts(ctx: Actor, viewer: Viewer, knex: Knex = ctx.db.knex) {
  const query = SystemAlert.query(knex);
  if (!isAdmin(viewer)) query.where("userId", viewer.id);
  return query;
}

/** Newest first; admins every alert, anyone else those about them. */
export async function listAlerts(ctx: Actor, args: AlertsArgs): Promise<ConnectionShape<SystemAlert>> {
  const viewer = viewerOf(ctx);
  const page = pageRequest(args, ctx.config);
  const { severity, source, acknowledged, resolved, from, to } = args.filter ?? {};
  const filtered = () => {
    const query = visibleAlerts(ctx, viewer);
    if (severity) query.where("severity", severity);
    if (source != null) query.where("source", source.trim());
    if (acknowledged != null) query.where((q) => (acknowledged ? q.whereNotNull("acknowledgedAt") : q.whereNull("acknowledgedAt")));
    if (resolved != null) query.where((q) => (resolved ? q.whereNotNull("resolvedAt") : q.whereNull("resolvedAt")));
    if (from) query.where("createdAt", ">=", from);
    if (to) query.where("createdAt", "<", to);
    return query;
  };
  return newestFirstPage(filtered, page, "createdAt", "created_at");
}
