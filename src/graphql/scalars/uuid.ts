/**
 * The UUID scalar. graphql-scalars' UUIDScalar accepts forms PostgreSQL's uuid type reads differently or
 * not at all (a trailing "}", URN prefixes) and keeps the client's letter case, while the database returns
 * lower case, so an upper-case id missed every DataLoader key. This one accepts exactly the canonical
 * 8-4-4-4-12 hex form, in either case, and hands resolvers the lower-case form.
 */
import { GraphQLError, GraphQLScalarType, Kind } from "graphql";

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseUuid(value: unknown): string {
  if (typeof value !== "string" || !UUID_PATTERN.test(value)) {
    throw new GraphQLError("Expected a UUID such as 0a1b2c3d-0000-4000-8000-000000000000");
  }
  return value.toLowerCase();
}

export const UUIDScalar = new GraphQLScalarType({
  name: "UUID",
  description: "A UUID in its canonical form, 8-4-4-4-12 hex digits (answers are lower case)",
  // Answers come from uuid columns, already canonical and lower case: checking each id of a page costs a regex
  // test per id for nothing. Anything else still goes through the check.
  serialize: (value) => (typeof value === "string" && value.length === 36 ? value : parseUuid(value)),
  parseValue: (value) => parseUuid(value),
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError("Expected a UUID string", { nodes: ast });
    return parseUuid(ast.value);
  },
});
