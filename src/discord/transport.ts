/**
 * How the Discord adapter talks to Parley: like graphql-ws's use/ws.ts, a transport. It runs GraphQL documents
 * in-process against the server's own schema, with a context made by the factory HTTP uses (the adapter's API
 * key as the bearer token), the same rate limit and query limits, and errors formatted by HTTP's formatter.
 * Files it fetches over HTTP from the download route, as any client does. It never calls a model or a service,
 * so auth, validation, idempotency and live events are the API's own.
 */
import { GraphQLError, execute, subscribe, type ExecutionArgs, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import { createContext, type Context, type ContextDeps } from "../graphql/context";
import { ErrorCode, ServiceUnavailableError, UnauthenticatedError } from "../graphql/errors";
import { prepareOperation, transportErrorFormatter } from "../server/operation";
import type { RateLimiter } from "../server/rate-limit";

export interface TransportDeps extends ContextDeps {
  /** The schema the server runs (one per process). */
  schema: GraphQLSchema;
  /** The server's rate limiter: the adapter's operations count against its key like any client's. */
  rateLimiter: RateLimiter;
  /**
   * Where the file routes answer (GET /transcripts/:id/download): the API server's own address, or, in the
   * standalone Discord process, the loopback listener it serves them on (discord/main.ts).
   */
  apiUrl: string;
}

/** Codes worth trying again with the same input (same requestId): the failure was not the input's. */
const TRANSIENT = new Set<string>([ErrorCode.INTERNAL_SERVER_ERROR, ErrorCode.RATE_LIMITED, ErrorCode.UNAUTHENTICATED]);

/** An operation answered with errors; carries them formatted, exactly as a client over HTTP would get them. */
export class OperationError extends Error {
  override name = "OperationError";

  constructor(
    readonly errors: readonly GraphQLFormattedError[],
    /** The request id of the operation's context: the logs of the failure carry it. */
    readonly requestId: string | undefined,
  ) {
    super(errors[0]?.message ?? "GraphQL error");
  }

  get code(): string {
    const code = this.errors[0]?.extensions?.code;
    return typeof code === "string" ? code : ErrorCode.INTERNAL_SERVER_ERROR;
  }

  get reason(): string | undefined {
    const reason = this.errors[0]?.extensions?.reason;
    return typeof reason === "string" ? reason : undefined;
  }

  get retryAfterSeconds(): number | undefined {
    const seconds = this.errors[0]?.extensions?.retryAfterSeconds;
    return typeof seconds === "number" ? seconds : undefined;
  }

  /**
   * The server or the database failed, a rate limit was hit, or the key did not work (an operator can fix
   * that without anything being lost): the same operation may succeed later.
   */
  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }
}

export interface Transport {
  /** Runs a query or mutation: its data, or an OperationError. */
  run<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /**
   * Starts a subscription: an OperationError when it is refused, else its events' data; a stream that ends
   * with an error (the conversation deleted, access lost) throws it as an OperationError from next().
   */
  subscribe<T>(query: string, variables?: Record<string, unknown>): Promise<AsyncIterableIterator<T>>;
  /**
   * A READY transcript's file, read whole from GET /transcripts/:id/download with the adapter's token; undefined
   * when it is larger than `maxBytes`. The route's errors come as an OperationError, as GraphQL's do.
   */
  transcriptFile(id: string, maxBytes: number): Promise<{ name: string; data: Buffer } | undefined>;
}

/** The errors of a file route's answer (download.ts sends them as GraphQL's, with a code). */
async function routeErrors(response: Response): Promise<GraphQLFormattedError[]> {
  const fallback = [{ message: `The download answered ${response.status}`, extensions: { code: response.status >= 500 ? ErrorCode.SERVICE_UNAVAILABLE : ErrorCode.NOT_FOUND } }];
  try {
    const body = (await response.json()) as { errors?: GraphQLFormattedError[] };
    return body.errors?.length ? body.errors : fallback;
  } catch {
    return fallback;
  }
}

