/**
 * The read planner (DESIGN.md "Reads that must be fast are planned"): for the hot types, the selection of one
 * root field is compiled into ONE statement that selects only the columns the selection needs, with related
 * rows and nested pages as correlated sub-selects, and PostgreSQL builds the answer's tree as JSON arrays
 * (positional, so no key is repeated per row). The rows come back as plain objects with the model's property
 * names; relation fields find their planned value under PLANNED by response key (aliases may ask the same
 * field twice with other arguments).
 *
 * A type's plan (TypePlan, declared in its domain module) says, field by field, which columns the field needs
 * and how a relation is read. A level whose selection has a field no plan knows is not planned: the parent's
 * relation field then falls back to its resolver and DataLoaders, with the columns that resolver reads
 * planned into the parent row. So correctness never depends on the planner; it only saves work.
 */
import type { GraphQLResolveInfo } from "graphql";
import { isObjectType, type FieldNode, type GraphQLObjectType } from "graphql";
import type { Actor } from "../../modules/actor";
import { subfields, type Selected } from "./selection";
import { SqlText } from "./sql";
import DataLoader from "dataloader";
import { snakeCaseMappers } from "objection";
import { prepared } from "../../db/prepared";

const { format: toColumns } = snakeCaseMappers();

/** On a planned row: the planned values of its relation fields, by response key. */
export const PLANNED = Symbol("planned");

export type Planned = Record<string, unknown> & { [PLANNED]?: Record<string, unknown> };

/** How a column's JSON value becomes the property's value: dates travel as epoch milliseconds, bytea as hex. */
export type ColumnKind = "plain" | "date" | "bytes";

export interface Column {
  /** The column's name in SQL. */
  name: string;
  kind: ColumnKind;
}

/** A relation read in the parent's statement. `alias` is the child's table alias, `parent` the parent's. */
export interface Relation {
  type: () => TypePlan;
  /** Appends the SQL expression of the relation's value, around the child's JSON expression (`parts.row`). */
  sql(q: SqlText, parts: RelationParts): void;
  /** The arguments are checked (and turned into a page) before any SQL is written; undefined: do not plan. */
  prepare?(args: Record<string, unknown>, actor: Actor): unknown;
  /** The field's value from the decoded rows (one row, null, or a list of rows for a page). */
  value?(decoded: unknown, prepared: unknown, parent: Planned): unknown;
  many?: boolean;
}

/** The one row of `type` (or null) that `where` finds for the parent row: a correlated sub-select on a key. */
export function toOne(type: () => TypePlan, where: (alias: string, parent: string) => string): Relation {
  return {
    type,
    sql(q, { alias, parent, row }) {
      q.text("(select ");
      row(q);
      q.text(` from ${type().table} ${alias} where ${where(alias, parent)})`);
    },
  };
}

export interface RelationParts {
  alias: string;
  parent: string;
  /** Appends the child's JSON expression over `alias`. */
  row(q: SqlText): void;
  prepared: unknown;
}

export interface FieldPlan {
  /** Properties (columns of the type) the field or its resolver reads from the row, planned or not. */
  needs: readonly string[];
  relation?: Relation;
}

export interface TypePlan {
  name: string;
  table: string;
  columns: Readonly<Record<string, Column>>;
  fields: Readonly<Record<string, FieldPlan>>;
  /** Properties every planned row carries (the id, and what access decisions on the row read). */
  always: readonly string[];
}

interface PlannedRelation {
  key: string;
  relation: Relation;
  child: ObjectPlan;
  prepared: unknown;
}

/** What one level of the selection reads: its columns, in order, and its planned relations. */
export interface ObjectPlan {
  type: TypePlan;
  properties: string[];
  relations: PlannedRelation[];
}

/**
 * The plan of `type` for a selection (response key → field nodes), or undefined when a field of it is not
 * known to the type's plan. Relations whose own selection cannot be planned are left to their resolvers.
 */
export function planObject(
  type: TypePlan,
  graphqlType: GraphQLObjectType,
  fields: Map<string, readonly FieldNode[]>,
  info: GraphQLResolveInfo,
  actor: Actor,
): ObjectPlan | undefined {
  const properties = new Set(type.always);
  const relations: PlannedRelation[] = [];
  for (const [key, nodes] of fields) {
    const name = nodes[0].name.value;
    if (name === "__typename") continue;
    const field = type.fields[name];
    if (!field) return undefined;
    for (const property of field.needs) properties.add(property);
    const child = field.relation && planRelation(key, field.relation, graphqlType, nodes, info, actor);
    if (child) relations.push(child);
  }
  return { type, properties: [...properties], relations };
}

function planRelation(
  key: string,
  relation: Relation,
  graphqlType: GraphQLObjectType,
  nodes: readonly FieldNode[],
  info: GraphQLResolveInfo,
  actor: Actor,
): PlannedRelation | undefined {
  const selected = subfields(graphqlType, nodes, info);
  if (!selected) return undefined;
  const prepared = relation.prepare ? relation.prepare(selected.args, actor) : null;
  if (prepared === undefined) return undefined;
  const childType = relation.type();
  const nodeType = selected.nodeType;
  if (!isObjectType(nodeType) || nodeType.name !== childType.name) return undefined;
  const child = planObject(childType, nodeType, selected.fields, info, actor);
  return child && { key, relation, child, prepared };
}

