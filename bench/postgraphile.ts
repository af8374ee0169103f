/**
 * PostGraphile 5 (amber preset) over the same tables, as its documentation runs it in library mode: grafserv
 * on a node http server. W is a plpgsql function (`bench_add_message`, created by bench/run.ts), which
 * PostGraphile exposes as the mutation `benchAddMessage`.
 *
 * PostGraphile 5 requires Node 22 for Promise.withResolvers; on Node 20 every request silently fails
 * without it (see STACK.md), so a spec-conforming polyfill is loaded first. Its answers are compared with
 * the floor's before anything is timed.
 *
 * Started by bench/run.ts: DATABASE_URL, PORT, POOL_MAX; prints `listening <port>`.
 */
if (typeof (Promise as any).withResolvers !== "function") {
  (Promise as any).withResolvers = function withResolvers<T>(this: PromiseConstructor) {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new this<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

import http from "node:http";
import pg from "pg";
import { postgraphile } from "postgraphile";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";

async function main(): Promise<void> {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_MAX ?? 10) });
  const pgl = postgraphile({
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({ pool, schemas: ["public"] })],
    grafserv: { graphqlPath: "/graphql", graphiql: false },
    grafast: { explain: false },
  });
  const serv = pgl.createServ(grafserv);
  const server = http.createServer();
  serv.addTo(server);
  await pgl.getSchema(); // build the schema before the first request
  server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
    console.log(`listening ${(server.address() as { port: number }).port}`);
  });
  process.on("SIGTERM", () => {
    server.close();
    void Promise.resolve(pgl.release()).then(() => process.exit(0));
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
