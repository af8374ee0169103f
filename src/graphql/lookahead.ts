/**
 * Look-ahead for the hot paths: which arguments a child field is asked with, read from the operation before
 * that field's resolver runs, so that a parent can fetch a child's rows in its own statement (see
 * src/db/embed.ts). Only ever an optimisation: a caller that cannot use what it finds simply does not prefetch.
 */
import { getArgumentValues, isObjectType, Kind, type GraphQLResolveInfo, type SelectionSetNode } from "graphql";

/**
 * The arguments of every occurrence of `field` directly below the current field (through fragments; each alias
 * counts), or undefined when they cannot be known: a directive such as @include, or invalid arguments. Those are
 * then left to the child's own resolver, which reports them as before.
 */
export function childFieldArguments(info: GraphQLResolveInfo, field: string): Record<string, unknown>[] | undefined {
  const type = info.returnType;
  const parent = "ofType" in type && isObjectType(type.ofType) ? type.ofType : type;
  if (!isObjectType(parent)) return undefined;
  const definition = parent.getFields()[field];
  if (!definition) return undefined;
  const found: Record<string, unknown>[] = [];
  const visited = new Set<string>();
  const walk = (selectionSet: SelectionSetNode | undefined): boolean => {
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.directives?.length) return false;
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value !== field) continue;
        try {
          found.push(getArgumentValues(definition, selection, info.variableValues));
        } catch {
          return false;
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (!walk(selection.selectionSet)) return false;
      } else {
        const name = selection.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        if (!walk(info.fragments[name]?.selectionSet)) return false;
      }
    }
    return true;
  };
  for (const node of info.fieldNodes) if (!walk(node.selectionSet)) return undefined;
  return found;
}
