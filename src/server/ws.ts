/**
 * graphql-ws on the /graphql path of the same http server. The token travels in the connection_init
 * payload ({ "authorization": "Bearer <token>" }); a connection without a valid one is closed (4403).
 * Every operation goes through the same limits as HTTP (rate limits, token/depth/complexity limits) plus a
 * cap on operations running at once per connection; a refused operation gets an error, the socket stays open.
 * The token is checked again for every operation, and a socket whose key is revoked or whose user is
 * deactivated or re-roled is closed (4403) as soon as the change commits, on whichever server it was made.
 */
import type http from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import type { Context as WsContext, SubscribePayload } from "graphql-ws";
import type { Extra } from "graphql-ws/use/ws";
import { createSourceEventStream, execute, getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from "graphql";
import type WebSocket from "ws";
import type { ContextDeps } from "../graphql/context";
import { ACCESS_CHANNEL, type NotificationListener } from "../db/notifications";
import { contextFor, resolveViewer } from "../graphql/context";
import type { Context } from "../graphql/context";
import { AppError, TooManySubscriptionsError, UnauthenticatedError, unavailableError } from "../graphql/errors";
import { finishResult } from "../modules/live/live-stream";
import { ConversationFeed } from "../modules/live/conversation-feed";
import { FanOut, type Sink } from "../modules/live/fan-out";
import type { Metrics } from "./metrics";
import type { Viewer } from "../modules/user/viewer";
import { prepareOperation, transportErrorFormatter } from "./operation";
import type { RateLimiter } from "./rate-limit";

type ConnectionState = Record<PropertyKey, unknown> & {
  viewer?: Viewer;
  /** The connection_init token, checked again for every operation and after missed notifications. */
  authorization?: string;
  /** Ids of the operations running on this connection, for MAX_SUBSCRIPTIONS_PER_CONNECTION. */
  operations?: Set<string>;
  /** The client's address (rate limits count per address). */
  ip?: string | null;
};
type Connection = WsContext<Record<string, unknown> | undefined, Extra & Partial<ConnectionState>>;

/** graphql-ws's own close code for a refused connection_init; used for lost access too. */
const FORBIDDEN = 4403;
/**
 * The WebSocket standard's "Try Again Later": the token could not be checked (the database away, or an error
 * that is not about the token). graphql-ws clients treat it as retryable (4500 is fatal to them, and 4403
 * says the token is refused).
 */
const TRY_AGAIN_LATER = 1013;

export interface WebSocketDeps extends ContextDeps {
  rateLimiter: RateLimiter;
  listener: NotificationListener;
  metrics?: Metrics;
}

export function attachWebSocketServer(httpServer: http.Server, schema: GraphQLSchema, deps: WebSocketDeps) {
  const { config, rateLimiter, listener } = deps;
  const maxOperations = config.limits.maxSubscriptionsPerConnection;
  const formatError = transportErrorFormatter(deps.log, "graphql-ws operation failed");
  const { metrics } = deps;
  const fanOut = new FanOut({ ...deps, schema, formatError, delivered: metrics && ((lag) => metrics.delivered(lag)) });
  /** Where each prepared subscription's events go (its socket and id), for the fan-out. */
  const sinks = new WeakMap<ExecutionArgs, Sink>();
  /** Acknowledged connections, for closing those an access change concerns. */
  const open = new Set<Connection>();

  const close = (ctx: Connection) => {
    open.delete(ctx);
    ctx.extra.socket.close(FORBIDDEN, "Forbidden");
  };
  /**
   * The connection's viewer as of now: null when its token no longer works. Other failures (the database
   * not answering) are thrown: they say nothing about the token, so they must not close the socket.
   */
  // Straight from the database, not the key cache: this is the check that catches what no notification announced.
  const currentViewer = (ctx: Connection): Promise<Viewer | null> =>
    resolveViewer({ ...deps, apiKeyCache: undefined }, ctx.extra.authorization).catch((error: unknown) => {
      if (error instanceof UnauthenticatedError) return null;
      throw error;
    });
  /** Same user, same role: anything else means the connection's operations would run with stale rights. */
  const unchanged = (before: Viewer | undefined, now: Viewer | null) => !!now && now.id === before?.id && now.role === before.role;

  const stopAccess = listener.on(ACCESS_CHANNEL, ({ apiKeyId, userId }) => {
    for (const ctx of open) {
      const viewer = ctx.extra.viewer;
      if ((apiKeyId && viewer?.apiKeyId === apiKeyId) || (userId && viewer?.id === userId)) close(ctx);
    }
  });
  // Changes made while the LISTEN connection was down were not heard: check every connection again.
  const stopRecheck = listener.onReconnect(() => {
    for (const ctx of open) {
      currentViewer(ctx).then(
        (now) => {
          if (!unchanged(ctx.extra.viewer, now)) close(ctx);
        },
        // Not known to be revoked: the next operation checks again.
        (error: unknown) => deps.log.warn({ err: error }, "could not re-check a websocket's token"),
      );
    }
  });

  /** What graphql-ws would do itself (parse, validate), plus the limits: the errors to answer, or what to run. */
  async function prepare(ctx: Connection, payload: SubscribePayload): Promise<ExecutionArgs | readonly GraphQLError[]> {
    // The token may have been revoked since the last operation (the notification may still be on its way).
    if (!unchanged(ctx.extra.viewer, await currentViewer(ctx))) {
      // Closed once graphql-ws has sent this operation its error, so the client learns why.
      setImmediate(() => close(ctx));
      return [new UnauthenticatedError("Invalid or revoked token")];
    }
    await rateLimiter.consume(ctx.extra.ip ?? null, ctx.extra.viewer ?? null);
    return prepareOperation(schema, config, payload);
  }

  const wsServer = new WebSocketServer({ server: httpServer, path: "/graphql", maxPayload: deps.config.maxBodyBytes });
  const cleanup = useServer<Record<string, unknown> | undefined, ConnectionState>(
    {
      schema,
      async onConnect(ctx) {
        // The upgrade request is needed for nothing else: not keeping it saves every idle connection its headers.
        ctx.extra.ip = ctx.extra.request.socket.remoteAddress ?? null;
        (ctx.extra as { request?: unknown }).request = undefined;
        const authorization = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        ctx.extra.authorization = typeof authorization === "string" ? authorization : undefined;
        const viewer = await currentViewer(ctx).catch((error: unknown) => {
          // The token was not judged, so the answer is not 4403: that tells clients their key is dead (the
          // console signs out on it) and graphql-ws would close with it had onConnect only returned false.
          // An error the database did not explain is a bug to log, but the client may still try again.
          if (!unavailableError(error)) deps.log.error({ err: error }, "graphql-ws connection could not be authenticated");
          ctx.extra.socket.close(TRY_AGAIN_LATER, "Service unavailable: try again");
          return null;
        });
        if (!viewer) return false;
        ctx.extra.viewer = viewer;
        open.add(ctx);
        return true;
      },
      onClose(ctx) {
        open.delete(ctx);
      },
      async onSubscribe(ctx, id, payload) {
        const operations = (ctx.extra.operations ??= new Set());
        if (operations.size >= maxOperations) return [new TooManySubscriptionsError(maxOperations)];
        // Checked and taken with no await in between, so operations arriving together cannot all slip under the cap;
        // given back in onComplete, or here when the operation is refused (graphql-ws then skips onComplete).
        operations.add(id);
        try {
          const prepared = await prepare(ctx, payload);
          if (!("document" in prepared)) operations.delete(id);
          else sinks.set(prepared, sinkFor(ctx.extra.socket, id));
          return prepared;
        } catch (error) {
          operations.delete(id);
          if (error instanceof AppError) return [error]; // rate or query limit
          const unavailable = unavailableError(error);
          if (unavailable) return [unavailable];
          // Anything else (a bug) is answered like HTTP does: hidden and logged.
          return [new GraphQLError("Internal server error", { originalError: error as Error })];
        }
      },
      async subscribe(args) {
        const source = await createSourceEventStream(args);
        if (!(Symbol.asyncIterator in source)) return source; // refused (NOT_FOUND, BAD_USER_INPUT, ...)
        const sink = sinks.get(args);
        if (!(source instanceof ConversationFeed) || !sink) return executeEach(source, args);
        try {
          const events = await fanOut.join(source, args, sink);
          // graphql-ws keeps these arguments until the subscription ends; its group has what it needs of the actor.
          args.contextValue = undefined;
          return events;
        } catch (error) {
          return { errors: [error instanceof GraphQLError ? error : new GraphQLError("Could not start the subscription", { originalError: error as Error })] };
        }
      },
      onComplete(ctx, id) {
        ctx.extra.operations?.delete(id);
      },
      // Every error goes through the formatter HTTP uses: known codes pass, database errors are mapped, and
      // anything else (a driver message with SQL in it, say) becomes INTERNAL_SERVER_ERROR, logged here.
      onError: (_ctx, _id, payload, errors) => {
        const formatted = errors.map(formatError);
        metrics?.operation("websocket", undefined, payload.operationName, formatted); // refused before it ran
        return formatted;
      },
      onOperation(_ctx, _id, payload, args, result) {
        if (!metrics) return;
        const errors = Symbol.asyncIterator in result ? undefined : (result as ExecutionResult).errors;
        const operation = getOperationAST(args.document, args.operationName);
        metrics.operation("websocket", operation?.operation, payload.operationName ?? operation?.name?.value, errors);
      },
      // An event that failed because the database was away is not sent with a hole in it: the subscription
      // ends with SERVICE_UNAVAILABLE and the seq it has delivered through (live-stream.ts). Every other result
      // confirms the stream's position.
      onNext: (_ctx, _id, _payload, args, result) => finishResult(args.contextValue as Context | undefined, result, formatError),
      // graphql-ws builds this once per subscription; event payloads are loaded with fresh loaders per event.
      context: (ctx) => contextFor(deps, ctx.extra.viewer ?? null),
    },
    wsServer,
  );
  // graphql-ws prints socket errors with console.error, past the logger and LOG_LEVEL, so any client could
  // flood stderr with stack traces (an oversized message is one). ws has already closed such a socket
  // (1009 for a message over maxPayload): log it as the client's doing. Registered after graphql-ws's own
  // connection handler, so its listener is there to be replaced.
  wsServer.on("connection", (socket) => {
    socket.removeAllListeners("error");
    socket.on("error", (error) => deps.log.warn({ err: error }, "websocket closed after a protocol error"));
  });
  return {
    wsServer,
    fanOut,
    async dispose() {
      stopAccess();
      stopRecheck();
      await cleanup.dispose();
    },
  };
}

/** The end of one subscription on a socket: graphql-ws's `next` message around a payload serialised once for many. */
function sinkFor(socket: WebSocket, id: string): Sink {
  const head = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
  return {
    send(payload) {
      if (socket.readyState === socket.OPEN) socket.send(Buffer.concat([head, payload, TAIL]), { binary: false });
    },
    buffered: () => socket.bufferedAmount,
  };
}
const TAIL = Buffer.from("}");

/**
 * A subscription that is not multiplexed (alerts, the inbox, or one run in-process): each event executed for its
 * one subscriber, as graphql's subscribe() does. return() goes straight to the source, which ends at once even
 * while it waits for an event (a generator would take it only at its next yield).
 */
function executeEach(source: AsyncIterable<unknown>, args: ExecutionArgs): AsyncIterableIterator<ExecutionResult> {
  const events = source[Symbol.asyncIterator]();
  const done = { done: true, value: undefined } as const;
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const event = await events.next();
      if (event.done) return done;
      return { done: false, value: await execute({ ...args, rootValue: event.value }) };
    },
    async return() {
      await events.return?.();
      return done;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
