/**
 * graphql-ws on the /graphql path of the same http server. The token travels in the connection_init
 * payload ({ "authorization": "Bearer <token>" }); a connection without a valid one is closed (4403).
 */
import type http from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import type { GraphQLSchema } from "graphql";
import type { ContextDeps } from "../graphql/context";
import { contextFor, resolveViewer } from "../graphql/context";
import type { Viewer } from "../modules/user/viewer";

type ConnectionState = Record<PropertyKey, unknown> & { viewer?: Viewer };

export function attachWebSocketServer(httpServer: http.Server, schema: GraphQLSchema, deps: ContextDeps) {
  const wsServer = new WebSocketServer({ server: httpServer, path: "/graphql", maxPayload: deps.config.maxBodyBytes });
  const cleanup = useServer<Record<string, unknown> | undefined, ConnectionState>(
    {
      schema,
      async onConnect(ctx) {
        const authorization = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        try {
          const viewer = await resolveViewer(deps, typeof authorization === "string" ? authorization : undefined);
          if (!viewer) return false;
          ctx.extra.viewer = viewer;
          return true;
        } catch {
          return false;
        }
      },
      // graphql-ws builds this once per subscription; event payloads are loaded with fresh loaders per event.
      context: (ctx) => contextFor(deps, ctx.extra.viewer ?? null),
    },
    wsServer,
  );
  return {
    wsServer,
    async dispose() {
      await cleanup.dispose();
    },
  };
}
