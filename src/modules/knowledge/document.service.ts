/**
 * Documents of the knowledge bases: stored as chunks with a tsvector (title and text, for full-text search)
 * and, when the client sends one or EMBEDDINGS_URL makes one, an embedding. Replacing or deleting a document
 * drops the cached answers built from it in the same transaction (answer-cache.service.ts), so the cache never
 * serves an answer whose sources changed under it.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { audit } from "../audit/audit.service";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError } from "../../graphql/errors";
import { checkJson, checkText, trimmedText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";
import { chunkText } from "./chunking";
import { Document, DocumentChunk, KnowledgeBase } from "./document.model";
import type { ConfigureKnowledgeBaseInput, DocumentSearchFilter, UpsertDocumentInput } from "./document.input";
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
import { assertVectorsEnabled, checkEmbedding, settleEmbedding, vectorLiteral } from "./vectors";
import { ensureVectorIndex } from "./vector-index";
import { createEmbedder, recordEmbeddingUsage, type Embedder } from "./embeddings";
import { invalidateAnswers } from "./answer-cache.service";
import type { EmbeddingsConfig } from "../../config";

const MAX_TAGS = 50;
const MAX_TAG_LENGTH = 100;

/** The columns of a document read with its knowledge base's scope. */
export function documentQuery(knex: Knex) {
  return Document.query(knex)
    .select("documents.*", "kb.scope", "kb.guildId", "kb.userId")
    .join("knowledge_bases as kb", "kb.id", "documents.knowledgeBaseId");
}

/** A PostgreSQL text search configuration by name, or BAD_USER_INPUT. */
export async function checkLanguage(knex: Knex, language: string, field: string): Promise<string> {
  if (/^[a-z_][a-z0-9_]{0,62}$/.test(language)) {
    const { rows } = await knex.raw("select 1 from pg_ts_config where cfgname = ?", [language]);
    if (rows.length) return language;
  }
  throw new BadUserInputError(`${field}: "${language}" is not a text search configuration of this database (english, simple, german, …)`, { field });
}

export function checkTags(tags: readonly string[], field: string): string[] {
  if (tags.length > MAX_TAGS) throw new BadUserInputError(`${field}: at most ${MAX_TAGS} tags`, { field });
  return [...new Set(tags.map((tag) => trimmedText(tag, field, MAX_TAG_LENGTH)))];
}

/** One chunk as it will be stored. */
export interface ChunkRow {
  content: string;
  charStart: number | null;
  charEnd: number | null;
  embedding: number[] | null;
}

/** The input's chunks (cut by Parley from `text`, or the client's), checked against the size limits. */
function chunksOf(actor: Actor, input: UpsertDocumentInput): { chunks: ChunkRow[]; sizeBytes: number; sha256: string } {
  const { chunkSize, chunkOverlap, maxDocumentBytes, maxDocumentChunks } = actor.config.knowledge;
  if ((input.text == null) === (input.chunks == null)) throw new BadUserInputError("Give text or chunks, one of the two", { field: "text" });
  const source = input.text ?? input.chunks!.map((chunk) => chunk.text).join("\n");
  const sizeBytes = Buffer.byteLength(source);
  if (sizeBytes > maxDocumentBytes) throw new PayloadTooLargeError(`A document is at most ${maxDocumentBytes} bytes of text; this one is ${sizeBytes}`);
  checkText(source, input.text != null ? "text" : "chunks.text");
  const chunks: ChunkRow[] =
    input.text != null
      ? chunkText(input.text, { size: chunkSize, overlap: chunkOverlap }).map((chunk) => ({ ...chunk, embedding: null }))
      : input.chunks!.map((chunk, i) => {
          if (!chunk.text.trim()) throw new BadUserInputError(`chunks[${i}].text is blank`, { field: `chunks.${i}.text` });
          return { content: chunk.text, charStart: null, charEnd: null, embedding: chunk.embedding ?? null };
        });
  if (chunks.length === 0) throw new BadUserInputError("The document has no text to store", { field: "text" });
  if (chunks.length > maxDocumentChunks) {
    throw new PayloadTooLargeError(`A document has at most ${maxDocumentChunks} chunks; this one has ${chunks.length} (send fewer, larger chunks or split the document)`);
  }
  return { chunks, sizeBytes, sha256: createHash("sha256").update(source).digest("hex") };
}

const embedders = new WeakMap<EmbeddingsConfig, Embedder>();

/** This process's client of EMBEDDINGS_URL; undefined when it is not set. */
function embedderOf(actor: Actor): Embedder | undefined {
  const config = actor.config.knowledge.embeddings;
  if (!config) return undefined;
  let embedder = embedders.get(config);
  if (!embedder) embedders.set(config, (embedder = createEmbedder(config, actor.log)));
  return embedder;
}

