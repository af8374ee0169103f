/**
 * Limits on the shape of a query, checked after parsing and validation and before anything runs: lexical
 * tokens (while parsing), selection depth and estimated cost. One check serves Apollo (a plugin) and
 * graphql-ws (ws.ts calls checkQueryLimits in onSubscribe), so both transports refuse the same documents.
 */
import {
  getVariableValues,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ParseOptions,
  type SelectionSetNode,
} from "graphql";
import { getComplexity, type ComplexityEstimator } from "graphql-query-complexity";
import type { ApolloServerPlugin } from "@apollo/server";
import type { Config } from "../config";
import type { Context } from "../graphql/context";
import { QueryTooComplexError, QueryTooDeepError, TooManyMutationsError } from "../graphql/errors";

/** For graphql-js parse(): a document of more tokens is refused before an AST is built. */
export function queryParseOptions(config: Config): ParseOptions {
  return { maxTokens: config.limits.maxQueryTokens };
}

/**
 * How deeply field selections nest: `{ viewer { id } }` is 2. Fragment spreads and inline fragments add no
 * level of their own. Introspection fields count as one level: the standard introspection query nests
 * `ofType` nine deep, and its size is bounded by the schema (and by the complexity and token limits).
 */
export function queryDepth(document: DocumentNode, operation: OperationDefinitionNode): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment's depth does not depend on where it is spread, so each is measured once (no blow-up from
  // fragments spread many times); `active` guards against cycles, which validation should have refused.
  const known = new Map<string, number>();
  const active = new Set<string>();

  const fragmentDepth = (name: string): number => {
    const cached = known.get(name);
    if (cached !== undefined) return cached;
    const fragment = fragments.get(name);
    if (!fragment || active.has(name)) return 0;
    active.add(name);
    const depth = selectionDepth(fragment.selectionSet);
    active.delete(name);
    known.set(name, depth);
    return depth;
  };
  const selectionDepth = (set: SelectionSetNode): number => {
    let max = 0;
    for (const selection of set.selections) {
      let depth: number;
      if (selection.kind === Kind.FIELD) {
        const nested = selection.selectionSet && !selection.name.value.startsWith("__");
        depth = 1 + (nested ? selectionDepth(selection.selectionSet) : 0);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) depth = selectionDepth(selection.selectionSet);
      else depth = fragmentDepth(selection.name.value);
      max = Math.max(max, depth);
    }
    return max;
  };
  return selectionDepth(operation.selectionSet);
}

/**
 * Cost of one field: a paged field (one that takes `first`/`last`) returns up to its page size of items, so
 * it costs 1 plus the page size times its selection; any other field costs 1 plus its selection. A size
 * above MAX_PAGE_SIZE is counted as MAX_PAGE_SIZE: the resolver refuses it (BAD_USER_INPUT) without
 * loading anything, and that error says more than QUERY_TOO_COMPLEX would.
 */
function pageSizeEstimator({ defaultPageSize, maxPageSize }: Config): ComplexityEstimator {
  return ({ field, args, childComplexity }) => {
    const paged = field.args.some((arg) => arg.name === "first" || arg.name === "last");
    if (!paged) return 1 + childComplexity;
    const size = [args.first, args.last].find((value): value is number => typeof value === "number") ?? defaultPageSize;
    return 1 + Math.min(Math.max(0, size), maxPageSize) * childComplexity;
  };
}

export interface QueryToCheck {
  schema: GraphQLSchema;
  /** Parsed and validated. */
  document: DocumentNode;
  operation: OperationDefinitionNode;
  variables?: Record<string, unknown> | null;
}

/**
 * Root fields of an operation, counted through fragments: `{ a: addMessage(...) b: addMessage(...) }` is 2.
 * Rate limits count requests, so without a cap aliases would multiply the writes one request may make.
 */
export function rootFieldCount(document: DocumentNode, operation: OperationDefinitionNode): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const seen = new Set<string>(); // validation refuses fragment cycles; this only keeps the count finite
  const count = (set: SelectionSetNode): number =>
    set.selections.reduce((sum, selection) => {
      if (selection.kind === Kind.FIELD) return sum + (selection.name.value.startsWith("__") ? 0 : 1);
      if (selection.kind === Kind.INLINE_FRAGMENT) return sum + count(selection.selectionSet);
      const fragment = fragments.get(selection.name.value);
      if (!fragment || seen.has(fragment.name.value)) return sum;
      seen.add(fragment.name.value);
      return sum + count(fragment.selectionSet);
    }, 0);
  return count(operation.selectionSet);
}

