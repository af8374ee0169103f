/**
 * The detector of a database that is away (errors.ts unavailableError) on the shapes its errors really take:
 * the driver's SQLSTATE, a socket errno, pg's messages with knex's statement in front, Objection's wrapper,
 * graphql-js's wrapper of a value thrown from another realm, an AggregateError of connect attempts. And what
 * it must not take for an outage.
 */
import { GraphQLError } from "graphql";
import { makeFormatError, unavailableError } from "../../src/graphql/errors";

const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });

describe("unavailableError", () => {
  it.each([
    ["admin shutdown (57P01)", withCode("57P01", "terminating connection due to administrator command")],
    ["starting up (57P03)", withCode("57P03")],
    ["a connection exception (08006)", withCode("08006")],
    ["too many connections (53300)", withCode("53300")],
    ["a refused socket", withCode("ECONNREFUSED")],
    ["a reset socket", withCode("ECONNRESET")],
    ["pg's lost connection, with knex's statement in front", new Error('select "messages".* from "messages" where "id" in ($1) - Connection terminated unexpectedly')],
    ["knex's pool timeout", Object.assign(new Error("Knex: Timeout acquiring a connection. The pool is probably full."), { name: "KnexTimeoutError" })],
    ["Objection's wrapper", Object.assign(new Error("wrapped"), { nativeError: withCode("57P01") })],
    ["a value from another realm, as graphql-js keeps it", Object.assign(new Error("Unexpected error value: {...}"), { thrownValue: { errno: -104, code: "ECONNRESET" } })],
    ["an AggregateError of connect attempts", Object.assign(new Error("all failed"), { errors: [withCode("ECONNREFUSED"), withCode("ECONNREFUSED")] })],
  ])("takes %s for the database being away", (_case, error) => {
    expect(unavailableError(error)?.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE", reason: "DATABASE_UNAVAILABLE", retryAfterSeconds: 5 });
  });

  it("tells a cancelled statement (57014) apart", () => {
    expect(unavailableError(withCode("57014", "canceling statement due to statement timeout"))?.extensions.reason).toBe("STATEMENT_TIMEOUT");
  });

  it.each([
    ["a unique violation", withCode("23505")],
    ["a malformed value", withCode("22P02")],
    ["a bug", new TypeError("x is undefined")],
    ["a message that merely mentions a connection", new Error("user content: Connection reset by peer")],
    ["nothing", undefined],
  ])("does not take %s for an outage", (_case, error) => {
    expect(unavailableError(error)).toBeUndefined();
  });

  it("is what formatError answers for a driver error inside a resolver: the code, no SQL", () => {
    const format = makeFormatError({ exposeDetails: false });
    const located = new GraphQLError("wrapped", { path: ["conversation"], originalError: new Error('select "secret" from "t" - Connection terminated unexpectedly') });
    expect(format(located.toJSON(), located)).toEqual({
      message: "The database is unavailable; try again shortly",
      extensions: { code: "SERVICE_UNAVAILABLE", reason: "DATABASE_UNAVAILABLE", retryAfterSeconds: 5 },
      locations: undefined,
      path: ["conversation"],
    });
  });
});