interface Embedded {
  model: string | null;
  usage?: { promptTokens: number; latencyMs: number };
}

/**
 * Fills in the chunks' embeddings: the client's, or EMBEDDINGS_URL's for chunks sent without one. Either every
 * chunk ends up with a vector or none does: a document half searchable by meaning would surprise.
 */
async function embed(actor: Actor, input: UpsertDocumentInput, chunks: ChunkRow[]): Promise<Embedded> {
  const missing = chunks.filter((chunk) => !chunk.embedding);
  const embedder = embedderOf(actor);
  if (missing.length === chunks.length && !embedder) return { model: null };
  if (missing.length > 0 && !embedder) {
    throw new BadUserInputError("Some chunks have an embedding and some do not: send one for every chunk, or none", { field: "chunks.embedding" });
  }
  if (missing.length > 0 && input.embeddingModel && input.embeddingModel !== embedder!.model) {
    throw new BadUserInputError(`Chunks without an embedding get one from ${embedder!.model}, not from ${input.embeddingModel}: send every vector yourself`, {
      field: "embeddingModel",
    });
  }
  await assertVectorsEnabled(actor.db.knex);
  if (missing.length === 0) return { model: input.embeddingModel ? trimmedText(input.embeddingModel, "embeddingModel", 200) : null };
  const result = await embedder!.embed(missing.map((chunk) => chunk.content));
  missing.forEach((chunk, i) => (chunk.embedding = result.vectors[i]));
  return { model: embedder!.model, usage: { promptTokens: result.promptTokens, latencyMs: result.latencyMs } };
}

/** Reads a document the viewer may `mode`: NOT_FOUND when they may not read it (its existence stays hidden). */
async function accessibleDocument(actor: Actor, knex: Knex, id: string, mode: "read" | "write"): Promise<Document> {
  const found = await documentQuery(knex).findById(id);
  if (!found) throw new NotFoundError("Document");
  const scope = scopeOfBase(found);
  try {
    await assertScopeAccess(actor, scope, "read");
  } catch (error) {
    if (error instanceof ForbiddenError) throw new NotFoundError("Document");
    throw error;
  }
  if (mode === "write") await assertScopeAccess(actor, scope, "write");
  return found;
}

/** Creates or replaces a document (by id, or by the scope's externalId) with all its chunks. */
export async function upsertDocument(actor: Actor, input: UpsertDocumentInput): Promise<Document> {
  const viewer = viewerOf(actor);
  const knex = actor.db.knex;
  const scope = scopeOf(viewer, input.scope);
  await assertScopeAccess(actor, scope, "write");
  const title = trimmedText(input.title, "title", 500);
  const externalId = input.externalId != null ? trimmedText(input.externalId, "externalId", 500) : null;
  const sourceUrl = input.sourceUrl != null ? trimmedText(input.sourceUrl, "sourceUrl", 2000) : null;
  const tags = checkTags(input.tags ?? [], "tags");
  if (input.metadata != null) checkJson(input.metadata, "metadata", "object");
  const language = await checkLanguage(knex, input.language ?? actor.config.knowledge.searchLanguage, "language");
  const { chunks, sizeBytes, sha256 } = chunksOf(actor, input);
  if (input.id) await accessibleDocument(actor, knex, input.id, "write"); // before any paid embedding call

  // Vectors are checked against what the knowledge base already holds before anything is asked of EMBEDDINGS_URL.
  let base = await findKnowledgeBase(knex, scope);
  const given = chunks.find((chunk) => chunk.embedding)?.embedding;
  if (given) {
    chunks.forEach((chunk, i) => chunk.embedding && checkEmbedding(chunk.embedding, base ?? { dimensions: given.length }, `chunks.${i}.embedding`));
  }
  const embedded = await embed(actor, input, chunks);
  const dimensions = chunks[0].embedding?.length ?? null;
  // EMBEDDINGS_URL's vectors must agree with the client's, and with the knowledge base's.
  if (dimensions) chunks.forEach((chunk, i) => checkEmbedding(chunk.embedding!, base ?? { dimensions }, `chunks.${i}.embedding`));
  if (dimensions) await ensureVectorIndex(knex, dimensions);
  base ??= await ensureKnowledgeBase(knex, scope);

  const id = await knex.transaction(async (trx) => {
    if (dimensions) base = await settleEmbedding(trx, base!, chunks[0].embedding!, embedded.model, "chunks.embedding");
    const row = {
      title,
      sourceUrl,
      tags,
      metadata: JSON.stringify(input.metadata ?? {}),
      language,
      sizeBytes,
      contentSha256: sha256,
      chunkCount: chunks.length,
      embeddingModel: dimensions ? (embedded.model ?? base!.embeddingModel) : null,
      updatedBy: viewer.id,
    };
    let documentId: string;
    if (input.id) {
      const updated = await trx("documents").where({ id: input.id, knowledgeBaseId: base!.id }).update(row).returning("id");
      if (updated.length === 0) throw new BadUserInputError("That document belongs to another scope: a document does not move between scopes", { field: "scope" });
      documentId = input.id;
    } else {
      const insert = trx("documents").insert({ ...row, knowledgeBaseId: base!.id, externalId, createdBy: viewer.id });
      const [inserted] = externalId
        ? await insert.onConflict(["knowledge_base_id", "external_id"]).merge(Object.keys(row)).returning("id")
        : await insert.returning("id");
      documentId = inserted.id;
    }
    await trx("document_chunks").where({ documentId }).delete();
    await insertChunks(trx, documentId, base!.id, language, title, chunks);
    await invalidateAnswers(trx, [documentId]);
    if (embedded.usage) {
      await recordEmbeddingUsage(actor, trx, {
        model: embedded.model!,
        ...embedded.usage,
        requestId: `embed:${documentId}:${sha256}`,
        userId: scope.userId ?? undefined,
        guildId: scope.guildId ?? undefined,
      });
    }
    await audit(actor, { action: "document.upsert", targetType: "document", targetId: documentId, details: { title, chunks: chunks.length, sizeBytes } }, trx);
    return documentId;
  });
  return (await documentQuery(knex).findById(id))!;
}