/** Throws QUERY_TOO_DEEP, QUERY_TOO_COMPLEX or TOO_MANY_MUTATIONS when the operation is over the configured limits. */
export function checkQueryLimits({ schema, document, operation, variables }: QueryToCheck, config: Config): void {
  const { maxQueryDepth, maxQueryComplexity, maxMutationsPerOperation } = config.limits;
  if (operation.operation === "mutation") {
    const mutations = rootFieldCount(document, operation);
    if (mutations > maxMutationsPerOperation) throw new TooManyMutationsError(mutations, maxMutationsPerOperation);
  }
  const depth = queryDepth(document, operation);
  if (depth > maxQueryDepth) throw new QueryTooDeepError(depth, maxQueryDepth);

  const complexity = knownComplexity(document, operation, variables ?? {}, () => complexityOf({ schema, document, operation, variables }, config));
  if (complexity !== null && complexity > maxQueryComplexity) throw new QueryTooComplexError(complexity, maxQueryComplexity);
}

/**
 * The estimate, or null when the variables do not fit the operation: those are left to execution, which
 * reports them as BAD_USER_INPUT (and runs nothing).
 */
function complexityOf({ schema, document, operation, variables }: QueryToCheck, config: Config): number | null {
  const { maxQueryComplexity } = config.limits;
  // Page sizes may come from variables.
  if (getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}).errors) return null;
  let complexity: number;
  try {
    complexity = getComplexity({
      schema,
      query: document,
      operationName: operation.name?.value,
      variables: variables ?? {},
      estimators: [pageSizeEstimator(config)],
    });
  } catch {
    // With valid variables the estimate fails only when fragments expand past the library's node budget.
    throw new QueryTooComplexError(undefined, maxQueryComplexity);
  }
  return complexity;
}

/** Variables of these types are ids and text: they never change a page size or an @include. */
const INERT_TYPES = new Set(["String", "ID", "UUID", "DateTime"]);
/** Variables of these types may be page sizes or @include conditions: part of the key. */
const TELLING_TYPES = new Set(["Int", "Float", "Boolean"]);
/** Estimates kept per document (one per combination of the variables that matter). */
const ESTIMATES_PER_DOCUMENT = 64;
const estimates = new WeakMap<DocumentNode, Map<string, number>>();

/**
 * The estimate of an operation is the same for every request of its document with the same page sizes and
 * @include/@skip conditions, whatever ids it names: estimated once per document (Apollo keeps parsed documents)
 * and such variables, instead of walking the document on every request.
 */
function knownComplexity(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  estimate: () => number | null,
): number | null {
  const telling: unknown[] = [];
  for (const definition of operation.variableDefinitions ?? []) {
    let type = definition.type;
    while (type.kind !== Kind.NAMED_TYPE) type = type.type;
    if (INERT_TYPES.has(type.name.value)) continue;
    // Inputs and JSON may hold anything (a page size, or 20,000 levels of nesting): estimated every time.
    if (!TELLING_TYPES.has(type.name.value)) return estimate();
    const name = definition.variable.name.value;
    telling.push(name in variables ? variables[name] : "missing"); // a missing variable takes its default, unlike null
  }
  const key = `${operation.name?.value ?? ""}\u0000${JSON.stringify(telling)}`;
  let byKey = estimates.get(document);
  if (!byKey) estimates.set(document, (byKey = new Map()));
  let complexity = byKey.get(key);
  if (complexity !== undefined) return complexity;
  const estimated = estimate();
  // Not remembered when the variables did not fit: an id variable (left out of the key) may have been the bad one.
  if (estimated === null) return null;
  if (byKey.size >= ESTIMATES_PER_DOCUMENT) byKey.clear();
  byKey.set(key, estimated);
  return estimated;
}

/** The Apollo side: checks every operation once it is resolved (HTTP 400 with the code on failure). */
export function queryLimitsPlugin(config: Config): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (operation) checkQueryLimits({ schema, document, operation, variables: request.variables }, config);
        },
      };
    },
  };
}
