/**
 * The answer cache: a RAG bot asks cachedAnswer before it calls a model, and storeAnswer after, so the same
 * question (once normalized, or close enough by embedding) in the same knowledge scope is answered from here
 * until the entry expires or one of its source documents changes.
 *
 * Entries hang off their scope's knowledge base and follow its access rules (scope.ts): reading the cache
 * needs read access to the scope, storing, deleting and clearing need write access. An expired entry is
 * never served; AnswerCacheSweeper (answer-cache.sweeper.ts) deletes it later.
 *
 * Invalidation is explicit: the foreign key of query_cache_sources only removes the source rows of a deleted
 * document, which would leave its answers in place with fewer sources. The document service calls
 * invalidateAnswers in its own transaction instead. Source documents are locked FOR SHARE while an answer is
 * stored and FOR NO KEY UPDATE while answers are invalidated, so an answer stored concurrently with a change
 * of its source is either seen by the invalidation or waits until the change committed.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText, trimmedText } from "../../graphql/json-input";
import { audit } from "../audit/audit.service";
import {
  assertScopeAccess,
  ensureKnowledgeBase,
  findKnowledgeBase,
  readableBases,
  scopeOf,
  scopeOfBase,
  type KnowledgeBaseRow,
  type KnowledgeScopeInput,
  type Scope,
} from "./scope";
import { assertVectorsEnabled, checkEmbedding, settleEmbedding, vectorLiteral, vectorsEnabled } from "./vectors";
import { AnswerMatch, CachedAnswer, CachedAnswerHit } from "./answer-cache.types";
import type { CachedAnswerArgs, StoreAnswerInput } from "./answer-cache.input";

export const MAX_QUESTION_LENGTH = 10_000;
export const MAX_ANSWER_LENGTH = 200_000;
/** A year: longer-lived answers outlast the documents they quote more often than not. */
export const MAX_TTL_SECONDS = 365 * 86_400;
export const MAX_SOURCES = 100;

/**
 * The form two questions must share to be the same question: NFKC (full-width and compatibility forms fold),
 * lower case, runs of whitespace as one space, no surrounding spaces and no trailing ?, ! or . — so
 * "What is Parley?" and "  what is parley " are one entry.
 */
export function normalizeQuestion(question: string): string {
  return question
    .normalize("NFKC")
    .toLowerCase()
    .normalize("NFKC") // lower-casing can leave a combining sequence NFKC composes differently
    .replace(/\s+/gu, " ")
    .trim()
    .replace(/[\s?!.]+$/u, "");
}

/** sha256 (hex) of the normalized question: the key of exact matches. */
export function questionHash(question: string): string {
  return createHash("sha256").update(normalizeQuestion(question), "utf8").digest("hex");
}

function checkedQuestion(value: string): { question: string; hash: string } {
  const question = trimmedText(value, "question", MAX_QUESTION_LENGTH);
  if (!normalizeQuestion(question)) throw new BadUserInputError("question has no words once its trailing punctuation is taken off", { field: "question" });
  return { question, hash: questionHash(question) };
}

function checkedAnswer(answer: string): string {
  const length = [...answer].length;
  if (!answer.trim() || length > MAX_ANSWER_LENGTH) throw new BadUserInputError(`answer must be 1 to ${MAX_ANSWER_LENGTH} characters, not all spaces`, { field: "answer" });
  checkText(answer, "answer");
  return answer;
}

/**
 * The columns of a CachedAnswer from query_cache as `q`, sources included. Raw results keep SQL's column
 * names (the snake-case mappers see only query builders), hence the quoted aliases.
 */
const ENTRY_COLUMNS = `q.id, q.question, q.answer, q.model, q.metadata, q.hit_count as "hitCount", q.last_hit_at as "lastHitAt",
  q.expires_at as "expiresAt", q.created_at as "createdAt",
  array(select s.document_id::text from query_cache_sources s where s.query_cache_id = q.id order by s.document_id) as "sourceDocumentIds"`;

const toEntry = (row: Record<string, unknown>): CachedAnswer => {
  const { similarity: _similarity, ...columns } = row;
  return Object.assign(new CachedAnswer(), columns);
};

const toHit = (row: Record<string, unknown>, match: AnswerMatch, similarity: number | null): CachedAnswerHit =>
  Object.assign(new CachedAnswerHit(), { entry: toEntry(row), match, similarity });

/**
 * Locks the source documents FOR SHARE (sorted, so writers lock in one order), keeping only those in knowledge
 * the viewer may read: NOT_FOUND, the same for an unknown and an unreadable id, for the first missing one.
 * The lock makes a concurrent invalidateAnswers (FOR NO KEY UPDATE) wait for this answer, or this answer for it.
 */
async function lockSources(trx: Knex.Transaction, ids: string[], readable: (query: Knex.QueryBuilder) => void): Promise<void> {
  const found: string[] = await trx("documents as d")
    .join("knowledge_bases as kb", "kb.id", "d.knowledge_base_id")
    .whereIn("d.id", ids)
    .modify(readable)
    .orderBy("d.id")
    .forShare("d")
    .pluck("d.id");
  const missing = ids.find((id) => !found.includes(id));
  if (missing) throw new NotFoundError(`Document ${missing}`);
}

