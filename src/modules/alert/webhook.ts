/**
 * The alert webhook: every new alert is POSTed to ALERT_WEBHOOK_URL as JSON, signed, retried with backoff
 * across restarts, each attempt's outcome kept on its alert_deliveries row (the outbox).
 *
 * Into the outbox. Alerts are inserted by several writers (raiseAlert, the ledger's budget statement), so the
 * worker, not the writers, puts them in the outbox: each pass inserts a delivery row for every alert that has
 * none, created since the webhook was first turned on. That moment is stored once, by the first server that
 * runs with a URL, in system_configs (`alerts.webhook_since`), so a restart (or a fleet down for a while) skips
 * nothing raised meanwhile, while alerts from before the webhook existed are never sent. Passes of several
 * servers take an advisory lock for the insert, so no alert gets two delivery rows (there is no unique key on
 * alert_id). Only the last LOOKBACK_DAYS are looked at, which bounds the anti-join however many alerts pile up.
 *
 * Out of it. A pass claims due rows with FOR UPDATE SKIP LOCKED and, in the same statement, counts the attempt
 * and moves next_attempt_at past the attempt's timeout (a lease): no other server takes the row meanwhile,
 * and no lock is held during the HTTP call (PGlite has one connection). The outcome is written only if the
 * row is still the one claimed (same attempts), so a server that lost its lease writes nothing. A server that
 * dies mid-attempt leaves the lease to expire; another server retries the row then. Delivery is therefore at
 * least once: a receiver that dedupes on x-parley-delivery sees each alert once.
 *
 * Passes run when an alert is announced (NOTIFY), when the LISTEN connection comes back, when the earliest
 * retry falls due, and every POLL_MS regardless. An outage makes a pass fail: it is logged and the next one
 * tries again.
 */
import { createHmac } from "node:crypto";
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { AlertWebhookConfig } from "../../config";
import { SystemAlert } from "./alert.model";

/** system_configs key of the moment alerts began to be delivered (a JSON timestamp); admins may move it. */
export const WEBHOOK_SINCE_KEY = "alerts.webhook_since";
/** Alerts older than this are never put in the outbox (bounds each pass's scan). */
const LOOKBACK_DAYS = 7;
/** Longest wait between two attempts of one delivery. */
const MAX_BACKOFF_MS = 5 * 60_000;
/** A pass runs at least this often, for alerts whose notification was missed. */
const POLL_MS = 5_000;
/** Deliveries claimed (and POSTed concurrently) per round of a pass. */
const BATCH = 10;
/** Beyond the timeout, how long a claimed attempt may take to record its outcome before another server retries. */
const LEASE_MARGIN_MS = 30_000;
/** pg_advisory_xact_lock key of the outbox insert: any fixed number no other lock of Parley's uses. */
const OUTBOX_LOCK = 4_771_201_614_113;
const ERROR_MAX = 500;

