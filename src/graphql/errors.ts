/**
 * The one error vocabulary of the API. Every failure reaches clients as a GraphQLError whose
 * extensions.code is one of ErrorCode; database and unexpected errors are mapped here and nowhere else.
 */
import { GraphQLError, type GraphQLErrorOptions, type GraphQLFormattedError } from "graphql";
import { HeaderMap } from "@apollo/server";
import { unwrapResolverError } from "@apollo/server/errors";
import {
  CheckViolationError,
  DataError,
  ForeignKeyViolationError,
  NotNullViolationError,
  UniqueViolationError,
  NotFoundError as ObjectionNotFoundError,
  ValidationError as ObjectionValidationError,
} from "objection";

export enum ErrorCode {
  BAD_USER_INPUT = "BAD_USER_INPUT",
  UNAUTHENTICATED = "UNAUTHENTICATED",
  FORBIDDEN = "FORBIDDEN",
  NOT_FOUND = "NOT_FOUND",
  CONFLICT = "CONFLICT",
  RATE_LIMITED = "RATE_LIMITED",
  PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE",
  QUERY_TOO_DEEP = "QUERY_TOO_DEEP",
  QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX",
  TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS",
  TOO_MANY_MUTATIONS = "TOO_MANY_MUTATIONS",
  SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE",
  BUDGET_EXCEEDED = "BUDGET_EXCEEDED",
  FEATURE_UNAVAILABLE = "FEATURE_UNAVAILABLE",
  INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR",
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.QUERY_TOO_DEEP]: 400,
  [ErrorCode.QUERY_TOO_COMPLEX]: 400,
  [ErrorCode.TOO_MANY_MUTATIONS]: 400,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

export class AppError extends GraphQLError {
  constructor(message: string, code: ErrorCode, options?: GraphQLErrorOptions) {
    const status = HTTP_STATUS[code];
    // extensions.http ({ status, headers }) is read by Apollo for the HTTP response and removed by formatError.
    const http = { ...(options?.extensions?.http as object | undefined), ...(status ? { status } : {}) };
    super(message, {
      ...options,
      extensions: { ...options?.extensions, code, ...(Object.keys(http).length ? { http } : {}) },
    });
    this.name = this.constructor.name;
  }
}

export class BadUserInputError extends AppError {
  constructor(message: string, extensions?: Record<string, unknown>) {
    super(message, ErrorCode.BAD_USER_INPUT, { extensions });
  }
}
export class UnauthenticatedError extends AppError {
  constructor(message = "A valid bearer token is required") {
    super(message, ErrorCode.UNAUTHENTICATED);
  }
}
export class ForbiddenError extends AppError {
  constructor(message = "You are not allowed to do this") {
    super(message, ErrorCode.FORBIDDEN);
  }
}
export class NotFoundError extends AppError {
  /** The same message for "does not exist" and "not yours", so that ids do not leak existence. */
  constructor(what: string) {
    super(`${what} not found`, ErrorCode.NOT_FOUND);
  }
}
export class ConflictError extends AppError {
  constructor(message: string) {
    super(message, ErrorCode.CONFLICT);
  }
}
export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super(message, ErrorCode.PAYLOAD_TOO_LARGE);
  }
}

/** A HARD budget is spent for its period: nothing was stored; `resetsAt` says when the next period starts. */
export class BudgetExceededError extends AppError {
  constructor(budget: { limitUsd: number; spentUsd: number; resetsAt: Date; period: string; subject: "user" | "guild" }) {
    super(`The ${budget.subject}'s ${budget.period} budget of ${budget.limitUsd} USD is spent (${budget.spentUsd} USD); it resets at ${budget.resetsAt.toISOString()}`, ErrorCode.BUDGET_EXCEEDED, {
      extensions: { limit: budget.limitUsd, spent: budget.spentUsd, resetsAt: budget.resetsAt.toISOString(), subject: budget.subject },
    });
  }
}

/**
 * The feature needs something this installation lacks (a PostgreSQL extension, a setting): nothing was done, and
 * asking again will not help until an operator adds it. `extensions.missing` names what is missing.
 */
export class FeatureUnavailableError extends AppError {
  constructor(message: string, missing: string) {
    super(message, ErrorCode.FEATURE_UNAVAILABLE, { extensions: { missing } });
  }
}

