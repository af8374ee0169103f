/**
 * Apollo Server 5 over the shared schema: landing page, introspection policy, error formatting, the
 * "every operation needs a token" rule, and per-request logging of hidden errors.
 */
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import type { GraphQLSchema, OperationDefinitionNode } from "graphql";
import type { Config } from "../config";
import type { Context } from "../graphql/context";
import { AppError, UnauthenticatedError, makeFormatError, mapDatabaseError } from "../graphql/errors";
import { queryLimitsPlugin, queryParseOptions } from "./query-limits";

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

export function createApollo(schema: GraphQLSchema, config: Config, plugins: ApolloServerPlugin<Context>[] = []): ApolloServer<Context> {
  const production = config.nodeEnv === "production";
  return new ApolloServer<Context>({
    schema,
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
      ...plugins,
    ],
  });
}
