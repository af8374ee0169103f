/**
 * Embeddings as pgvector sees them: the check that the extension is there (FEATURE_UNAVAILABLE naming it when it
 * is not), the check of a vector against its knowledge base's dimensions, and the SQL literal of a vector.
 */
import type { Knex } from "knex";
import { hasVectorExtension } from "../../../migrations/lib/vectors";
import { BadUserInputError, FeatureUnavailableError } from "../../graphql/errors";
import type { KnowledgeBaseRow } from "./scope";

/** pgvector's HNSW index takes vectors of at most this many dimensions. */
export const MAX_DIMENSIONS = 2000;

/** Per database handle: the extension does not come and go while a server runs (enable-vectors is an operator's step). */
const known = new WeakMap<Knex, Promise<boolean>>();

/** Does this database have pgvector and the vector columns? Asked once per knex instance. */
export function vectorsEnabled(knex: Knex): Promise<boolean> {
  let answer = known.get(knex);
  if (!answer) {
    answer = (async () => {
      if (!(await hasVectorExtension(knex))) return false;
      const { rows } = await knex.raw("select 1 from information_schema.columns where table_name = 'document_chunks' and column_name = 'embedding'");
      return rows.length > 0;
    })();
    // A failed check (the database away) is asked again next time.
    answer.catch(() => known.delete(knex));
    known.set(knex, answer);
  }
  return answer;
}

/** Throws FEATURE_UNAVAILABLE (missing: "vector") unless the database can store and search vectors. */
export async function assertVectorsEnabled(knex: Knex): Promise<void> {
  if (await vectorsEnabled(knex)) return;
  throw new FeatureUnavailableError(
    'Embeddings need the PostgreSQL extension "vector" (pgvector), which this database does not have: install pgvector on the database server, then run `npm run cli -- enable-vectors`. Full-text search works without it.',
    "vector",
  );
}

/**
 * Checks one embedding: finite numbers, at most MAX_DIMENSIONS, and as many as the knowledge base's vectors
 * have (when it has any yet). `field` names the input in the error.
 */
export function checkEmbedding(embedding: readonly number[], base: Pick<KnowledgeBaseRow, "dimensions"> | undefined, field: string): void {
  if (embedding.length === 0 || embedding.length > MAX_DIMENSIONS) {
    throw new BadUserInputError(`An embedding has 1 to ${MAX_DIMENSIONS} dimensions; this one has ${embedding.length}`, { field });
  }
  if (!embedding.every(Number.isFinite)) throw new BadUserInputError("An embedding holds finite numbers only", { field });
  if (embedding.every((x) => x === 0)) throw new BadUserInputError("An embedding of zeros has no direction: cosine similarity is undefined for it", { field });
  if (base?.dimensions && embedding.length !== base.dimensions) {
    throw new BadUserInputError(`This knowledge base holds ${base.dimensions}-dimensional embeddings; this one has ${embedding.length}`, {
      field,
      expectedDimensions: base.dimensions,
      dimensions: embedding.length,
    });
  }
}

/**
 * Records the embedding's dimensions (and model) on a knowledge base that has none yet, then checks the
 * embedding and model against what the base holds: the first vectors of a base, a document's or a cached
 * answer's, set them. Concurrent first writers meet on the base's row: the first sets the dimensions, the others
 * update nothing (`dimensions is null` no longer holds), read the winner's and are checked against them.
 */
export async function settleEmbedding(
  trx: Knex,
  base: KnowledgeBaseRow,
  embedding: readonly number[],
  model: string | null,
  field: string,
): Promise<KnowledgeBaseRow> {
  let current = base;
  if (base.dimensions == null) {
    await trx("knowledge_bases")
      .where({ id: base.id })
      .whereNull("dimensions")
      .update({ dimensions: embedding.length, embeddingModel: trx.raw("coalesce(embedding_model, ?)", [model]) });
    current = { ...base, ...(await trx("knowledge_bases").where({ id: base.id }).first("dimensions", "embeddingModel")) };
  }
  checkEmbedding(embedding, current, field);
  if (model && current.embeddingModel && model !== current.embeddingModel) {
    throw new BadUserInputError(`This knowledge base holds embeddings of ${current.embeddingModel}, not ${model}: vectors of two models do not compare`, {
      field: "embeddingModel",
      expectedModel: current.embeddingModel,
    });
  }
  return current;
}

/** pgvector's text form of a vector, to bind as a parameter and cast with ::vector. */
export function vectorLiteral(embedding: readonly number[]): string {
  return `[${embedding.join(",")}]`;
}
