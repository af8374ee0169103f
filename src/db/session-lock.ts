/**
 * One process at a time for a long background pass (retention, scheduled backups) across servers: a PostgreSQL
 * session advisory lock, taken with pg_try_advisory_lock on one connection of the pool and held while `work` runs.
 * A session lock rather than a transaction's, because the pass is many short transactions; the connection stays
 * out of the pool meanwhile, and `work` may run its statements on it.
 */
import type { Knex } from "knex";

/** `work`'s result, or undefined without running it when another session holds the lock `key`. */
export async function withSessionLock<T>(knex: Knex, key: number, work: (connection: unknown) => Promise<T>): Promise<T | undefined> {
  const connection = await knex.client.acquireConnection();
  try {
    const result = await knex.raw("select pg_try_advisory_lock(?::bigint) as locked", [key]).connection(connection);
    if (!result.rows[0].locked) return undefined;
    const unlock = () => knex.raw("select pg_advisory_unlock(?::bigint)", [key]).connection(connection);
    let outcome: T;
    try {
      outcome = await work(connection);
    } catch (error) {
      // The connection may be what failed (its session gone, and the lock with it): the unlock must not hide why.
      await unlock().catch(() => undefined);
      throw error;
    }
    await unlock();
    return outcome;
  } finally {
    await knex.client.releaseConnection(connection);
  }
}
