/**
 * What a transport that runs operations itself (graphql-ws, the Discord adapter) does before running one, as
 * Apollo does over HTTP: parse (with the token limit), validate against the schema, pick the operation, coerce
 * its variables and check the query limits; and how it formats errors. Shared, so every transport answers the
 * same mistakes with the same codes and hides the same internals.
 */
import { GraphQLError, getOperationAST, getVariableValues, parse, validate, type DocumentNode, type ExecutionArgs, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { Config } from "../config";
import { ErrorCode, makeFormatError } from "../graphql/errors";
import { checkQueryLimits, queryParseOptions } from "./query-limits";
import { LruMap } from "../lru";

export interface OperationRequest {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** The error with an extensions.code, as Apollo gives the same error over HTTP. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, { source: error.source, positions: error.positions, extensions: { ...error.extensions, code } });
}

/**
 * The errors to answer, or what to execute (without a context: the transport adds its own). Over the query
 * limits it throws their AppError (QUERY_TOO_DEEP, QUERY_TOO_COMPLEX, TOO_MANY_MUTATIONS).
 */
export function prepareOperation(schema: GraphQLSchema, config: Config, request: OperationRequest): ExecutionArgs | readonly GraphQLError[] {
  const document = validDocument(schema, config, request.query);
  if (Array.isArray(document)) return document;
  const operation = getOperationAST(document, request.operationName);
  if (!operation) return [new GraphQLError("Could not determine which operation to run", { extensions: { code: "OPERATION_RESOLUTION_FAILURE" } })];
  // Checked here rather than left to execute(), which would report them without a code.
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], request.variables ?? {});
  if (coerced.errors) return coerced.errors.map((error) => withCode(error, ErrorCode.BAD_USER_INPUT));
  checkQueryLimits({ schema, document, operation, variables: request.variables }, config);
  return { schema, document, operationName: request.operationName, variableValues: request.variables };
}

/** Valid documents remembered per schema, the most recently used DOCUMENT_CACHE_SIZE. */
const documents = new WeakMap<GraphQLSchema, LruMap<string, DocumentNode>>();
const DOCUMENT_CACHE_SIZE = 1000;

/**
 * The query parsed and validated, or its errors. Valid documents are remembered by their text: a thousand
 * browser tabs sending the same subscription then hold one document between them, not a thousand, and are
 * not parsed and validated a thousand times.
 */
function validDocument(schema: GraphQLSchema, config: Config, query: string): DocumentNode | GraphQLError[] {
  let known = documents.get(schema);
  if (!known) documents.set(schema, (known = new LruMap(DOCUMENT_CACHE_SIZE)));
  const key = `${config.limits.maxQueryTokens}\n${query}`;
  const cached = known.get(key);
  if (cached) return cached;
  let document;
  try {
    document = parse(query, queryParseOptions(config));
  } catch (error) {
    if (error instanceof GraphQLError) return [withCode(error, "GRAPHQL_PARSE_FAILED")]; // syntax errors, too many tokens
    throw error;
  }
  const errors = validate(schema, document);
  if (errors.length) return errors.map((error) => withCode(error, "GRAPHQL_VALIDATION_FAILED"));
  known.set(key, document);
  return document;
}

/**
 * The formatter HTTP uses, for errors a transport meets itself: known codes pass, database errors are mapped,
 * anything else becomes INTERNAL_SERVER_ERROR and is logged here with `what`.
 */
export function transportErrorFormatter(log: Logger, what: string): (error: GraphQLError) => GraphQLFormattedError {
  const format = makeFormatError({ exposeDetails: false, onInternalError: (error) => log.error({ err: error }, what) });
  return (error) => format(error.toJSON(), error);
}
