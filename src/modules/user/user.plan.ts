/** How the read planner reads users (graphql/planner): a message's author, a conversation's owner. */
import { columnFields, columnsOf, type TypePlan } from "../../graphql/planner/plan";

const SCALARS = ["id", "displayName", "role", "isActive", "createdAt", "updatedAt"] as const;

export const userPlan: TypePlan = {
  name: "User",
  table: "users",
  columns: columnsOf({
    id: "plain",
    displayName: "plain",
    role: "plain",
    isActive: "plain",
    createdAt: "date",
    updatedAt: "date",
    email: "plain",
    externalId: "plain",
    discordId: "plain",
    preferences: "plain",
  }),
  fields: {
    ...columnFields(SCALARS),
    // Resolved by UserResolver, which shows them to the user and admins only (it compares ids).
    ...columnFields(["email", "externalId", "discordId", "preferences"]),
    activity: { needs: ["id"] },
  },
  always: ["id"],
};
