/**
 * Reading a related row in the same statement as its parent (a join) instead of a second round trip: the
 * related table's columns are selected under a prefix (`"author.display_name"`, which knex's name mapping turns
 * into `author.displayName`) and split off the result row again, so they come back with exactly the types the
 * pg driver gives a plain `select *` of that table (dates, numerics, bytea), and the model is built from them
 * as from any other row.
 *
 * Round trips are what an operation's time goes into here (bench/results), so the hot paths use this where a
 * relation is almost always asked for together with its parent: a history page with its authors, an inbox page
 * with its last messages. DataLoader stays for everything else.
 */
import type { Knex } from "knex";
import type { ModelClass, Model } from "objection";

/**
 * The table's columns (property names), read once per process and model: objection caches the metadata. The
 * server reads them at start (prepareEmbedding), so no request pays that statement.
 */
async function columnsOf(knex: Knex, model: ModelClass<Model>): Promise<string[]> {
  const { columns } = await model.fetchTableMetadata({ knex });
  if (columns.length === 0) throw new Error(`table ${model.tableName} has no columns: are the migrations applied?`);
  return columns;
}

/** Reads the columns of every model that is embedded somewhere; call once the migrations are applied. */
export async function prepareEmbedding(knex: Knex, models: ModelClass<Model>[]): Promise<void> {
  await Promise.all(models.map((model) => columnsOf(knex, model)));
}

/** The select list of `alias`'s row (a `model` row), column by column (see prepared.ts on why not `*`). */
export async function plainColumns(knex: Knex, model: ModelClass<Model>, alias: string): Promise<Knex.Raw[]> {
  return (await columnsOf(knex, model)).map((column) => knex.raw("??", [`${alias}.${column}`]));
}

/**
 * The select list of `alias`'s row (a `model` row) under `prefix`. With `oncePer` (an expression), a row that
 * the join repeats for every row of the same `oncePer` is filled in on only one of them, and is null on the
 * others: they then cost nothing to send or to parse.
 */
export async function embeddedColumns(knex: Knex, model: ModelClass<Model>, alias: string, prefix: string, oncePer?: string): Promise<Knex.Raw[]> {
  return (await columnsOf(knex, model)).map((column) =>
    oncePer
      ? knex.raw(`case when row_number() over (partition by ${oncePer}) = 1 then ?? end as "${prefix}.${column}"`, [`${alias}.${column}`])
      : knex.raw(`?? as "${prefix}.${column}"`, [`${alias}.${column}`]),
  );
}

export type RowSplit = { base: Record<string, unknown>; embedded: Map<string, Record<string, unknown>> };

/**
 * For the rows of one result (they share `keys`): splits a row into its own columns (`base`) and the embedded
 * rows by prefix, leaving out an embedded row whose id is null (the join found nothing, or `oncePer` left it
 * out). The key layout is worked out once per result, and the objects are fresh: deleting keys from the row
 * instead would turn it into a slow dictionary-mode object right before the model is built from it.
 */
export function rowSplitter(keys: string[]): (row: Record<string, unknown>) => RowSplit {
  const baseKeys = keys.filter((key) => !key.includes("."));
  const parts = new Map<string, { source: string[]; target: string[]; id: string }>();
  for (const key of keys) {
    const dot = key.indexOf(".");
    if (dot < 0) continue;
    const prefix = key.slice(0, dot);
    const part = parts.get(prefix) ?? { source: [], target: [], id: `${prefix}.id` };
    parts.set(prefix, part);
    part.source.push(key);
    part.target.push(key.slice(dot + 1));
  }
  const layout = [...parts];
  return (row) => {
    const base: Record<string, unknown> = {};
    for (const key of baseKeys) base[key] = row[key];
    const embedded = new Map<string, Record<string, unknown>>();
    for (const [prefix, { source, target, id }] of layout) {
      if (row[id] == null) continue;
      const part: Record<string, unknown> = {};
      for (let i = 0; i < source.length; i++) part[target[i]] = row[source[i]];
      embedded.set(prefix, part);
    }
    return { base, embedded };
  };
}
