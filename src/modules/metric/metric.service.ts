/**
 * Metrics reported by client bots. Services record and read back their own; admins read everyone's;
 * members have no access (metrics describe the bots, not the member's conversations).
 */
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ForbiddenError, PayloadTooLargeError } from "../../graphql/errors";
import { checkJson, checkText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { Role } from "../user/role.enum";
import { isAdmin, type Viewer } from "../user/viewer";
import { Metric } from "./metric.model";
import type { MetricInput, MetricsArgs } from "./metric.input";

function metricsViewer(ctx: Actor): Viewer {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Metrics are for services and admins");
  return viewer;
}

/** Stores all the metrics or none (one multi-row insert); returns how many were stored. */
export async function recordMetrics(ctx: Actor, input: MetricInput[]): Promise<number> {
  const viewer = metricsViewer(ctx);
  if (input.length === 0) return 0;
  if (input.length > ctx.config.maxMetricsBatch) {
    throw new PayloadTooLargeError(`At most ${ctx.config.maxMetricsBatch} metrics per call`);
  }
  const rows = input.map((metric, index) => {
    checkText(metric.clientBotId, `input[${index}].clientBotId`);
    checkText(metric.metricType, `input[${index}].metricType`);
    if (metric.data != null) checkJson(metric.data, `input[${index}].data`, "object");
    if (metric.recordedAt && Number.isNaN(metric.recordedAt.getTime())) {
      throw new BadUserInputError(`input[${index}].recordedAt is not a valid time`);
    }
    return {
      clientBotId: metric.clientBotId,
      metricType: metric.metricType,
      metricData: JSON.stringify(metric.data ?? {}),
      recordedAt: metric.recordedAt ?? new Date(),
      recordedBy: viewer.id,
    };
  });
  await ctx.db.knex("metrics").insert(rows);
  return rows.length;
}

/** Newest first, keyset-paged on (recorded_at, id). */
export async function listMetrics(ctx: Actor, args: MetricsArgs): Promise<ConnectionShape<Metric>> {
  const viewer = metricsViewer(ctx);
  const page = pageRequest(args, ctx.config);
  const { clientBotId, metricType, from, to } = args.filter ?? {};
  const filtered = () => {
    const query = Metric.query(ctx.db.knex);
    if (!isAdmin(viewer)) query.where("recordedBy", viewer.id);
    if (clientBotId != null) query.where("clientBotId", clientBotId);
    if (metricType != null) query.where("metricType", metricType);
    if (from) query.where("recordedAt", ">=", from);
    if (to) query.where("recordedAt", "<", to);
    return query;
  };
  return newestFirstPage(filtered, page, "recordedAt", "recorded_at");
}