export function createTransport(deps: TransportDeps, authorization: string): Transport {
  const formatError = transportErrorFormatter(deps.log, "Discord adapter operation failed");

  /** A context for one operation, with the rules Apollo's plugins apply over HTTP: a viewer is required, and counted. */
  async function authenticatedContext(): Promise<Context> {
    const context = await createContext(deps, { authorization });
    if (!context.viewer) throw new UnauthenticatedError();
    await deps.rateLimiter.consumeViewer(context.viewer);
    return context;
  }

  /** A context for one operation, and the operation parsed, validated and checked against the limits. */
  async function prepare(query: string, variables: Record<string, unknown> | undefined): Promise<ExecutionArgs> {
    let requestId: string | undefined;
    try {
      const context = await authenticatedContext();
      requestId = context.requestId;
      const prepared = prepareOperation(deps.schema, deps.config, { query, variables });
      if (!("document" in prepared)) throw new OperationError(prepared.map(formatError), requestId);
      return { ...prepared, contextValue: context };
    } catch (error) {
      throw toOperationError(error, requestId);
    }
  }

  function toOperationError(error: unknown, requestId: string | undefined): OperationError {
    if (error instanceof OperationError) return error;
    // A GraphQLError keeps its code; anything else (the database unreachable, a bug) is hidden and logged.
    const graphQLError = error instanceof GraphQLError ? error : new GraphQLError("Internal server error", { originalError: error as Error });
    return new OperationError([formatError(graphQLError)], requestId);
  }

  const requestIdOf = (args: ExecutionArgs) => (args.contextValue as { requestId?: string }).requestId;

  /** The data of a result, or its errors as an OperationError. */
  function dataOf<T>(result: ExecutionResult, args: ExecutionArgs): T {
    if (result.errors?.length) throw new OperationError(result.errors.map(formatError), requestIdOf(args));
    return result.data as T;
  }

  return {
    async transcriptFile(id: string, maxBytes: number) {
      let response: Response;
      try {
        response = await fetch(new URL(`/transcripts/${encodeURIComponent(id)}/download`, deps.apiUrl), { headers: { authorization } });
      } catch (error) {
        deps.log.warn({ err: error, transcriptId: id }, "the download route could not be reached");
        throw toOperationError(new ServiceUnavailableError("Transcript downloads are unavailable; try again shortly", "DOWNLOAD_UNREACHABLE"), undefined);
      }
      const requestId = response.headers.get("x-request-id") ?? undefined;
      if (!response.ok) throw new OperationError(await routeErrors(response), requestId);
      if (Number(response.headers.get("content-length")) > maxBytes) {
        await response.body?.cancel();
        return undefined;
      }
      const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") ?? "")?.[1] ?? `transcript-${id}`;
      const data = Buffer.from(await response.arrayBuffer());
      return data.length > maxBytes ? undefined : { name, data };
    },

    async run<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const args = await prepare(query, variables);
      let result: ExecutionResult;
      try {
        result = await execute(args);
      } catch (error) {
        throw toOperationError(error, requestIdOf(args));
      }
      return dataOf<T>(result, args);
    },

    async subscribe<T>(query: string, variables?: Record<string, unknown>): Promise<AsyncIterableIterator<T>> {
      const args = await prepare(query, variables);
      let source: Awaited<ReturnType<typeof subscribe>>;
      try {
        source = await subscribe(args);
      } catch (error) {
        throw toOperationError(error, requestIdOf(args));
      }
      if (!(Symbol.asyncIterator in source)) return dataOf<never>(source, args); // refused: throws its errors
      const events = source;
      const iterator: AsyncIterableIterator<T> = {
        async next() {
          const step = await events.next();
          if (step.done) return { done: true, value: undefined };
          try {
            return { done: false, value: dataOf<T>(step.value, args) };
          } catch (error) {
            await events.return?.();
            throw error;
          }
        },
        async return() {
          await events.return?.();
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
  };
}
