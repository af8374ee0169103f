/**
 * Request budgets per token and per client address, counted in PostgreSQL (the `rate_limits` table: key,
 * points used, expire in epoch ms) so that every API process behind a load balancer draws on the same budget.
 * One RateLimiter per server (app.ts); HTTP counts every GraphQL request, graphql-ws every operation.
 *
 * Counting is group-committed: every key consumed in one turn of the event loop (all the requests that
 * arrived together, each with its address and its token) is counted by ONE upsert statement, which returns
 * each key's total; the requests of a key are then numbered in arrival order and those past the budget are
 * refused. So the count stays exact and shared, while a request costs a fraction of a statement under load
 * instead of a write per key (measured in bench/results). When the database does not answer, this process
 * counts in memory rather than failing or letting everything through.
 */
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { Config } from "../config";
import type { Database } from "../db/database";
import { prepared } from "../db/prepared";
import type { Viewer } from "../modules/user/viewer";
import { RateLimitedError } from "../graphql/errors";

/** Made by the access-and-limits migration. */
const TABLE = "rate_limits";
/** How often rows whose window has ended are deleted. */
const SWEEP_MS = 5 * 60_000;

export interface RateLimiter {
  /**
   * Counts one request from a client address and one operation of the viewer's token (its API key, else its
   * user for JWTs; nothing for anonymous callers), in one statement; RATE_LIMITED when either budget is spent.
   */
  consume(ip: string | null, viewer: Viewer | null): Promise<void>;
  /** consume() for the viewer only (in-process transports, which have no address). */
  consumeViewer(viewer: Viewer | null): Promise<void>;
  /** Stops the sweep timer. */
  dispose(): void;
}

interface Demand {
  key: string;
  limit: number;
  settle: (error?: RateLimitedError) => void;
}

/** The rows after counting: key → points used in the window, and when the window ends (epoch ms). */
type Totals = Map<string, { points: number; expire: number }>;

/** `refused`: told of every request refused (metrics). */
export function createRateLimiter(config: Config, db: Database, log: Logger, refused?: () => void): RateLimiter {
  const limits = config.limits;
  // Disabled: nothing touches the table.
  if (!limits.rateLimitEnabled) {
    return { consume: async () => undefined, consumeViewer: async () => undefined, dispose: () => undefined };
  }
  const windowMs = limits.rateLimitWindowSeconds * 1000;
  const fallback: Totals = new Map(); // used only while the database fails
  let pending: Demand[] = [];

  async function countInDatabase(increments: Map<string, number>, now: number): Promise<Totals> {
    const keys = [...increments.keys()];
    const { rows } = (await prepared(db.knex.raw(
      `insert into rate_limits as r (key, points, expire)
         select key, points, ?::bigint from unnest(?::text[], ?::int[]) as t(key, points)
       on conflict (key) do update set
         points = case when r.expire is null or r.expire <= ? then excluded.points else r.points + excluded.points end,
         expire = case when r.expire is null or r.expire <= ? then excluded.expire else r.expire end
       returning key, points, expire`,
      [now + windowMs, keys, keys.map((key) => increments.get(key)!), now, now],
    ))) as { rows: { key: string; points: number; expire: string | number }[] };
    return new Map(rows.map((row) => [row.key, { points: Number(row.points), expire: Number(row.expire) }]));
  }

  function countInMemory(increments: Map<string, number>, now: number): Totals {
    for (const [key, points] of increments) {
      const row = fallback.get(key);
      if (!row || row.expire <= now) fallback.set(key, { points, expire: now + windowMs });
      else row.points += points;
    }
    return fallback;
  }

  /** Counts everything demanded in this turn with one statement and settles each demand. */
  async function flush(): Promise<void> {
    const batch = pending;
    pending = [];
    const increments = new Map<string, number>();
    for (const { key } of batch) increments.set(key, (increments.get(key) ?? 0) + 1);
    const now = Date.now();
    let totals: Totals;
    try {
      totals = await countInDatabase(increments, now);
    } catch (error) {
      log.warn({ err: error }, "rate limit query failed; counting in memory");
      totals = countInMemory(increments, now);
    }
    // The batch's requests of a key took the last `increments` points of its total, in arrival order.
    const seen = new Map<string, number>();
    for (const demand of batch) {
      const { points, expire } = totals.get(demand.key)!;
      const nth = (seen.get(demand.key) ?? 0) + 1;
      seen.set(demand.key, nth);
      const used = points - increments.get(demand.key)! + nth;
      if (used <= demand.limit) {
        demand.settle();
        continue;
      }
      refused?.();
      demand.settle(new RateLimitedError(Math.max(1, Math.ceil((expire - now) / 1000))));
    }
  }

  function demand(key: string, limit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (pending.length === 0) {
        setImmediate(() => {
          const batch = pending;
          flush().catch((error: unknown) => {
            // Not expected (flush handles database failures itself); never leave a request waiting.
            log.error({ err: error }, "rate limit counting failed");
            for (const { settle } of batch) settle();
          });
        });
      }
      pending.push({ key, limit, settle: (error) => (error ? reject(error) : resolve()) });
    });
  }

  const viewerDemand = (viewer: Viewer | null) =>
    viewer ? [demand(viewer.apiKeyId ? `key:${viewer.apiKeyId}` : `user:${viewer.id}`, limits.rateLimitPerRole[viewer.role])] : [];

  const sweep = setInterval(() => {
    db.knex(TABLE)
      .where("expire", "<", Date.now())
      .delete()
      .catch((error: unknown) => log.warn({ err: error }, "rate limit sweep failed"));
    for (const [key, row] of fallback) if (row.expire <= Date.now()) fallback.delete(key);
  }, SWEEP_MS);
  sweep.unref();

  return {
    async consume(ip, viewer) {
      // Both are counted even when one refuses, as separate requests would be; the first refusal is the answer.
      const results = await Promise.allSettled([...(ip ? [demand(`ip:${ip}`, limits.rateLimitPerIp)] : []), ...viewerDemand(viewer)]);
      const refused = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
      if (refused) throw refused.reason;
    },
    async consumeViewer(viewer) {
      await Promise.all(viewerDemand(viewer));
    },
    dispose() {
      clearInterval(sweep);
    },
  };
}
