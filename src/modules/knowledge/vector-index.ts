/**
 * HNSW indexes for the chunks' vectors, one per dimension count. The embedding column has no fixed dimension
 * (each knowledge base declares its own), and pgvector indexes only vectors of one: so each dimension count
 * in use gets a partial expression index, `(embedding::vector(N)) where dimensions = N`, made when the first
 * knowledge base declares N. A search names the same expression and predicate, so the planner can use it.
 */
import type { Knex } from "knex";
import { MAX_DIMENSIONS } from "./vectors";

/** The indexed expression for `dimensions`; queries must spell it the same way. */
export function indexedEmbedding(alias: string, dimensions: number): string {
  return `(${alias}.embedding::vector(${checkedDimensions(dimensions)}))`;
}

function checkedDimensions(dimensions: number): number {
  // Spliced into SQL: an integer in range only.
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_DIMENSIONS) throw new Error(`bad dimensions ${dimensions}`);
  return dimensions;
}

const made = new WeakMap<Knex, Set<number>>();

/**
 * Makes the index for `dimensions` unless it exists. On an empty set of rows (a knowledge base's first
 * vectors) it is made at once; it then grows with every insert.
 */
export async function ensureVectorIndex(knex: Knex, dimensions: number): Promise<void> {
  const known = made.get(knex) ?? new Set<number>();
  made.set(knex, known);
  if (known.has(checkedDimensions(dimensions))) return;
  const name = `document_chunks_embedding_${dimensions}_index`;
  try {
    await knex.raw(
      `create index if not exists ${name} on document_chunks using hnsw ((embedding::vector(${dimensions})) vector_cosine_ops) where dimensions = ${dimensions}`,
    );
  } catch (error) {
    // Two servers making it at once: the loser's insert into the catalog collides; the index is there all the same.
    const { rows } = await knex.raw("select 1 from pg_indexes where indexname = ?", [name]);
    if (rows.length === 0) throw error;
  }
  known.add(dimensions);
}
