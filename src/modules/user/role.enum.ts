import { registerEnumType } from "type-graphql";

/** GraphQL names are SCREAMING_CASE; the values are what the database stores. */
export enum Role {
  ADMIN = "admin",
  SERVICE = "service",
  MEMBER = "member",
}

registerEnumType(Role, {
  name: "Role",
  description: "ADMIN: everything. SERVICE: bots and AI workers. MEMBER: own data only.",
});