/**
 * All chunks in one statement whose text does not depend on their number (arrays, unnested): the title goes
 * into every chunk's tsvector with the top weight, so a chunk of a document titled with the query's words ranks high.
 */
export async function insertChunks(trx: Knex, documentId: string, baseId: string, language: string, title: string, chunks: ChunkRow[]): Promise<void> {
  const withVectors = chunks[0].embedding != null;
  await trx.raw(
    `insert into document_chunks (document_id, knowledge_base_id, position, content, search_vector, char_start, char_end${withVectors ? ", dimensions, embedding" : ""})
     select ?, ?, t.position - 1, t.content,
            setweight(to_tsvector(?::regconfig, ?), 'A') || setweight(to_tsvector(?::regconfig, t.content), 'D'),
            t.char_start, t.char_end${withVectors ? ", ?, t.embedding::vector" : ""}
       from unnest(?::text[], ?::int[], ?::int[]${withVectors ? ", ?::text[]" : ""}) with ordinality
         as t(content, char_start, char_end${withVectors ? ", embedding" : ""}, position)`,
    [
      documentId,
      baseId,
      language,
      title,
      language,
      ...(withVectors ? [chunks[0].embedding!.length] : []),
      chunks.map((chunk) => chunk.content),
      chunks.map((chunk) => chunk.charStart),
      chunks.map((chunk) => chunk.charEnd),
      ...(withVectors ? [chunks.map((chunk) => vectorLiteral(chunk.embedding!))] : []),
    ] as Knex.RawBinding[],
  );
}

export async function deleteDocument(actor: Actor, id: string): Promise<boolean> {
  await accessibleDocument(actor, actor.db.knex, id, "write");
  return actor.db.knex.transaction(async (trx) => {
    await invalidateAnswers(trx, [id]);
    // returning: in a transaction knex-pglite answers a bare delete with the driver's result, not a count.
    const deleted = await trx("documents").where({ id }).delete().returning("id");
    await audit(actor, { action: "document.delete", targetType: "document", targetId: id }, trx);
    return deleted.length > 0;
  });
}

export function findDocument(actor: Actor, id: string): Promise<Document> {
  return accessibleDocument(actor, actor.db.knex, id, "read");
}

/** The filter's tags and metadata as a condition on documents (as `alias`): "" when it has neither. */
export function documentConditions(filter: DocumentSearchFilter | null | undefined, alias: string): { sql: string; bindings: unknown[] } {
  const parts: string[] = [];
  const bindings: unknown[] = [];
  if (filter?.tags?.length) {
    parts.push(`${alias}.tags @> ?::text[]`);
    bindings.push(checkTags(filter.tags, "filter.tags"));
  }
  if (filter?.metadata != null) {
    checkJson(filter.metadata, "filter.metadata", "object");
    parts.push(`${alias}.metadata @> ?::jsonb`);
    bindings.push(JSON.stringify(filter.metadata));
  }
  return { sql: parts.join(" and "), bindings };
}

/**
 * The knowledge bases a search or list covers: the filter's scope (checked like a read), or every scope the
 * viewer may read. Their ids and dimensions.
 */
