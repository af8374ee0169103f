/**
 * Counts the SQL statements one operation issues, for N+1 guards. A statement belongs to the operation whose
 * async context issued it (AsyncLocalStorage): every HTTP request the test server handles runs in a context of
 * its own, and `during` runs in-process work (a subscription) in one. So the background work of the server
 * (the stale-stream sweep) and other requests never count, however the timing falls.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { TestApp } from "./server";

export interface StatementCounter {
  /** POSTs an operation to /graphql; returns its data (failing on errors) and the statements it issued. */
  run<T = Record<string, any>>(query: string, variables: Record<string, unknown>, token: string): Promise<{ data: T; statements: string[] }>;
  /** Runs `work` in-process and returns the statements it issued (requests it sends count for themselves). */
  during(work: () => Promise<void>): Promise<string[]>;
  /**
   * Runs `work` and returns the statements the server issued meanwhile outside any request or `during` (what
   * notifications set off: live delivery; also the background sweeps, which a caller filters out by their text).
   */
  background(work: () => Promise<void>): Promise<string[]>;
}

export function countStatements(app: TestApp): StatementCounter {
  const current = new AsyncLocalStorage<string[]>();
  let outside: string[] | undefined;
  app.database.db.knex.on("query", (query: { sql: string }) => (current.getStore() ?? outside)?.push(query.sql));

  const byRequest = new Map<string, string[]>();
  const server = app.server.httpServer;
  const handlers = server.listeners("request") as http.RequestListener[];
  server.removeAllListeners("request");
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const statements: string[] = [];
    byRequest.set(String(req.headers["x-request-id"]), statements);
    current.run(statements, () => handlers.forEach((handler) => handler.call(server, req, res)));
  });

  return {
    async run<T>(query: string, variables: Record<string, unknown>, token: string) {
      const requestId = randomUUID();
      const response = await fetch(`${app.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "x-request-id": requestId },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: T; errors?: unknown[] };
      if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      const statements = byRequest.get(requestId);
      if (!statements) throw new Error("the request was not seen by the counting handler");
      byRequest.delete(requestId);
      return { data: body.data as T, statements: [...statements] };
    },
    async during(work) {
      const statements: string[] = [];
      await current.run(statements, work);
      return [...statements];
    },
    async background(work) {
      const statements: string[] = (outside = []);
      try {
        // The work's own statements (in this test process) are its, not the server's background.
        await current.run([], work);
      } finally {
        outside = undefined;
      }
      return statements;
    },
  };
}
