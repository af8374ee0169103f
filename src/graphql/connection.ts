/**
 * Relay cursor connections with keyset paging. Cursors are opaque to clients (base64url of a small JSON
 * array of sort keys); decoding checks their shape, so a forged cursor is BAD_USER_INPUT, never SQL.
 */
import { ArgsType, Field, Int, ObjectType, type ClassType } from "type-graphql";
import { UUID_PATTERN } from "./scalars/uuid";
import { BadUserInputError } from "./errors";

@ObjectType({ simpleResolvers: true })
export class PageInfo {
  @Field()
  hasNextPage: boolean;

  @Field()
  hasPreviousPage: boolean;

  @Field(() => String, { nullable: true })
  startCursor: string | null;

  @Field(() => String, { nullable: true })
  endCursor: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface ConnectionShape<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  /** Resolved only when the client asks for it (a getter), so an unused count costs nothing. */
  totalCount: number | Promise<number>;
}

/** Declares `<Name>Connection` and `<Name>Edge` object types for a node type. */
export function ConnectionType<T extends object>(node: ClassType<T>, name = node.name) {
  @ObjectType(`${name}Edge`, { simpleResolvers: true })
  class EdgeType {
    @Field()
    cursor: string;

    @Field(() => node)
    node: T;
  }

  @ObjectType(`${name}Connection`, { simpleResolvers: true })
  class Connection implements ConnectionShape<T> {
    @Field(() => [EdgeType])
    edges: Edge<T>[];

    @Field(() => PageInfo)
    pageInfo: PageInfo;

    // A resolver of its own (not simple): the value may be a promise, which graphql-jit awaits only there.
    @Field(() => Int, { simple: false })
    totalCount: number | Promise<number>;
  }
  return Connection;
}

@ArgsType()
export class ConnectionArgs {
  @Field(() => Int, { nullable: true, description: "Page forwards: at most this many items after `after`" })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => Int, { nullable: true, description: "Page backwards: at most this many items before `before`, in order" })
  last?: number | null;

  @Field(() => String, { nullable: true })
  before?: string | null;
}

export interface PageRequest {
  /** forward: ascending from `cursor` (exclusive); backward: descending from `cursor`, reversed on output. */
  direction: "forward" | "backward";
  limit: number;
  cursor: unknown[] | undefined;
}

export interface PageLimits {
  defaultPageSize: number;
  maxPageSize: number;
}

/** Validates first/after/last/before; `defaultDirection` applies when neither first nor last is given. */
export function pageRequest(args: ConnectionArgs, limits: PageLimits, defaultDirection: "forward" | "backward" = "forward"): PageRequest {
  const { first, after, last, before } = args;
  if (first != null && last != null) throw new BadUserInputError("Pass either `first` or `last`, not both");
  if (after != null && before != null) throw new BadUserInputError("Pass either `after` or `before`, not both");
  if ((first != null && before != null) || (last != null && after != null)) {
    throw new BadUserInputError("`first` pages with `after`; `last` pages with `before`");
  }
  const size = first ?? last ?? limits.defaultPageSize;
  if (!Number.isInteger(size) || size < 0 || size > limits.maxPageSize) {
    throw new BadUserInputError(`Page size must be between 0 and ${limits.maxPageSize}`, { maxPageSize: limits.maxPageSize });
  }
  let direction = defaultDirection;
  if (first != null || after != null) direction = "forward";
  if (last != null || before != null) direction = "backward";
  const raw = after ?? before;
  return { direction, limit: size, cursor: raw == null ? undefined : decodeCursor(raw) };
}

export function encodeCursor(keys: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(keys)).toString("base64url");
}

export function decodeCursor(cursor: string): unknown[] {
  try {
    if (cursor.length > 512) throw new Error("too long");
    const keys: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(keys) && keys.length > 0) return keys;
  } catch {
    // fall through to the error below
  }
  throw new BadUserInputError("Invalid cursor");
}

/** An edge whose cursor is encoded only if asked for (a history page of 50 rarely asks for 50 cursors). */
class LazyEdge<T> implements Edge<T> {
  constructor(
    public node: T,
    private readonly cursorOf: (row: T) => unknown[],
  ) {}

  get cursor(): string {
    return encodeCursor(this.cursorOf(this.node));
  }
}

/**
 * Builds a connection from rows fetched with limit + 1 in the page's own direction: the extra row only
 * tells whether there is a next (forward) or previous (backward) page.
 */