/**
 * The plan of a root field's selection when its (node) type is `type`'s, with `extra` properties the entry point
 * reads itself (a page's cursor columns), or undefined when it cannot be planned.
 */
export function planRoot(
  type: TypePlan,
  info: GraphQLResolveInfo,
  actor: Actor,
  extra: readonly string[] = [],
): { plan: ObjectPlan; selected: Selected } | undefined {
  const selected = subfields(info.parentType, info.fieldNodes, info);
  if (!selected || !isObjectType(selected.nodeType) || selected.nodeType.name !== type.name) return undefined;
  const plan = planObject(type, selected.nodeType, selected.fields, info, actor);
  if (!plan) return undefined;
  for (const property of extra) if (!plan.properties.includes(property)) plan.properties.push(property);
  return { plan, selected };
}

/** Column specs by property, named in SQL as knex's name mapping names them (knex-config.ts). */
export function columnsOf(kinds: Record<string, ColumnKind>): Record<string, Column> {
  const names = Object.keys(toColumns(kinds)); // the mapper keeps the keys' order
  return Object.fromEntries(Object.entries(kinds).map(([property, kind], i) => [property, { name: names[i], kind }]));
}

/** Fields that are one column each, of the same name. */
export function columnFields(properties: readonly string[]): Record<string, FieldPlan> {
  return Object.fromEntries(properties.map((property) => [property, { needs: [property] }]));
}

/** Appends the JSON array expression of one row of `plan` over table alias `alias`. */
export function rowSql(q: SqlText, plan: ObjectPlan, alias: string): void {
  q.text("json_build_array(");
  plan.properties.forEach((property, index) => {
    if (index > 0) q.text(", ");
    const column = plan.type.columns[property];
    if (column.kind === "date") q.text(`floor(extract(epoch from ${alias}.${column.name}) * 1000)`);
    else q.text(`${alias}.${column.name}`);
  });
  for (const { relation, child, prepared } of plan.relations) {
    q.text(", ");
    const childAlias = q.alias();
    relation.sql(q, { alias: childAlias, parent: alias, prepared, row: (inner) => rowSql(inner, child, childAlias) });
  }
  q.text(")");
}

/** The row of `plan` from its JSON array (null stays null). */
export function decodeRow(plan: ObjectPlan, values: unknown[] | null): Planned | null {
  if (values === null) return null;
  const row: Planned = {};
  const { properties, type } = plan;
  for (let i = 0; i < properties.length; i++) {
    const value = values[i];
    const kind = type.columns[properties[i]].kind;
    row[properties[i]] = value === null || kind === "plain" ? value : kind === "date" ? new Date(value as number) : Buffer.from((value as string).slice(2), "hex");
  }
  const planned: Record<string, unknown> = {};
  for (let r = 0; r < plan.relations.length; r++) {
    const { key, relation, child, prepared } = plan.relations[r];
    const raw = values[properties.length + r];
    const decoded = relation.many ? (raw as unknown[][]).map((item) => decodeRow(child, item)) : decodeRow(child, raw as unknown[] | null);
    planned[key] = relation.value ? relation.value(decoded, prepared, row) : decoded;
  }
  row[PLANNED] = planned;
  return row;
}

/**
 * A relation field's resolver: the planned value when its parent row was planned with it, else `fallback`
 * (the field's own resolver, with its DataLoaders).
 */
export function plannedOr<A>(fallback: (root: any, args: A, ctx: Actor, info: GraphQLResolveInfo) => unknown) {
  return (root: Planned, args: A, ctx: Actor, info: GraphQLResolveInfo): unknown => {
    const planned = root[PLANNED];
    if (planned !== undefined) {
      const value = planned[info.path.key];
      if (value !== undefined) return value;
    }
    return fallback(root, args, ctx, info);
  };
}

/** Runs a planned statement (prepared on PostgreSQL: its text depends only on the selection's shape). */
export async function runPlanned(actor: Actor, q: SqlText): Promise<Record<string, unknown>[]> {
  const result: { rows: Record<string, unknown>[] } = await prepared(actor.db.knex.raw(q.toString(), q.bindings));
  return result.rows;
}

/**
 * The request's batch for root fields whose statement starts with `q` (same text and bindings so far): the
 * first caller's `load` runs for the keys of all of them, in one statement. Each caller decodes the raw rows
 * with its own plan: the same text selects the same columns in the same places (response keys may differ).
 */
export function plannedBatch<K, V>(actor: Actor, q: SqlText, load: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V> {
  const shape = `${q.toString()}\u0000${JSON.stringify(q.bindings)}`;
  let batch = actor.loaders.plannedRoots.get(shape) as DataLoader<K, V> | undefined;
  if (!batch) actor.loaders.plannedRoots.set(shape, (batch = new DataLoader<K, V>(load)));
  return batch;
}
