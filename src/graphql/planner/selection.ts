/**
 * What an operation asks of one field: its subfields by response key through fragments and inline fragments
 * (with their type conditions), and the field's arguments coerced as its resolver gets them. A connection
 * (`edges { node }`) is seen through to its nodes.
 *
 * @include/@skip are NOT applied: a plan covers everything the operation may ask for, which can only add columns.
 * That is on purpose: graphql-jit (GRAPHQL_JIT) also runs the fragments inside a skipped copy of a field when
 * the same response key is asked unskipped elsewhere, and a plan of only what graphql-js would run left those
 * fields without their columns (test/api/read-planner.test.ts keeps the case).
 */
import {
  getArgumentValues,
  getNamedType,
  isAbstractType,
  isObjectType,
  Kind,
  type FieldNode,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type NamedTypeNode,
  type SelectionSetNode,
} from "graphql";

export interface Selected {
  args: Record<string, unknown>;
  /** The type whose fields were collected: the field's type, or a connection's node type. */
  nodeType: GraphQLNamedType;
  /** Response key → the field nodes asked under it. */
  fields: Map<string, readonly FieldNode[]>;
  /** For a connection: the names of the fields asked of the connection itself (edges, pageInfo, totalCount). */
  connectionFields?: Set<string>;
}

/** The fields below `nodes` (one response key's field nodes) on `type`, by response key, directives not applied. */
function collect(type: GraphQLObjectType, nodes: readonly FieldNode[], info: GraphQLResolveInfo): Map<string, FieldNode[]> {
  const fields = new Map<string, FieldNode[]>();
  const visited = new Set<string>(); // validation refuses fragment cycles; this keeps a fragment spread twice to one walk
  const matches = (condition: NamedTypeNode | undefined) => {
    if (!condition) return true;
    const named = info.schema.getType(condition.name.value);
    return named === type || (named !== undefined && isAbstractType(named) && info.schema.isSubType(named, type));
  };
  const walk = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        const found = fields.get(key);
        if (found) found.push(selection);
        else fields.set(key, [selection]);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (matches(selection.typeCondition)) walk(selection.selectionSet);
      } else if (!visited.has(selection.name.value)) {
        visited.add(selection.name.value);
        const fragment = info.fragments[selection.name.value];
        if (fragment && matches(fragment.typeCondition)) walk(fragment.selectionSet);
      }
    }
  };
  for (const node of nodes) walk(node.selectionSet);
  return fields;
}

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
 * The arguments of every occurrence of the child `field` below the current field (each alias counts, and so do
 * skipped ones), or undefined when they cannot be known (invalid arguments: the child's resolver reports them). For resolvers
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
