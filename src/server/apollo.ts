/**
 * Apollo Server 5 over the shared schema: landing page, introspection policy, error formatting, the
 * "every operation needs a token" rule, and per-request logging of hidden errors.
 */
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import { BREAK, GraphQLError, execute, getVariableValues, printSchema, visit, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema, type OperationDefinitionNode } from "graphql";
import type { GatewayExecutor, GatewayInterface } from "@apollo/server-gateway-interface";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";
import type { Config } from "../config";
import type { Context } from "../graphql/context";
import { AppError, RETRY_AFTER_SECONDS, UnauthenticatedError, makeFormatError, mapDatabaseError, unavailableError } from "../graphql/errors";
import { queryLimitsPlugin, queryParseOptions } from "./query-limits";
import { LruMap } from "../lru";

/** True when the operation asks only for __schema/__type/__typename (Sandbox's schema fetch). */
export function isIntrospectionOnly(operation: OperationDefinitionNode): boolean {
  return operation.selectionSet.selections.every((selection) => selection.kind === "Field" && selection.name.value.startsWith("__"));
}

/** Refuses every operation without a viewer, except schema introspection (when introspection is enabled). */
const requireViewer: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ contextValue, operation }) {
        if (!contextValue.viewer && !(operation && isIntrospectionOnly(operation))) throw new UnauthenticatedError();
      },
    };
  },
};

/** Logs, with the request id, every error that formatError will hide from the client. */
const logHiddenErrors: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async didEncounterErrors({ contextValue, errors }) {
        for (const error of errors) {
          const original = error.originalError;
          if (!original || original instanceof AppError || mapDatabaseError(original)) continue;
          if (original.name === "ArgumentValidationError") continue;
          contextValue.log.error({ err: original, path: error.path }, "unexpected error");
        }
      },
    };
  },
};

/** Where an error was raised, as a sort key: its place in the document, then its path (list indexes as numbers). */
function errorOrder(a: GraphQLFormattedError, b: GraphQLFormattedError): number {
  const [la, lb] = [a.locations?.[0], b.locations?.[0]];
  const byPlace = (la?.line ?? 0) - (lb?.line ?? 0) || (la?.column ?? 0) - (lb?.column ?? 0);
  if (byPlace) return byPlace;
  const [pa, pb] = [a.path ?? [], b.path ?? []];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    return typeof pa[i] === "number" && typeof pb[i] === "number" ? (pa[i] as number) - (pb[i] as number) : String(pa[i]) < String(pb[i]) ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Field errors in document order (then by path), not in the order they happened: that order depends on which
 * reads were batched or planned (READ_PLANNER) and on timing, and the same request should get the same answer.
 */
const orderedErrors: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async willSendResponse({ response }) {
        if (response.body.kind === "single" && (response.body.singleResult.errors?.length ?? 0) > 1) {
          response.body.singleResult.errors = [...response.body.singleResult.errors!].sort(errorOrder);
        }
      },
    };
  },
};

/**
 * HTTP 503 with Retry-After when an operation failed because the database was away or too slow: its errors
 * arrive here as the driver's, which Apollo would answer 200 (formatError gives them their code, not a status).
 */
const serviceUnavailableStatus: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    let unavailable = false;
    return {
      async didEncounterErrors({ errors }) {
        unavailable ||= errors.some((error) => unavailableError(error.originalError ?? error));
      },
      async willSendResponse({ response }) {
        if (!unavailable) return;
        response.http.status = 503;
        response.http.headers.set("retry-after", String(RETRY_AFTER_SECONDS));
      },
    };
  },
};

/** Compiled documents kept (least recently used dropped first); a chat frontend sends a few dozen. */
const JIT_CACHE_SIZE = 1000;

/**
 * graphql-jit's errors are its own subclass of GraphQLError, without an `extensions` object when the resolver's
 * error had none (a driver error): Apollo reads `extensions.code` before formatError and fails on it, answering
 * a bare "Internal server error" where errors.ts would have mapped the SQLSTATE. Rebuilt as graphql-js errors
 * around the resolver's own error, keeping jit's locations and path.
 */