export function toConnection<T>(
  rows: T[],
  page: PageRequest,
  cursorOf: (row: T) => unknown[],
  totalCount: () => Promise<number> | number,
): ConnectionShape<T> {
  const hasMore = rows.length > page.limit;
  const slice = hasMore ? rows.slice(0, page.limit) : rows;
  if (page.direction === "backward") slice.reverse();
  const edges = slice.map((node) => new LazyEdge(node, cursorOf));
  // An item at the given cursor existed when the cursor was made, so there is a page on that side.
  const pageInfo: PageInfo = {
    hasNextPage: page.direction === "forward" ? hasMore : page.cursor !== undefined,
    hasPreviousPage: page.direction === "backward" ? hasMore : page.cursor !== undefined,
    startCursor: edges[0]?.cursor ?? null,
    endCursor: edges[edges.length - 1]?.cursor ?? null,
  };
  let count: Promise<number> | number | undefined;
  return {
    edges,
    pageInfo,
    get totalCount() {
      return (count ??= totalCount());
    },
  };
}

/**
 * The same connection with each node read through `read` (rows fetched with extra columns, shown as another
 * type); the cursors stay those of the rows, and totalCount stays lazy (a spread would run its query).
 */
export function mapNodes<T, U>(connection: ConnectionShape<T>, read: (node: T) => U): ConnectionShape<U> {
  return {
    edges: connection.edges.map((edge) => ({ cursor: edge.cursor, node: read(edge.node) })),
    pageInfo: connection.pageInfo,
    get totalCount() {
      return connection.totalCount;
    },
  };
}

/** Reads a cursor key as a number, or BAD_USER_INPUT. */
export function cursorNumber(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new BadUserInputError("Invalid cursor");
  return value;
}

/** Reads a cursor key as a string, or BAD_USER_INPUT. */
export function cursorString(value: unknown, pattern?: RegExp): string {
  if (typeof value !== "string" || (pattern && !pattern.test(value))) throw new BadUserInputError("Invalid cursor");
  return value;
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A query builder that can be ordered, bounded, limited and counted (an Objection QueryBuilder). */
interface PageableQuery<T> extends PromiseLike<T[]> {
  orderBy(columns: { column: string; order: "asc" | "desc" }[]): this;
  whereRaw(sql: string, bindings: readonly unknown[]): this;
  limit(count: number): this;
  resultSize(): Promise<number>;
}

/**
 * Newest first by (time, id), keyset only: `filtered` builds the filtered query afresh each time it is
 * called (once for the page, once more only if totalCount is asked for). `timeColumn` is the camelCase
 * property, `timeSql` its column name for the row comparison. When the page query joins other tables, `table`
 * qualifies the columns and `counted` builds the query that totalCount counts (without the joins).
 */
export async function newestFirstPage<T extends { id: string }>(
  filtered: () => PageableQuery<T>,
  page: PageRequest,
  timeColumn: keyof T & string,
  timeSql: string,
  { table, counted = filtered }: { table?: string; counted?: () => PageableQuery<T> } = {},
): Promise<ConnectionShape<T>> {
  const column = (name: string) => (table ? `${table}.${name}` : name);
  const forward = page.direction === "forward";
  const order = forward ? "desc" : "asc";
  const query = filtered()
    .orderBy([
      { column: column(timeColumn), order },
      { column: column("id"), order },
    ])
    .limit(page.limit + 1);
  const after = newestFirstAfter(page, column(timeSql), column("id"));
  if (after) query.whereRaw(after.sql, after.bindings);
  const rows = await query; // limit + 1 rows even for `first: 0`, so hasNextPage is still true when rows exist
  return toConnection(rows, page, newestFirstCursorOf(timeColumn), () => counted().resultSize());
}

/**
 * The condition of a newest-first page that continues from its cursor, over the SQL expressions of the time and
 * id columns; undefined for the first page, BAD_USER_INPUT for a cursor that is not one of ours.
 */
export function newestFirstAfter(page: PageRequest, time: string, id: string): { sql: string; bindings: [Date, string] } | undefined {
  if (!page.cursor) return undefined;
  const [at, cursorId] = page.cursor;
  const from = new Date(cursorString(at, ISO_MS));
  if (Number.isNaN(from.getTime())) throw new BadUserInputError("Invalid cursor"); // well-formed, but month 13 and such
  return { sql: `(${time}, ${id}) ${page.direction === "forward" ? "<" : ">"} (?, ?)`, bindings: [from, cursorString(cursorId, UUID_PATTERN)] };
}

/** The cursor keys of a row of a newest-first page. */
export const newestFirstCursorOf =
  <T extends { id: string }>(timeColumn: keyof T & string) =>
  (row: T): unknown[] => [(row[timeColumn] as Date).toISOString(), row.id];