/** Over the request budget of a token or an address; HTTP 429 with Retry-After. */
export class RateLimitedError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(`Too many requests: try again in ${retryAfterSeconds} s`, ErrorCode.RATE_LIMITED, {
      extensions: { retryAfterSeconds, http: { headers: new HeaderMap([["retry-after", String(retryAfterSeconds)]]) } },
    });
  }
}
export class QueryTooDeepError extends AppError {
  constructor(depth: number, maxDepth: number) {
    super(`Query depth ${depth} exceeds the maximum depth of ${maxDepth}`, ErrorCode.QUERY_TOO_DEEP, { extensions: { depth, maxDepth } });
  }
}
export class QueryTooComplexError extends AppError {
  /** `complexity` is undefined when the query was too large to estimate at all. */
  constructor(complexity: number | undefined, maxComplexity: number) {
    const measured = complexity === undefined ? "is too large to estimate" : `is ${complexity}`;
    super(`Query complexity ${measured}, above the maximum complexity of ${maxComplexity}`, ErrorCode.QUERY_TOO_COMPLEX, {
      extensions: { complexity, maxComplexity },
    });
  }
}
export class TooManyMutationsError extends AppError {
  constructor(count: number, max: number) {
    super(`This operation runs ${count} mutations; at most ${max} may run in one operation`, ErrorCode.TOO_MANY_MUTATIONS, {
      extensions: { count, max },
    });
  }
}
export class TooManySubscriptionsError extends AppError {
  constructor(max: number) {
    super(`At most ${max} operations may run at once on one connection`, ErrorCode.TOO_MANY_SUBSCRIPTIONS, { extensions: { max } });
  }
}

/** Seconds a client is told to wait (Retry-After) when the database or storage is away: the listener's reconnect cap. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * The database (or the storage) is away, or too slow: nothing was done that the client must know of, and the
 * same request may be sent again after `retryAfterSeconds` (HTTP 503 with Retry-After). `reason` tells
 * DATABASE_UNAVAILABLE, STATEMENT_TIMEOUT and STORAGE_UNAVAILABLE apart; live streams add `lastSeq`.
 */
export class ServiceUnavailableError extends AppError {
  constructor(message: string, reason: string, extensions: Record<string, unknown> = {}) {
    super(message, ErrorCode.SERVICE_UNAVAILABLE, {
      extensions: {
        reason,
        retryAfterSeconds: RETRY_AFTER_SECONDS,
        ...extensions,
        http: { headers: new HeaderMap([["retry-after", String(RETRY_AFTER_SECONDS)]]) },
      },
    });
  }
}

/** SQLSTATEs of a server that is going away, starting up or refusing connections (57014, a cancelled statement, apart). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-5]|53300|53400)$/;
/** Node socket errors of a connection that could not be made or was cut. */
const UNAVAILABLE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
/**
 * What pg and knex say, without a code, of a connection lost or never got (knex: the bounded wait for the
 * pool). Not anchored: knex puts the statement (with placeholders, never values) in front of the driver's message.
 */
const UNAVAILABLE_MESSAGE = /(Connection terminated|Connection ended unexpectedly|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect|Knex: Timeout acquiring a connection)/;

/**
 * The error as a ServiceUnavailableError when it says the database is away (unreachable, restarting, the
 * connection lost, no pool connection within DATABASE_ACQUIRE_TIMEOUT_MS) or cancelled a statement that ran
 * past DATABASE_STATEMENT_TIMEOUT_MS; otherwise undefined. Objection's wrappers are looked through.
 */
export function unavailableError(error: unknown): ServiceUnavailableError | undefined {
  if (error instanceof ServiceUnavailableError) return error;
  // Objection keeps the driver's error as nativeError; graphql-js keeps a thrown value that is not an Error of
  // its realm (a socket error made by Node itself, seen from a sandbox such as jest's) as thrownValue.
  const wrapped = error as { nativeError?: unknown; thrownValue?: unknown } | null;
  const native = (wrapped?.nativeError ?? wrapped?.thrownValue ?? error) as { code?: unknown; message?: unknown; name?: unknown } | null;
  if (!native || typeof native !== "object") return undefined;
  const code = typeof native.code === "string" ? native.code : "";
  if (code === "57014") {
    return new ServiceUnavailableError("The database took too long to answer (statement timeout); try again", "STATEMENT_TIMEOUT");
  }
  const message = typeof native.message === "string" ? native.message : "";
  // pg reports a failed connect as an AggregateError of its attempts (IPv4 and IPv6) on Node 20+.
  const inner = (native as { errors?: unknown }).errors;
  const away =
    UNAVAILABLE_SQLSTATE.test(code) ||
    UNAVAILABLE_ERRNO.has(code) ||
    native.name === "KnexTimeoutError" ||
    UNAVAILABLE_MESSAGE.test(message) ||
    (Array.isArray(inner) && inner.some((each) => unavailableError(each)));
  return away ? new ServiceUnavailableError("The database is unavailable; try again shortly", "DATABASE_UNAVAILABLE") : undefined;
}

