/**
 * Puts the read planner in front of the resolvers of the hot types, in the built schema: the root entry
 * points try the planner first, relation fields take their planned values, and a few computed fields read
 * what the planner prepared. Everything falls back to the field's own (TypeGraphQL) resolver, which is also
 * what runs when READ_PLANNER=false.
 */
import { isObjectType, type GraphQLFieldResolver, type GraphQLResolveInfo, type GraphQLSchema } from "graphql";
import type { Actor } from "../../modules/actor";
import { plannedOr, type Planned, type TypePlan } from "./plan";

export interface PlannerSetup {
  types: TypePlan[];
  /** Root fields ("Query.conversation") and their planned entry point; undefined from it means "not plannable". */
  roots: Record<string, (ctx: Actor, info: GraphQLResolveInfo, args: any) => Promise<unknown>>;
  /** Computed fields ("Message.content") and their value on a planned row; undefined means "ask the resolver". */
  computed: Record<string, (row: Planned, ctx: Actor) => unknown>;
}

function fieldOf(schema: GraphQLSchema, path: string) {
  const [typeName, fieldName] = path.split(".");
  const type = schema.getType(typeName);
  const field = isObjectType(type) ? type.getFields()[fieldName] : undefined;
  if (!field?.resolve) throw new Error(`read planner: ${path} is not a resolved field of the schema`);
  return { field, resolve: field.resolve as GraphQLFieldResolver<any, Actor> };
}

export function installReadPlanner(schema: GraphQLSchema, setup: PlannerSetup): void {
  for (const [path, entry] of Object.entries(setup.roots)) {
    const { field, resolve } = fieldOf(schema, path);
    field.resolve = async (root, args, ctx: Actor, info) => {
      if (!ctx.config.readPlanner) return resolve(root, args, ctx, info);
      const planned = await entry(ctx, info, args);
      return planned === undefined ? resolve(root, args, ctx, info) : planned;
    };
  }
  for (const [path, value] of Object.entries(setup.computed)) {
    const { field, resolve } = fieldOf(schema, path);
    field.resolve = (root: Planned, args, ctx: Actor, info) => {
      const planned = value(root, ctx);
      return planned === undefined ? resolve(root, args, ctx, info) : planned;
    };
  }
  for (const type of setup.types) {
    for (const [name, plan] of Object.entries(type.fields)) {
      if (!plan.relation) continue;
      const { field, resolve } = fieldOf(schema, `${type.name}.${name}`);
      field.resolve = plannedOr(resolve);
    }
  }
}
