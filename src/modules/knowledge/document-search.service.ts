/**
 * searchDocuments: hybrid search over the chunks of the knowledge bases the viewer may read. Full text
 * (websearch_to_tsquery against each chunk's tsvector, ranked by ts_rank_cd) and vector similarity (cosine,
 * through the HNSW index of the query's dimension count) each give a ranked candidate list; reciprocal rank
 * fusion (score = Σ 1/(60 + rank), as in Cormack et al. and the hybrid search of Open WebUI or Elastic) merges
 * them without having to make a text rank and a cosine comparable. Either part may be left out.
 *
 * One statement: the candidates, their fusion, the chunks, their documents and the highlights. With a vector
 * part it runs in a transaction whose settings let the index walk on past rows the filters drop
 * (hnsw.iterative_scan), so a narrow filter still fills the page.
 */
import type { Knex } from "knex";
import { snakeCaseMappers } from "objection";
import type { Actor } from "../actor";
import { BadUserInputError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { Document, DocumentSearchHit } from "./document.model";
import type { SearchDocumentsArgs } from "./document.input";
import { checkLanguage, documentConditions, searchedBases } from "./document.service";
import { assertVectorsEnabled, checkEmbedding, vectorLiteral } from "./vectors";
import { indexedEmbedding } from "./vector-index";
import { htmlEscaped } from "../search/message-search.service";

/** The k of reciprocal rank fusion: damps the weight of the very first ranks (60 is the usual choice). */
const RRF_K = 60;
const MAX_QUERY_LENGTH = 1000;

/** How many candidates each ranking contributes: enough that fusion can lift a chunk both rankings liked. */
function candidatesFor(first: number): number {
  return Math.min(Math.max(first * 5, 50), 500);
}

export async function searchDocuments(actor: Actor, args: SearchDocumentsArgs): Promise<DocumentSearchHit[]> {
  const knex = actor.db.knex;
  const first = args.first ?? 10;
  if (first < 1 || first > actor.config.maxPageSize) throw new BadUserInputError(`first must be 1 to ${actor.config.maxPageSize}`, { field: "first" });
  const text = args.query?.trim() || null;
  if (text) {
    checkText(text, "query");
    if (text.length > MAX_QUERY_LENGTH) throw new BadUserInputError(`query is at most ${MAX_QUERY_LENGTH} characters`, { field: "query" });
  }
  const embedding = args.embedding ?? null;
  if (!text && !embedding) throw new BadUserInputError("Give a query, an embedding, or both", { field: "query" });
  const language = await checkLanguage(knex, args.language ?? actor.config.knowledge.searchLanguage, "language");
  const bases = await searchedBases(actor, args.filter?.scope);
  if (embedding) {
    await assertVectorsEnabled(knex);
    // A scope named in the filter must hold vectors like this one; across every readable scope, the ones that do are searched.
    checkEmbedding(embedding, args.filter?.scope ? bases[0] : undefined, "embedding");
  }
  if (text && !(await hasWords(knex, language, text))) {
    throw new BadUserInputError("The query has no searchable words (only stop words or punctuation): add a word, or search by embedding", { field: "query" });
  }
  if (bases.length === 0) return [];

  const candidates = candidatesFor(first);
  const ids = bases.map((base) => base.id);
  const vectorBases = embedding ? bases.filter((base) => base.dimensions === embedding.length).map((base) => base.id) : [];
  const parts: string[] = [];
  const bindings: unknown[] = [];
  const conditions = documentConditions(args.filter, "fd");
  const docClause = conditions.sql ? `and exists (select 1 from documents fd where fd.id = c.document_id and ${conditions.sql})` : "";
  const vectorPart = Boolean(embedding && vectorBases.length);
  if (!text && !vectorPart) return []; // no readable scope holds vectors of this dimension count

  if (text) {
    parts.push(`q as (select websearch_to_tsquery(?::regconfig, ?) as query)`);
    bindings.push(language, text);
    parts.push(`text_hits as (
      select c.id, ts_rank_cd(c.search_vector, q.query, 32) as text_rank,
             row_number() over (order by ts_rank_cd(c.search_vector, q.query, 32) desc, c.id) as text_position
        from document_chunks c, q
       where c.knowledge_base_id = any(?::uuid[]) and c.search_vector @@ q.query ${docClause}
       order by text_rank desc, c.id limit ?)`);
    bindings.push(ids, ...conditions.bindings, candidates);
  }
  if (vectorPart) {
    const dims = embedding!.length;
    // exact: the plain column, which no index covers, so every vector of the scopes is compared.
    const distance = args.exact ? `(c.embedding <=> ?::vector)` : `${indexedEmbedding("c", dims)} <=> ?::vector(${dims})`;
    parts.push(`vector_candidates as materialized (
      select c.id, ${distance} as distance
        from document_chunks c
       where c.dimensions = ${dims} and c.knowledge_base_id = any(?::uuid[]) ${docClause}
       order by ${distance} limit ?)`);
    bindings.push(vectorLiteral(embedding!), vectorBases, ...conditions.bindings, vectorLiteral(embedding!), candidates);
    parts.push(`vector_hits as (
      select id, 1 - distance as similarity, row_number() over (order by distance, id) as vector_position from vector_candidates)`);
  }
  const textScore = `coalesce(1.0 / (${RRF_K} + t.text_position), 0)`;
  const vectorScore = `coalesce(1.0 / (${RRF_K} + v.vector_position), 0)`;
  const fused =
    text && vectorPart
      ? `select coalesce(t.id, v.id) as id, t.text_rank, t.text_position, v.similarity, v.vector_position, ${textScore} + ${vectorScore} as score
           from text_hits t full join vector_hits v on v.id = t.id`
      : text
        ? `select t.id, t.text_rank, t.text_position, null::float8 as similarity, null::bigint as vector_position, ${textScore} as score from text_hits t`
        : `select v.id, null::float4 as text_rank, null::bigint as text_position, v.similarity, v.vector_position, ${vectorScore} as score from vector_hits v`;
  const sql = `with ${parts.join(",\n")},
    fused as (${fused} order by score desc, id limit ?)
    select f.score::float8 as score, f.text_rank::float8 as text_rank, f.text_position::int as text_position,
           f.similarity::float8 as similarity, f.vector_position::int as vector_position,
           ${text ? `ts_headline(d.language::regconfig, ${htmlEscaped("c.content")}, (select query from q), 'StartSel=<b>, StopSel=</b>, MaxFragments=2, MaxWords=30, MinWords=8, FragmentDelimiter=\" … \"')` : "null"} as highlight,
           c.id as chunk_id, c.position, c.content, c.char_start, c.char_end, c.dimensions is not null as has_embedding,
           d.*, kb.scope, kb.guild_id as kb_guild_id, kb.user_id as kb_user_id
      from fused f
      join document_chunks c on c.id = f.id
      join documents d on d.id = c.document_id
      join knowledge_bases kb on kb.id = d.knowledge_base_id
     order by f.score desc, f.id`;
  const all = [...bindings, first];
  const run = async (conn: Knex) => (await conn.raw(sql, all as Knex.RawBinding[])).rows as Record<string, unknown>[];
  const rows = vectorPart && !args.exact ? await knex.transaction(async (trx) => {
    // Filters applied after the index scan would otherwise leave the page short: scan on until it is full.
    await trx.raw(`set local hnsw.iterative_scan = relaxed_order`);
    await trx.raw(`set local hnsw.ef_search = ${Math.min(Math.max(candidates, 40), 1000)}`);
    return run(trx);
  }) : await run(knex);
  return rows.map(toHit);
}

/** Does the text parse into a tsquery with at least one word (stop words and punctuation alone give none)? */
async function hasWords(knex: Knex, language: string, text: string): Promise<boolean> {
  const { rows } = await knex.raw("select numnode(websearch_to_tsquery(?::regconfig, ?)) > 0 as ok", [language, text]);
  return rows[0].ok === true;
}

/** A raw result keeps the column names (knex maps only what its builder makes): the models' mapping, as budget.service does. */
const fromColumns = snakeCaseMappers().parse;

function toHit(row: Record<string, unknown>): DocumentSearchHit {
  const document = Document.fromJson(
    {
      ...fromColumns(Object.fromEntries(Object.entries(row).filter(([key]) => DOCUMENT_COLUMNS.has(key)))),
      scope: row.scope,
      guildId: row.kb_guild_id,
      userId: row.kb_user_id,
    },
    { skipValidation: true },
  );
  return {
    score: row.score as number,
    textRank: row.text_rank as number | null,
    textPosition: row.text_position as number | null,
    similarity: row.similarity as number | null,
    vectorPosition: row.vector_position as number | null,
    highlight: row.highlight as string | null,
    chunk: {
      id: row.chunk_id as string,
      documentId: row.id as string,
      position: row.position as number,
      content: row.content as string,
      charStart: row.char_start as number | null,
      charEnd: row.char_end as number | null,
      hasEmbedding: row.has_embedding as boolean,
    },
    document,
  };
}

const DOCUMENT_COLUMNS = new Set([
  "id",
  "knowledge_base_id",
  "external_id",
  "title",
  "source_url",
  "tags",
  "metadata",
  "language",
  "size_bytes",
  "content_sha256",
  "chunk_count",
  "embedding_model",
  "created_by",
  "updated_by",
  "created_at",
  "updated_at",
]);