function asGraphQLError(error: GraphQLError): GraphQLError {
  if (error.constructor === GraphQLError) return error;
  const rebuilt = new GraphQLError(error.message, { path: error.path, originalError: error.originalError ?? undefined, extensions: error.extensions ?? {} });
  Object.assign(rebuilt, { locations: error.locations });
  return rebuilt;
}

const conditional = new WeakMap<DocumentNode, boolean>();

/**
 * Whether a document uses @skip or @include. graphql-jit 0.8.9 gets those wrong when the same response key is
 * also asked without them (it still runs the fragments inside the skipped copy, and answers their fields), so
 * such documents run on graphql-js (test/api/read-planner.test.ts pins the answer).
 */
function hasConditions(document: DocumentNode): boolean {
  let found = conditional.get(document);
  if (found === undefined) {
    found = false;
    visit(document, {
      Directive(node) {
        if (node.name.value === "skip" || node.name.value === "include") {
          found = true;
          return BREAK;
        }
        return undefined;
      },
    });
    conditional.set(document, found);
  }
  return found;
}

/**
 * Execution by graphql-jit instead of graphql-js: each distinct document is compiled once into plain
 * JavaScript, which runs Parley's resolvers several times faster than graphql-js's generic walk (measured
 * in bench/results). Apollo takes a custom executor only through its gateway option; parsing, validation,
 * the plugins and error formatting stay Apollo's. Subscriptions (graphql-ws) keep graphql-js.
 */
export function jitGateway(schema: GraphQLSchema): GatewayInterface {
  const compiled = new LruMap<string, CompiledQuery>(JIT_CACHE_SIZE);
  const executor: GatewayExecutor = async ({ document, operation, operationName, queryHash, request, context }) => {
    // Apollo calls the executor even when no operation matches, and turns the error returned into its 400
    // OPERATION_RESOLUTION_FAILURE; graphql-js's message.
    if (!operation) {
      const message = operationName ? `Unknown operation named "${operationName}".` : "Must provide operation name if query contains multiple operations.";
      return { errors: [new GraphQLError(message)] };
    }
    if (hasConditions(document)) {
      return execute({ schema, document, operationName, variableValues: request.variables ?? {}, contextValue: context });
    }
    const key = `${queryHash}:${operationName ?? ""}`;
    let query = compiled.get(key);
    if (!query) {
      const result = compileQuery(schema, document, operationName ?? undefined);
      if (!isCompiledQuery(result)) return result;
      compiled.set(key, (query = result));
    }
    const variables = request.variables ?? {};
    const result = await query.query(undefined, context, variables);
    if (result.errors?.length && result.data === undefined && operation.variableDefinitions?.length) {
      // graphql-jit's variable errors carry no AST nodes, which Apollo needs to answer 400 BAD_USER_INPUT;
      // graphql-js's coercion gives the same errors with them (only on this failure path).
      const { errors } = getVariableValues(schema, operation.variableDefinitions, variables);
      if (errors) return { errors };
    }
    return result.errors ? { ...result, errors: result.errors.map(asGraphQLError) } : result;
  };
  return {
    load: async () => ({ executor }),
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => undefined;
    },
    stop: async () => undefined,
  };
}

export function createApollo(schema: GraphQLSchema, config: Config, plugins: ApolloServerPlugin<Context>[] = []): ApolloServer<Context> {
  const production = config.nodeEnv === "production";
  return new ApolloServer<Context>({
    ...(config.graphqlJit ? { gateway: jitGateway(schema) } : { schema }),
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: makeFormatError({ exposeDetails: false }),
    csrfPrevention: true,
    parseOptions: queryParseOptions(config),
    plugins: [
      production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
      // The cache-control plugin inspects every field of every response; Parley sets no cache hints.
      ApolloServerPluginCacheControlDisabled(),
      requireViewer, // before the query limits, so a caller without a token learns only that (401)
      queryLimitsPlugin(config),
      logHiddenErrors,
      serviceUnavailableStatus,
      orderedErrors,
      ...plugins,
    ],
  });
}
