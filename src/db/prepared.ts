/**
 * Prepared statements for the hot paths. PostgreSQL parses and plans every unnamed statement afresh; for the
 * history and inbox reads that planning cost about a third of their database time (bench/results). A
 * statement marked with `prepared()` runs as a named prepared statement instead: each pooled connection
 * parses it once, and PostgreSQL may then reuse its plan.
 *
 * The name is a hash of the final SQL text, computed by the driver client at execution time (so a builder
 * that is changed after being marked still gets the right name). Only statements with a bounded number of
 * distinct texts may be marked: every text stays prepared on every connection for the connection's life.
 * Marked statements list their columns instead of `*`: PostgreSQL refuses to run a prepared statement whose
 * result columns changed under it ("cached plan must not change result type"), which a `*` does when a
 * migration adds a column while the server runs.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
// knex's PostgreSQL client class; knex exposes no public type for it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const PostgresClient: new (config: Knex.Config) => { config: Knex.Config & { prepareStatements?: boolean }; _query(connection: unknown, obj: QueryObject): Promise<unknown> } =
  require("knex/lib/dialects/postgres");

interface QueryObject {
  sql: string;
  options?: Record<string, unknown>;
}

/** Marks a query to run as a named prepared statement (PostgreSQL server only; elsewhere a no-op). */
export function prepared<Q extends { options(options: Record<string, unknown>): Q }>(query: Q): Q {
  return query.options({ prepare: true });
}

/** Names by SQL text: the marked texts are few (see above), and hashing one on every execution is not free. */
const names = new Map<string, string>();

function statementName(sql: string): string {
  let name = names.get(sql);
  if (name === undefined) names.set(sql, (name = `parley_${createHash("sha1").update(sql).digest("base64url")}`));
  return name;
}

/**
 * knex's pg client, naming the statements that prepared() marked, unless its config says
 * `prepareStatements: false` (DATABASE_PREPARED_STATEMENTS).
 */
export class PreparingPostgresClient extends PostgresClient {
  override _query(connection: unknown, obj: QueryObject): Promise<unknown> {
    if (obj.options?.prepare) {
      const { prepare: _, ...options } = obj.options;
      obj.options = this.config.prepareStatements === false ? options : { ...options, name: statementName(obj.sql) };
    }
    return super._query(connection, obj);
  }
}