/** Maps a database or Objection error to the vocabulary; undefined when it is not one we know. */
export function mapDatabaseError(error: unknown): AppError | undefined {
  const unavailable = unavailableError(error);
  if (unavailable) return unavailable;
  if (error instanceof UniqueViolationError) return new ConflictError("This would duplicate an existing record");
  if (error instanceof ForeignKeyViolationError) return new BadUserInputError("A referenced record does not exist");
  if (error instanceof CheckViolationError || error instanceof NotNullViolationError || error instanceof DataError) {
    return new BadUserInputError("A value is out of range or malformed");
  }
  if (error instanceof ObjectionNotFoundError) return new NotFoundError("Record");
  if (error instanceof ObjectionValidationError) return new BadUserInputError(error.message);
  // Errors of queries made with knex directly arrive unwrapped, as the driver's (pg or PGlite) error with
  // its SQLSTATE: class 23 is an integrity violation, class 22 a malformed or out-of-range value.
  const sqlState = (error as { code?: unknown } | null)?.code;
  if (typeof sqlState === "string" && /^[0-9A-Z]{5}$/.test(sqlState)) {
    if (sqlState === "23505") return new ConflictError("This would duplicate an existing record");
    if (sqlState === "23503") return new BadUserInputError("A referenced record does not exist");
    if (sqlState.startsWith("23") || sqlState.startsWith("22")) return new BadUserInputError("A value is out of range or malformed");
  }
  return undefined;
}

/** Codes that graphql-js and Apollo attach themselves for malformed requests; they pass through as they are. */
const PASS_THROUGH = new Set([
  ...Object.values(ErrorCode),
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "OPERATION_RESOLUTION_FAILURE",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
]);

export interface FormatOptions {
  /** Keep Apollo's stacktrace extension (development only). */
  exposeDetails: boolean;
  /** Called for every error that is hidden from the client, so it can be logged with the request id. */
  onInternalError?: (error: unknown) => void;
}

/**
 * Apollo's formatError: known errors keep their message and code; database errors are mapped; anything
 * else becomes INTERNAL_SERVER_ERROR without its message, so no SQL, path or stack leaks out.
 */
export function makeFormatError(options: FormatOptions) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const mapped = original instanceof AppError ? original : mapDatabaseError(original);
    const base = { locations: formatted.locations, path: formatted.path };
    if (mapped) {
      return { ...base, message: mapped.message, extensions: withoutHttp(mapped.extensions) };
    }
    const code = formatted.extensions?.code;
    // Errors graphql-js raises itself (parse, validation, variable coercion, scalar parsing) describe the
    // request and are safe to show; a GraphQLError wrapping a plain Error (a bug, a driver error) is not.
    const isOwnGraphQLError =
      original instanceof GraphQLError && (!original.originalError || original.originalError instanceof GraphQLError);
    if (typeof code === "string" && PASS_THROUGH.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR && isOwnGraphQLError) {
      const { stacktrace, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions: options.exposeDetails ? { ...extensions, stacktrace } : extensions };
    }
    // Apollo refuses some malformed requests (a persisted-query hash that does not match, an unknown version)
    // with a code-less GraphQLError and a 4xx status: the client's mistake, so say so.
    const status = (original instanceof GraphQLError && (original.extensions.http as { status?: number } | undefined)?.status) || 0;
    if (isOwnGraphQLError && original.extensions.code === undefined && status >= 400 && status < 500) {
      return { ...base, message: original.message, extensions: { code: "BAD_REQUEST" } };
    }
    options.onInternalError?.(original);
    return { ...base, message: "Internal server error", extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
  };
}

/** Extensions without `http` (status and headers meant for the HTTP response, not for clients to read). */
function withoutHttp(extensions: Record<string, unknown>): Record<string, unknown> {
  const { http: _http, ...rest } = extensions;
  return rest;
}
