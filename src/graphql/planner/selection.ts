/**
 * What an operation asks of one field, read the way graphql-js's executor reads it (its own collectSubfields:
 * fragments, inline fragments with type conditions, @include/@skip with the request's variables), with the
 * field's arguments coerced as its resolver would get them. A connection (`edges { node }`) is seen through to
 * its nodes.
 */
import { getArgumentValues, getNamedType, isObjectType, type FieldNode, type GraphQLNamedType, type GraphQLObjectType, type GraphQLResolveInfo } from "graphql";
// graphql-js's own field collection (not re-exported from its index), so that the planner reads a selection
// exactly as execution does.
import { collectSubfields } from "graphql/execution/collectFields";

export interface Selected {
  args: Record<string, unknown>;
  /** The type whose fields were collected: the field's type, or a connection's node type. */
  nodeType: GraphQLNamedType;
  /** Response key → the field nodes asked under it. */
  fields: Map<string, readonly FieldNode[]>;
  /** For a connection: the names of the fields asked of the connection itself (edges, pageInfo, totalCount). */
  connectionFields?: Set<string>;
}

const collect = (type: GraphQLObjectType, nodes: readonly FieldNode[], info: GraphQLResolveInfo) =>
  collectSubfields(info.schema, info.fragments, info.variableValues, type, nodes) as Map<string, readonly FieldNode[]>;

/**
 * The selection below one field of `parent` (`nodes` are that response key's field nodes), or undefined when its
 * arguments are invalid (the resolver reports them) or a connection's nodes are asked twice in ways that would
 * need two different plans.
 */
export function subfields(parent: GraphQLObjectType, nodes: readonly FieldNode[], info: GraphQLResolveInfo): Selected | undefined {
  const definition = parent.getFields()[nodes[0].name.value];
  if (!definition) return undefined;
  let args: Record<string, unknown>;
  try {
    args = getArgumentValues(definition, nodes[0], info.variableValues);
  } catch {
    return undefined;
  }
  const type = getNamedType(definition.type);
  if (!isObjectType(type)) return { args, nodeType: type, fields: new Map() };
  const fields = collect(type, nodes, info);
  if (!type.name.endsWith("Connection")) return { args, nodeType: type, fields };
  const edgeType = getNamedType(type.getFields().edges?.type);
  const nodeType = isObjectType(edgeType) ? getNamedType(edgeType.getFields().node?.type) : undefined;
  if (!isObjectType(edgeType) || !isObjectType(nodeType)) return undefined;
  const nodeFields = new Map<string, readonly FieldNode[]>();
  for (const edges of fields.values()) {
    if (edges[0].name.value !== "edges") continue;
    for (const node of collect(edgeType, edges, info).values()) {
      if (node[0].name.value !== "node") continue;
      for (const [key, found] of collect(nodeType, node, info)) {
        if (nodeFields.has(key)) return undefined;
        nodeFields.set(key, found);
      }
    }
  }
  const connectionFields = new Set([...fields.values()].map((nodes) => nodes[0].name.value));
  return { args, nodeType, fields: nodeFields, connectionFields };
}

/**
 * The arguments of every occurrence of the child `field` below the current field (each alias counts), or
 * undefined when they cannot be known (invalid arguments: the child's resolver reports them). For resolvers
 * that read a child's rows in their own statement when the planner is off (ConversationResolver.conversation).
 */
export function childFieldArguments(info: GraphQLResolveInfo, field: string): Record<string, unknown>[] | undefined {
  const type = getNamedType(info.returnType);
  const definition = isObjectType(type) ? type.getFields()[field] : undefined;
  if (!isObjectType(type) || !definition) return undefined;
  const found: Record<string, unknown>[] = [];
  for (const nodes of collect(type, info.fieldNodes, info).values()) {
    if (nodes[0].name.value !== field) continue;
    try {
      found.push(getArgumentValues(definition, nodes[0], info.variableValues));
    } catch {
      return undefined;
    }
  }
  return found;
}
