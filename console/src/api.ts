/**
 * GraphQL over HTTP: one POST to /graphql with the bearer token, the first error turned into an ApiError
 * that carries Parley's `extensions.code`. Knows nothing of the session (session.ts and client.ts do).
 */

export interface GraphQLError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: string,
    message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }

  static from(error: GraphQLError): ApiError {
    return new ApiError(String(error.extensions?.code ?? "INTERNAL_SERVER_ERROR"), error.message, error.extensions ?? {});
  }
}

/** The endpoint the console was served with: same origin, so no CORS and nothing to configure. */
export const GRAPHQL_PATH = "/graphql";

export async function request<T>(query: string, variables: Record<string, unknown> | undefined, token: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("NETWORK", "Parley could not be reached. Check the connection and try again.");
  }
  let body: { data?: T | null; errors?: GraphQLError[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError("BAD_RESPONSE", `Parley answered HTTP ${response.status} without a GraphQL body.`);
  }
  if (body.errors?.length) throw ApiError.from(body.errors[0]);
  if (body.data == null) throw new ApiError("BAD_RESPONSE", "Parley answered without data.");
  return body.data;
}

/** A message for people: Parley's own messages are written for them already, except a few codes. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    switch (error.code) {
      case "RATE_LIMITED":
        return `Too many requests: try again in ${error.extensions.retryAfterSeconds ?? "a few"} seconds.`;
      case "SERVICE_UNAVAILABLE":
        return "Parley's database is not answering right now. Try again shortly.";
      case "INTERNAL_SERVER_ERROR":
        return "Something went wrong on the server.";
      default:
        return error.message;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
