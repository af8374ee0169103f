/**
 * alertRaised: each new alert the viewer may see (admins: every alert; anyone else: the alerts about them), as
 * its notification arrives. The hub routes an alert's notification only to the streams allowed to see it (by
 * its user id), and the stream reads the alerts it is told of through the same rule again.
 *
 * Alerts have no sequence to resume from. If notifications may have been missed (the LISTEN connection
 * dropped), the stream reads the alerts raised since its last such check (with a margin for transactions that
 * committed late) and sends those it has not sent. If the database stays away past LIVE_RETRY_SECONDS, the
 * stream ends with SERVICE_UNAVAILABLE: subscribe again, then reload with `alerts`.
 */
import type { Actor } from "../actor";
import { isAdmin, viewerOf } from "../user/viewer";
import { AlertBell, ALL_ALERTS } from "../live/live.hub";
import { liveHubOf, PAGE } from "../live/message-stream";
import { openLiveStream, StreamError } from "../live/live-stream";
import type { SystemAlert } from "./alert.model";
import { visibleAlerts } from "./alert.service";

/** How far back a re-check looks beyond the last one: an alert's createdAt is its transaction's start, not its commit. */
const RECHECK_MARGIN_MS = 60_000;

export async function subscribeAlertRaised(ctx: Actor): Promise<AsyncIterableIterator<SystemAlert | StreamError>> {
  const viewer = viewerOf(ctx);
  const hub = liveHubOf(ctx);
  const live = openLiveStream(ctx, { reload: "with alerts" }); // no seq to resume after: start over
  const knex = ctx.db.knex;
  const bell = new AlertBell();
  const unwatch = hub.watchAlerts(isAdmin(viewer) ? ALL_ALERTS : viewer.id, bell);
  async function databaseNow(): Promise<number> {
    const [{ now }] = (await knex.select(knex.raw("now() as now"))) as { now: Date }[];
    return now.getTime();
  }

  /** Re-checks read alerts created from here on (the database's clock), minus the margin. */
  let checkedFrom: number;
  try {
    checkedFrom = await databaseNow(); // after watching: an alert committed from here on rings the bell
  } catch (error) {
    unwatch();
    throw error;
  }
  /** Alerts sent that a re-check could find again, by id → createdAt (ms); older ones are dropped. */
  const sent = new Map<string, number>();

  async function read(ids: string[], recheck: boolean): Promise<SystemAlert[]> {
    const byId = ids.length ? await visibleAlerts(ctx, viewer).whereIn("id", ids) : [];
    if (!recheck) return byId;
    const now = await databaseNow();
    const since = new Date(checkedFrom - RECHECK_MARGIN_MS);
    const missed = await visibleAlerts(ctx, viewer).where("createdAt", ">=", since).orderBy("createdAt", "desc").limit(PAGE);
    checkedFrom = now;
    const found = new Map([...byId, ...missed].map((alert) => [alert.id, alert]));
    return [...found.values()];
  }

  async function* stream(): AsyncGenerator<SystemAlert | StreamError> {
    try {
      for (;;) {
        await bell.wait();
        if (bell.closed) return;
        bell.clear();
        const ids = [...bell.raised];
        bell.raised = new Set();
        const recheck = bell.recheck;
        bell.recheck = false;
        let alerts: SystemAlert[];
        try {
          alerts = await read(ids, recheck);
          live.recovered();
        } catch (error) {
          if (!(await live.retry(error, bell))) throw error;
          // Read again with any raised meanwhile; notifications may have been missed while the database was away.
          for (const id of ids) bell.note(id);
          bell.ring(true);
          continue;
        }
        alerts.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
        for (const [id, createdAt] of sent) if (createdAt < checkedFrom - RECHECK_MARGIN_MS) sent.delete(id);
        for (const alert of alerts) {
          if (sent.has(alert.id)) continue;
          sent.set(alert.id, alert.createdAt.getTime());
          yield alert;
        }
      }
    } catch (error) {
      yield new StreamError(error);
    } finally {
      unwatch();
    }
  }
  return live.iterator(stream(), bell, unwatch);
}