/** The wait before attempt `attempts + 1`: base, 2×base, 4×base … at most 5 minutes. */
export function backoffMs(config: Pick<AlertWebhookConfig, "retryBaseMs">, attempts: number): number {
  return Math.min(config.retryBaseMs * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/** The body and headers of one attempt; the signature is the hex HMAC-SHA256 of exactly the body sent. */
export function webhookRequest(config: Pick<AlertWebhookConfig, "secret">, deliveryId: string, alert: SystemAlert) {
  const body = JSON.stringify({
    id: alert.id,
    source: alert.source,
    severity: alert.severity.toUpperCase(), // as the API shows it
    message: alert.message,
    details: alert.details,
    userId: alert.userId,
    createdAt: alert.createdAt.toISOString(),
  });
  const signature = createHmac("sha256", config.secret).update(body).digest("hex");
  return {
    body,
    headers: { "content-type": "application/json", "x-parley-signature": `sha256=${signature}`, "x-parley-delivery": deliveryId },
  };
}

interface Claimed {
  id: string;
  alertId: string;
  attempts: number;
}

type Outcome = { delivered: true; statusCode: number } | { delivered: false; statusCode: number | null; error: string };

export class AlertWebhook {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private disposed = false;

  constructor(
    private readonly knex: Knex,
    private readonly config: AlertWebhookConfig,
    private readonly log: Logger,
  ) {}

  /** Runs a pass now, and then whenever one is due, until disposed. */
  start(): void {
    this.wake();
  }

  /** Something may be there to deliver (an alert was announced, the database is back): a pass now, or right after the running one. */
  wake(): void {
    if (this.disposed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async pass(): Promise<void> {
    let nextMs = POLL_MS;
    try {
      await this.enqueue();
      while (!this.disposed && (await this.deliverDue()) === BATCH);
      // By the database's clock, which set next_attempt_at; a raw result keeps the column names.
      const { rows } = await this.knex.raw(
        "select greatest(0, extract(epoch from min(next_attempt_at) - now()) * 1000)::float8 as wait_ms from alert_deliveries where status = 'pending'",
      );
      const waitMs = (rows as { wait_ms: number | null }[])[0]?.wait_ms;
      if (waitMs != null) nextMs = Math.min(nextMs, Math.ceil(waitMs) + 10);
    } catch (error) {
      this.log.warn({ err: error }, "alert webhook pass failed; retried on the next one");
    } finally {
      if (!this.disposed) {
        this.timer = setTimeout(() => this.wake(), nextMs);
        this.timer.unref();
      }
    }
  }

  /** Gives every alert raised since the webhook was turned on, and not yet in the outbox, its delivery row. */
  async enqueue(): Promise<number> {
    return this.knex.transaction(async (trx) => {
      await trx.raw("select pg_advisory_xact_lock(?::bigint)", [OUTBOX_LOCK]);
      await trx("system_configs")
        .insert({ key: WEBHOOK_SINCE_KEY, value: trx.raw("to_jsonb(now())"), description: "Alerts raised from then on are POSTed to ALERT_WEBHOOK_URL" })
        .onConflict("key")
        .ignore();
      const row = await trx("system_configs").where({ key: WEBHOOK_SINCE_KEY }).first("value");
      const since = new Date(row?.value as string);
      if (typeof row?.value !== "string" || Number.isNaN(since.getTime())) {
        this.log.error({ key: WEBHOOK_SINCE_KEY, value: row?.value }, "alert webhook: the system config is not a timestamp; no new alerts are put in the outbox");
        return 0;
      }
      // A statement after the lock: under READ COMMITTED it sees the rows of the pass that held the lock before.
      const { rowCount } = await trx.raw(
        `insert into alert_deliveries (alert_id)
         select a.id from system_alerts a
          where a.created_at >= greatest(?::timestamptz, now() - make_interval(days => ?))
            and not exists (select 1 from alert_deliveries d where d.alert_id = a.id)
          order by a.created_at`,
        [since, LOOKBACK_DAYS],
      );
      return (rowCount as number | undefined) ?? 0;
    });
  }

  /** Claims the due deliveries (at most BATCH), attempts them and records each outcome; returns how many it claimed. */
  async deliverDue(): Promise<number> {
    const due = this.knex("alert_deliveries")
      .select("id")
      .where("status", "pending")
      .where("nextAttemptAt", "<=", this.knex.fn.now())
      .orderBy("nextAttemptAt")
      .limit(BATCH)
      .forUpdate()
      .skipLocked();
    const leaseSeconds = (this.config.timeoutMs + LEASE_MARGIN_MS) / 1000;
    const claimed: Claimed[] = await this.knex("alert_deliveries")
      .whereIn("id", due)
      .where("status", "pending")
      .update({ attempts: this.knex.raw("attempts + 1"), nextAttemptAt: this.knex.raw("now() + make_interval(secs => ?)", [leaseSeconds]) })
      .returning(["id", "alertId", "attempts"]);
    if (claimed.length === 0) return 0;
    const alerts = new Map((await SystemAlert.query(this.knex).whereIn("id", claimed.map((each) => each.alertId))).map((alert) => [alert.id, alert]));
    await Promise.all(
      claimed.map(async (delivery) => {
        const alert = alerts.get(delivery.alertId);
        if (!alert) return; // deleted since (its delivery row went with it)
        await this.record(delivery, await this.attempt(delivery, alert));
      }),
    );
    return claimed.length;
  }

  private async attempt(delivery: Claimed, alert: SystemAlert): Promise<Outcome> {
    const { body, headers } = webhookRequest(this.config, delivery.id, alert);
    try {
      const response = await fetch(this.config.url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(this.config.timeoutMs) });
      await response.body?.cancel(); // the answer's body is not read; release the connection
      if (response.status >= 200 && response.status < 300) return { delivered: true, statusCode: response.status };
      return { delivered: false, statusCode: response.status, error: `HTTP ${response.status}` };
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const timedOut = (error as Error).name === "TimeoutError";
      const message = timedOut ? `No answer within ${this.config.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error as Error).message);
      return { delivered: false, statusCode: null, error: message };
    }
  }

  /** Writes the attempt's outcome, if the row is still ours (a server that lost its lease writes nothing). */
  private async record(delivery: Claimed, outcome: Outcome): Promise<void> {
    const log = this.log.child({ deliveryId: delivery.id, alertId: delivery.alertId, attempt: delivery.attempts });
    const giveUp = !outcome.delivered && delivery.attempts >= this.config.maxAttempts;
    const changes = outcome.delivered
      ? { status: "delivered", deliveredAt: this.knex.fn.now(), lastStatusCode: outcome.statusCode, lastError: null }
      : {
          status: giveUp ? "failed" : "pending",
          lastStatusCode: outcome.statusCode,
          lastError: outcome.error.slice(0, ERROR_MAX),
          ...(giveUp ? {} : { nextAttemptAt: this.knex.raw("now() + make_interval(secs => ?)", [backoffMs(this.config, delivery.attempts) / 1000]) }),
        };
    try {
      await this.knex("alert_deliveries").where({ id: delivery.id, attempts: delivery.attempts, status: "pending" }).update(changes);
    } catch (error) {
      // The lease runs out and another pass attempts it again: at least once, never lost.
      log.warn({ err: error }, "could not record an alert delivery's outcome; it is attempted again after its lease");
      return;
    }
    if (outcome.delivered) log.info("alert delivered to the webhook");
    else if (giveUp) log.error({ error: outcome.error }, `alert delivery failed ${delivery.attempts} times; given up`);
    else log.warn({ error: outcome.error }, "alert delivery attempt failed; retried with backoff");
  }

  /** Stops passing; waits for the running pass (its attempts end within the timeout). */
  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