/** Stores (or replaces) the answer to a question in a scope the viewer may write. */
export async function storeAnswer(ctx: Actor, input: StoreAnswerInput): Promise<CachedAnswer> {
  const viewer = viewerOf(ctx);
  const scope = scopeOf(viewer, input.scope);
  await assertScopeAccess(ctx, scope, "write");
  const { question, hash } = checkedQuestion(input.question);
  const answer = checkedAnswer(input.answer);
  const model = input.model == null ? null : trimmedText(input.model, "model", 200);
  const embeddingModel = input.embeddingModel == null ? null : trimmedText(input.embeddingModel, "embeddingModel", 200);
  const metadata = input.metadata ?? {};
  checkJson(metadata, "metadata", "object");
  const ttl = input.ttlSeconds ?? ctx.config.knowledge.answerCacheTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) throw new BadUserInputError(`ttlSeconds must be 1 to ${MAX_TTL_SECONDS}`, { field: "ttlSeconds" });
  const sources = [...new Set(input.sourceDocumentIds ?? [])].sort();
  if (sources.length > MAX_SOURCES) throw new BadUserInputError(`An answer names at most ${MAX_SOURCES} source documents`, { field: "sourceDocumentIds" });
  const embedding = input.embedding ?? undefined;
  if (!embedding && embeddingModel) throw new BadUserInputError("embeddingModel names the model of an embedding: send the embedding too", { field: "embeddingModel" });
  const knex = ctx.db.knex;
  if (embedding) {
    await assertVectorsEnabled(knex);
    checkEmbedding(embedding, undefined, "embedding");
  }
  // Without pgvector the column does not exist, and an answer without an embedding is still stored.
  const vectors = await vectorsEnabled(knex);
  // Before the transaction: it may load the viewer's grants, which on PGlite's one connection would wait forever.
  const readable = sources.length ? await readableBases(ctx, "kb") : undefined;
  return knex.transaction(async (trx) => {
    const base = await ensureKnowledgeBase(trx, scope);
    if (embedding) await settleEmbedding(trx, base, embedding, embeddingModel, "embedding");
    if (readable) await lockSources(trx, sources, readable);
    const { rows } = await trx.raw(
      `insert into query_cache (knowledge_base_id, question, question_hash, answer, model, metadata, dimensions, expires_at, created_by${vectors ? ", question_embedding" : ""})
       values (?, ?, ?, ?, ?, ?::jsonb, ?, now() + ?::integer * interval '1 second', ?${vectors ? ", ?::vector" : ""})
       on conflict (knowledge_base_id, question_hash) do update set question = excluded.question, answer = excluded.answer, model = excluded.model,
         metadata = excluded.metadata, dimensions = excluded.dimensions, expires_at = excluded.expires_at, created_by = excluded.created_by,
         hit_count = 0, last_hit_at = null, created_at = now()${vectors ? ", question_embedding = excluded.question_embedding" : ""}
       returning id`,
      [
        base.id,
        question,
        hash,
        answer,
        model,
        JSON.stringify(metadata),
        embedding?.length ?? null,
        ttl,
        viewer.id,
        ...(vectors ? [embedding ? vectorLiteral(embedding) : null] : []),
      ],
    );
    const id = (rows[0] as { id: string }).id;
    // A replaced answer keeps none of the old one's sources.
    await trx("query_cache_sources").where({ queryCacheId: id }).delete();
    if (sources.length) await trx("query_cache_sources").insert(sources.map((documentId) => ({ queryCacheId: id, documentId })));
    const stored = await trx.raw(`select ${ENTRY_COLUMNS} from query_cache q where q.id = ?`, [id]);
    return toEntry(stored.rows[0]);
  });
}

/**
 * The answer cached for a question in a scope the viewer may read, or null: first the same normalized
 * question, then (with an embedding) the nearest question at or above ANSWER_CACHE_SIMILARITY. Either hit
 * counts in the one UPDATE that finds it, so concurrent hits all count.
 */
