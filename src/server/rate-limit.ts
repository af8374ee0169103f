/**
 * Request budgets per token and per client address, counted in PostgreSQL (the `rate_limits` table, in
 * rate-limiter-flexible's schema) so that every API process behind a load balancer draws on the same budget.
 * One RateLimiter per server (app.ts); HTTP counts every GraphQL request, graphql-ws every operation.
 */
import type { Knex } from "knex";
import type { Logger } from "pino";
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { Config } from "../config";
import type { Database } from "../db/database";
import type { Viewer } from "../modules/user/viewer";
import { RateLimitedError } from "../graphql/errors";

/** Made by the access-and-limits migration, so the limiter never creates it. */
const TABLE = "rate_limits";
/** How often rows whose window has ended are deleted. */
const SWEEP_MS = 5 * 60_000;

export interface RateLimiter {
  /** Counts one request from a client address. Called before authentication, so guessing tokens costs budget too. */
  consumeIp(ip: string | null): Promise<void>;
  /** Counts one operation of the viewer's token: its API key, else its user (JWTs); nothing for anonymous callers. */
  consumeViewer(viewer: Viewer | null): Promise<void>;
  /** Stops the sweep timer. */
  dispose(): void;
}

/**
 * rate-limiter-flexible's "pool" client, routed through knex instead of a pg pool of its own: on PGlite knex
 * holds the only connection (and a transaction may be open on it), so a second client would deadlock or
 * corrupt it. The library writes `$1..$n` placeholders, which may repeat; knex binds `?` in order.
 */
export function knexStoreClient(knex: Knex, log: Logger) {
  return {
    async query({ text, values = [] }: { text: string; values?: unknown[] }) {
      const bindings: unknown[] = [];
      const sql = text
        .replace(/\?/g, "\\?") // a literal "?" must not become a knex binding
        .replace(/\$(\d+)/g, (_match, n: string) => {
          bindings.push(values[Number(n) - 1]);
          return "?";
        });
      try {
        const result = (await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: unknown[]; rowCount: number | null };
        return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
      } catch (error) {
        log.warn({ err: error }, "rate limit query failed; counting in memory");
        throw error;
      }
    },
  };
}

export function createRateLimiter(config: Config, db: Database, log: Logger): RateLimiter {
  const limits = config.limits;
  // Disabled: nothing touches the table.
  if (!limits.rateLimitEnabled) return { consumeIp: async () => undefined, consumeViewer: async () => undefined, dispose: () => undefined };

  const storeClient = knexStoreClient(db.knex, log);
  const limiter = (points: number) =>
    new RateLimiterPostgres({
      storeClient,
      storeType: "pool",
      tableName: TABLE,
      tableCreated: true,
      // The library's own sweeper runs per limiter and cannot be stopped; one timer below, cleared by dispose().
      clearExpiredByTimeout: false,
      keyPrefix: "", // keys are namespaced already (key:, user:, ip:)
      points,
      duration: limits.rateLimitWindowSeconds,
      // When the database does not answer, count in this process's memory rather than fail or let everything through.
      insuranceLimiter: new RateLimiterMemory({ points, duration: limits.rateLimitWindowSeconds, keyPrefix: "" }),
    });
  // One limiter per role (a limiter has one budget); they share keys, so a role change keeps the count.
  const perRole = {
    admin: limiter(limits.rateLimitPerRole.admin),
    service: limiter(limits.rateLimitPerRole.service),
    member: limiter(limits.rateLimitPerRole.member),
  };
  const perIp = limiter(limits.rateLimitPerIp);

  const sweep = setInterval(() => {
    db.knex(TABLE)
      .where("expire", "<", Date.now())
      .delete()
      .catch((error: unknown) => log.warn({ err: error }, "rate limit sweep failed"));
  }, SWEEP_MS);
  sweep.unref();

  async function consume(limiter: RateLimiterPostgres, key: string): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (rejection) {
      // The library rejects with a RateLimiterRes when the budget is spent, with an Error when it failed.
      if (rejection instanceof RateLimiterRes) throw new RateLimitedError(Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)));
      throw rejection;
    }
  }

  return {
    async consumeIp(ip) {
      if (ip) await consume(perIp, `ip:${ip}`);
    },
    async consumeViewer(viewer) {
      if (viewer) await consume(perRole[viewer.role], viewer.apiKeyId ? `key:${viewer.apiKeyId}` : `user:${viewer.id}`);
    },
    dispose() {
      clearInterval(sweep);
    },
  };
}
