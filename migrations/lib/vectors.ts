/**
 * The pgvector part of the knowledge tables, kept apart because the extension may be missing: PGlite bundles it,
 * but a PostgreSQL server has it only when the operator installed it. Without it the migration still succeeds
 * (the tables exist without their vector columns, and the knowledge features that need vectors refuse with an
 * error naming the extension); once it is installed, `npm run cli -- enable-vectors` runs enableVectors again.
 *
 * Frozen like columns.ts once released: a later change to the vector columns gets a new migration.
 */
import type { Knex } from "knex";

export type VectorSetup = { enabled: true } | { enabled: false; reason: string };

/** Is `create extension vector` done in this database? */
export async function hasVectorExtension(knex: Knex): Promise<boolean> {
  const { rows } = await knex.raw("select exists (select 1 from pg_extension where extname = 'vector') as present");
  return rows[0].present === true;
}

/**
 * Creates the extension if it can, then the vector columns if they are missing. Must run inside a transaction
 * (a migration's, or the caller's): a refused `create extension` is rolled back to a savepoint, so it does not
 * abort the rest.
 */
export async function enableVectors(knex: Knex): Promise<VectorSetup> {
  if (!(await hasVectorExtension(knex))) {
    const { rows } = await knex.raw("select exists (select 1 from pg_available_extensions where name = 'vector') as available");
    if (!rows[0].available) return { enabled: false, reason: "the extension is not installed on the database server" };
    await knex.raw("savepoint parley_vector");
    try {
      await knex.raw("create extension if not exists vector");
      await knex.raw("release savepoint parley_vector");
    } catch (error) {
      await knex.raw("rollback to savepoint parley_vector");
      return { enabled: false, reason: `create extension vector failed: ${(error as Error).message.split("\n").pop()}` };
    }
  }
  // vector without a fixed dimension: each knowledge base declares its own. `dimensions` repeats the length so
  // that a partial HNSW index per dimension can name it (see knowledge/vector-index.ts).
  await knex.raw("alter table document_chunks add column if not exists embedding vector");
  await knex.raw("alter table query_cache add column if not exists question_embedding vector");
  for (const [table, column] of [["document_chunks", "embedding"], ["query_cache", "question_embedding"]]) {
    await knex.raw(`alter table ${table} drop constraint if exists ${table}_${column}_dimensions_check`);
    await knex.raw(`alter table ${table} add constraint ${table}_${column}_dimensions_check
      check ((${column} is null and dimensions is null) or vector_dims(${column}) = dimensions)`);
  }
  return { enabled: true };
}