export async function cachedAnswer(ctx: Actor, args: CachedAnswerArgs): Promise<CachedAnswerHit | null> {
  const viewer = viewerOf(ctx);
  const scope = scopeOf(viewer, args.scope);
  await assertScopeAccess(ctx, scope, "read");
  const { hash } = checkedQuestion(args.question);
  const knex = ctx.db.knex;
  const embedding = args.embedding ?? undefined;
  if (embedding) {
    await assertVectorsEnabled(knex);
    checkEmbedding(embedding, undefined, "embedding");
  }
  const base = await findKnowledgeBase(knex, scope);
  if (!base) return null;
  if (embedding) checkEmbedding(embedding, base, "embedding");
  const exact = await knex.raw(
    `update query_cache q set hit_count = q.hit_count + 1, last_hit_at = now()
     where q.knowledge_base_id = ? and q.question_hash = ? and q.expires_at > now()
     returning ${ENTRY_COLUMNS}`,
    [base.id, hash],
  );
  if (exact.rows[0]) return toHit(exact.rows[0], AnswerMatch.EXACT, null);
  if (!embedding || base.dimensions == null) return null;
  const vector = vectorLiteral(embedding);
  // An exact scan of the base's entries: `dimensions = ?` keeps <=> from meeting a vector of another length.
  const similar = await knex.raw(
    `with nearest as (
       select id, 1 - (question_embedding <=> ?::vector) as similarity from query_cache
       where knowledge_base_id = ? and dimensions = ? and expires_at > now()
       order by question_embedding <=> ?::vector, id
       limit 1)
     update query_cache q set hit_count = q.hit_count + 1, last_hit_at = now()
     from nearest
     where q.id = nearest.id and nearest.similarity >= ? and q.expires_at > now()
     returning ${ENTRY_COLUMNS}, nearest.similarity`,
    [vector, base.id, embedding.length, vector, ctx.config.knowledge.answerCacheSimilarity],
  );
  const row = similar.rows[0];
  return row ? toHit(row, AnswerMatch.SIMILAR, Number(row.similarity)) : null;
}

/** Whether the viewer may read the scope: false where assertScopeAccess would refuse. */
async function mayRead(ctx: Actor, scope: Scope): Promise<boolean> {
  try {
    await assertScopeAccess(ctx, scope, "read");
    return true;
  } catch (error) {
    if (error instanceof ForbiddenError || error instanceof NotFoundError) return false;
    throw error;
  }
}

/** Deletes one entry: NOT_FOUND unless the viewer may read its scope (no existence leak), FORBIDDEN unless write. */
export async function deleteCachedAnswer(ctx: Actor, id: string): Promise<boolean> {
  viewerOf(ctx);
  const knex = ctx.db.knex;
  const base: KnowledgeBaseRow | undefined = await knex("query_cache as q")
    .join("knowledge_bases as kb", "kb.id", "q.knowledge_base_id")
    .where("q.id", id)
    .first("kb.id", "kb.scope", "kb.guild_id", "kb.user_id");
  if (!base || !(await mayRead(ctx, scopeOfBase(base)))) throw new NotFoundError("Cached answer");
  await assertScopeAccess(ctx, scopeOfBase(base), "write");
  return knex.transaction(async (trx) => {
    const deleted = await trx("query_cache").where({ id }).delete().returning("id");
    if (!deleted.length) throw new NotFoundError("Cached answer"); // deleted meanwhile
    await audit(ctx, { action: "answer_cache.delete", targetType: "query_cache", targetId: id }, trx);
    return true;
  });
}

/** Deletes every entry of a scope the viewer may write, expired or not; returns how many. */
export async function clearAnswerCache(ctx: Actor, input: KnowledgeScopeInput): Promise<number> {
  const scope = scopeOf(viewerOf(ctx), input);
  await assertScopeAccess(ctx, scope, "write");
  const base = await findKnowledgeBase(ctx.db.knex, scope);
  if (!base) return 0;
  return ctx.db.knex.transaction(async (trx) => {
    // Counted from RETURNING: a plain delete's count is not reported alike by the pg and PGlite clients.
    const deleted = (await trx("query_cache").where({ knowledgeBaseId: base.id }).delete().returning("id")).length;
    await audit(ctx, { action: "answer_cache.clear", targetType: "knowledge_base", targetId: base.id, details: { ...scope, deleted } }, trx);
    return deleted;
  });
}

/**
 * Deletes every cached answer built from any of `documentIds`; returns how many. For the document service, in
 * the transaction that changes or deletes the documents, and before it deletes any of them: the delete's
 * cascade takes the source rows this finds the answers by. The documents are locked FOR NO KEY UPDATE (in id
 * order) first, so a storeAnswer naming one of them either committed before (and its answer is deleted here)
 * or waits for this transaction.
 */
export async function invalidateAnswers(trx: Knex, documentIds: readonly string[]): Promise<number> {
  const ids = [...new Set(documentIds)].sort();
  if (!ids.length) return 0;
  await trx.raw("select id from documents where id = any(?::uuid[]) order by id for no key update", [ids]);
  const deleted = await trx("query_cache")
    .whereIn("id", trx("query_cache_sources").select("queryCacheId").whereRaw("document_id = any(?::uuid[])", [ids]))
    .delete()
    .returning("id");
  return deleted.length;
}

/**
 * Deletes up to `limit` expired entries, oldest expiry first; returns how many. Rows another sweeper (another
 * server) is deleting are skipped rather than waited for.
 */
export async function deleteExpiredAnswers(knex: Knex, limit: number): Promise<number> {
  const deleted = await knex("query_cache")
    .whereIn("id", knex("query_cache").select("id").where("expiresAt", "<=", knex.fn.now()).orderBy("expiresAt").limit(limit).forUpdate().skipLocked())
    .delete()
    .returning("id");
  return deleted.length;
}
