/**
 * A real Parley server for a test file: its own database, listening on an ephemeral port, driven over
 * HTTP exactly as clients drive it. `gql` returns the HTTP status and the parsed body.
 */
import type { Env } from "../../src/config";
import { startServer, type RunningServer } from "../../src/server/app";
import { Role } from "../../src/modules/user/role.enum";
import { User } from "../../src/modules/user/user.model";
import { createApiKey } from "../../src/modules/api-key/api-key.service";
import { createTestDatabase, testConfig, type TestDatabase } from "./db";

export interface GraphQLBody<T = Record<string, any>> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> }[];
}

export interface GqlResponse<T = Record<string, any>> {
  status: number;
  body: GraphQLBody<T>;
}

export interface TestUser {
  user: User;
  token: string;
}

export interface TestApp {
  server: RunningServer;
  database: TestDatabase;
  url: string;
  /** POST /graphql with an optional bearer token. */
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GqlResponse<T>>;
  /** Like gql, but fails the test on any error and returns data. */
  ok<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<T>;
  /** Like gql, but expects exactly one error and returns its extensions.code. */
  errorCode(query: string, variables?: Record<string, unknown>, token?: string): Promise<string | undefined>;
  /** Grants a service every conversation of an origin ("web", "discord", "api") or one conversation. */
  grant(service: TestUser, target: { origin: string } | { conversationId: string }): Promise<void>;
  /** A user of `role` with an API key. */
  makeUser(role?: Role, displayName?: string): Promise<TestUser>;
  dispose(): Promise<void>;
}

let counter = 0;

/**
 * A server on a new database; with `shared`, a further server with other settings (`env`) on that
 * database, which it leaves open for its owner (e.g. servers before and after a key rotation).
 */
export async function createTestApp(env: Env = {}, shared?: TestDatabase): Promise<TestApp> {
  const database = shared
    ? { ...shared, config: testConfig(shared.url, env), dispose: async () => undefined }
    : await createTestDatabase(env);
  const server = await startServer({ config: database.config, db: database.db });
  const endpoint = `http://127.0.0.1:${server.port}/graphql`;

  const gql = async <T,>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GqlResponse<T>> => {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, body: (await response.json()) as GraphQLBody<T> };
  };

  return {
    server,
    database,
    url: `http://127.0.0.1:${server.port}`,
    gql,
    async ok<T>(query: string, variables?: Record<string, unknown>, token?: string) {
      const { body } = await gql<T>(query, variables, token);
      if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data as T;
    },
    async errorCode(query: string, variables?: Record<string, unknown>, token?: string) {
      const { body } = await gql(query, variables, token);
      if (body.errors?.length !== 1) throw new Error(`expected one error, got ${JSON.stringify(body)}`);
      return body.errors[0].extensions?.code as string | undefined;
    },
    async grant(service, target) {
      await database.db.knex("service_grants").insert({ serviceId: service.user.id, ...target });
    },
    async makeUser(role = Role.MEMBER, displayName = `${role}-${++counter}`) {
      const user = await User.query(database.db.knex).insertAndFetch({ displayName, role });
      const { secret } = await createApiKey(database.db.knex, user.id, "test");
      return { user, token: secret };
    },
    async dispose() {
      await server.dispose();
      await database.dispose();
    },
  };
}