export async function searchedBases(actor: Actor, scopeInput: KnowledgeScopeInput | null | undefined): Promise<KnowledgeBaseRow[]> {
  const knex = actor.db.knex;
  if (scopeInput) {
    const scope = scopeOf(viewerOf(actor), scopeInput);
    await assertScopeAccess(actor, scope, "read");
    const base = await findKnowledgeBase(knex, scope);
    return base ? [base] : [];
  }
  const readable = await readableBases(actor, "knowledge_bases");
  return knex("knowledge_bases").select("id", "scope", "guildId", "userId", "embeddingModel", "dimensions").modify(readable);
}

export async function listDocuments(actor: Actor, filter: DocumentSearchFilter | null | undefined, args: ConnectionArgs): Promise<ConnectionShape<Document>> {
  const page = pageRequest(args, actor.config);
  const conditions = documentConditions(filter, "documents");
  const bases = (await searchedBases(actor, filter?.scope)).map((base) => base.id);
  const filtered = () => {
    const query = documentQuery(actor.db.knex).whereRaw("documents.knowledge_base_id = any(?::uuid[])", [bases]);
    return conditions.sql ? query.whereRaw(conditions.sql, conditions.bindings as Knex.RawBinding[]) : query;
  };
  return newestFirstPage(filtered, page, "updatedAt", "updated_at", { table: "documents" });
}

/** A document's chunks in order, from `after` (a position) on; the caller already read the document. */
export function chunksOfDocument(actor: Actor, documentId: string, first: number, after: number | null): Promise<DocumentChunk[]> {
  if (first < 0 || first > actor.config.maxPageSize) throw new BadUserInputError(`first must be 0 to ${actor.config.maxPageSize}`, { field: "first" });
  return actor.loaders.chunkPage.load({ documentId, first, after: after ?? -1 });
}

export async function knowledgeBase(actor: Actor, scopeInput: KnowledgeScopeInput): Promise<KnowledgeBase | null> {
  const scope = scopeOf(viewerOf(actor), scopeInput);
  await assertScopeAccess(actor, scope, "read");
  const base = await findKnowledgeBase(actor.db.knex, scope);
  return base ? describeBase(actor.db.knex, base) : null;
}

async function describeBase(knex: Knex, base: KnowledgeBaseRow): Promise<KnowledgeBase> {
  const [counts] = await knex("documents")
    .where({ knowledgeBaseId: base.id })
    .select(knex.raw("count(*)::int as document_count"), knex.raw("coalesce(sum(chunk_count), 0)::int as chunk_count"));
  return { ...scopeFields(base), embeddingModel: base.embeddingModel, dimensions: base.dimensions, ...counts };
}

function scopeFields(base: KnowledgeBaseRow): Pick<KnowledgeBase, "scope" | "guildId" | "userId"> {
  return { scope: base.scope, guildId: base.guildId, userId: base.userId };
}

/**
 * Declares a knowledge base's embedding model and dimensions before its first vector (writers of the scope).
 * Declaring the same again is a no-op; changing them while vectors are stored is a CONFLICT: re-embed into a
 * new scope, or delete the documents first.
 */
export async function configureKnowledgeBase(actor: Actor, input: ConfigureKnowledgeBaseInput): Promise<KnowledgeBase> {
  const scope: Scope = scopeOf(viewerOf(actor), input.scope);
  await assertScopeAccess(actor, scope, "write");
  const knex = actor.db.knex;
  await assertVectorsEnabled(knex);
  const model = trimmedText(input.embeddingModel, "embeddingModel", 200);
  checkEmbedding(new Array(input.dimensions).fill(1), undefined, "dimensions");
  await ensureVectorIndex(knex, input.dimensions);
  const base = await ensureKnowledgeBase(knex, scope);
  await knex.transaction(async (trx) => {
    const current = await trx("knowledge_bases").where({ id: base.id }).forUpdate().first("embeddingModel", "dimensions");
    if (current.dimensions === input.dimensions && current.embeddingModel === model) return;
    const [{ vectors }] = await trx("document_chunks").where({ knowledgeBaseId: base.id }).whereNotNull("dimensions").count({ vectors: "*" });
    if (Number(vectors) > 0) {
      throw new ConflictError(`This knowledge base already holds ${current.dimensions}-dimensional vectors of ${current.embeddingModel ?? "an unnamed model"}: delete its documents first`);
    }
    await trx("knowledge_bases").where({ id: base.id }).update({ embeddingModel: model, dimensions: input.dimensions });
    await audit(actor, { action: "knowledge_base.configure", targetType: "knowledge_base", targetId: base.id, details: { model, dimensions: input.dimensions } }, trx);
  });
  return describeBase(knex, (await findKnowledgeBase(knex, scope))!);
}
