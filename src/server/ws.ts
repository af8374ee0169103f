/**
 * graphql-ws on the /graphql path of the same http server. The token travels in the connection_init
 * payload ({ "authorization": "Bearer <token>" }); a connection without a valid one is closed (4403).
 * Every operation goes through the same limits as HTTP (rate limits, token/depth/complexity limits) plus a
 * cap on operations running at once per connection; a refused operation gets an error, the socket stays open.
 */
import type http from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import type { Context as WsContext, SubscribePayload } from "graphql-ws";
import type { Extra } from "graphql-ws/use/ws";
import { GraphQLError, getOperationAST, parse, validate, type ExecutionArgs, type GraphQLSchema } from "graphql";
import type { ContextDeps } from "../graphql/context";
import { contextFor, resolveViewer } from "../graphql/context";
import { AppError, TooManySubscriptionsError, withoutHttp } from "../graphql/errors";
import type { Viewer } from "../modules/user/viewer";
import { checkQueryLimits, queryParseOptions } from "./query-limits";
import type { RateLimiter } from "./rate-limit";

type ConnectionState = Record<PropertyKey, unknown> & {
  viewer?: Viewer;
  /** Ids of the operations running on this connection, for MAX_SUBSCRIPTIONS_PER_CONNECTION. */
  operations?: Set<string>;
};
type Connection = WsContext<Record<string, unknown> | undefined, Extra & Partial<ConnectionState>>;


export function attachWebSocketServer(httpServer: http.Server, schema: GraphQLSchema, deps: ContextDeps & { rateLimiter: RateLimiter }) {
  const { config, rateLimiter } = deps;
  const maxOperations = config.limits.maxSubscriptionsPerConnection;

  /** What graphql-ws would do itself (parse, validate), plus the limits: the errors to answer, or what to run. */
  async function prepare(ctx: Connection, payload: SubscribePayload): Promise<ExecutionArgs | readonly GraphQLError[]> {
    await rateLimiter.consumeIp(ctx.extra.request.socket.remoteAddress ?? null);
    await rateLimiter.consumeViewer(ctx.extra.viewer ?? null);
    let document;
    try {
      document = parse(payload.query, queryParseOptions(config));
    } catch (error) {
      if (error instanceof GraphQLError) return [error]; // syntax errors, too many tokens
      throw error;
    }
    const errors = validate(schema, document);
    if (errors.length) return errors;
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return [new GraphQLError("Unable to identify operation")];
    checkQueryLimits({ schema, document, operation, variables: payload.variables }, config);
    return { schema, document, operationName: payload.operationName, variableValues: payload.variables };
  }

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
      async onSubscribe(ctx, id, payload) {
        const operations = (ctx.extra.operations ??= new Set());
        if (operations.size >= maxOperations) return [new TooManySubscriptionsError(maxOperations)];
        // Taken before the first await, so operations arriving together cannot all slip under the cap;
        // given back in onComplete, or here when the operation is refused (graphql-ws then skips onComplete).
        operations.add(id);
        try {
          const prepared = await prepare(ctx, payload);
          if (!("document" in prepared)) operations.delete(id);
          return prepared;
        } catch (error) {
          operations.delete(id);
          if (error instanceof AppError) return [error]; // rate or query limit
          throw error;
        }
      },
      onComplete(ctx, id) {
        ctx.extra.operations?.delete(id);
      },
      // Apollo drops extensions.http (status, Retry-After) from its answers; graphql-ws would send it as it is.
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => ({ ...error.toJSON(), extensions: withoutHttp(error.extensions) })),
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
