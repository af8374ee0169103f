import { Field, Float, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeKind } from "./scope";

/**
 * A document of a knowledge base (documents): its text lives in its chunks, each searchable by full text and,
 * when it has one, by its embedding. `scope`, `guildId` and `userId` are its knowledge base's, read with it.
 */
@ObjectType({ description: "A document of a knowledge base, searchable through its chunks" })
export class Document extends Model {
  static override tableName = "documents";

  knowledgeBaseId: string;
  createdBy: string | null;
  updatedBy: string | null;

  @Field(() => UUIDScalar)
  id: string;

  @Field(() => KnowledgeScopeKind)
  scope: KnowledgeScopeKind;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  userId: string | null;

  @Field(() => String, { nullable: true, description: "The client's own key for it: upserting the same externalId in a scope replaces the document" })
  externalId: string | null;

  @Field()
  title: string;

  @Field(() => String, { nullable: true })
  sourceUrl: string | null;

  @Field(() => [String])
  tags: string[];

  @Field(() => JSONResolver)
  metadata: Record<string, unknown>;

  @Field({ description: "The text search configuration its chunks were indexed with (english, simple, german, ...)" })
  language: string;

  @Field(() => Int, { description: "Bytes of its text (UTF-8)" })
  sizeBytes: number;

  @Field({ description: "SHA-256 of its text (the chunks' texts joined by newlines when the client sent chunks)" })
  contentSha256: string;

  @Field(() => Int)
  chunkCount: number;

  @Field(() => String, { nullable: true, description: "The embedding model of its chunks' vectors; null when they have none" })
  embeddingModel: string | null;

  @Field()
  createdAt: Date;

  @Field()
  updatedAt: Date;
}

@ObjectType({ description: "A piece of a document's text, the unit that search finds" })
export class DocumentChunk {
  @Field(() => UUIDScalar)
  id: string;

  documentId: string;

  @Field(() => Int, { description: "0, 1, 2 … in the document" })
  position: number;

  @Field()
  content: string;

  @Field(() => Int, { nullable: true, description: "Where it starts in the text Parley cut it from (null for chunks the client cut)" })
  charStart: number | null;

  @Field(() => Int, { nullable: true })
  charEnd: number | null;

  @Field({ description: "Whether it has an embedding (vector search finds only chunks that do)" })
  hasEmbedding: boolean;
}

@ObjectType({ description: "One search result: a chunk, its document, and how it ranked" })
export class DocumentSearchHit {
  @Field(() => Float, { description: "Reciprocal rank fusion of the full-text and the vector rankings: sum of 1/(60 + rank)" })
  score: number;

  @Field(() => Int, { nullable: true, description: "Its place (1, 2, …) in the full-text ranking; null when full text did not find it" })
  textPosition: number | null;

  @Field(() => Float, { nullable: true, description: "Full-text rank (ts_rank_cd, normalised to 0..1); null when full text did not find it" })
  textRank: number | null;

  @Field(() => Int, { nullable: true, description: "Its place (1, 2, …) in the vector ranking; null when vector search did not find it" })
  vectorPosition: number | null;

  @Field(() => Float, { nullable: true, description: "Cosine similarity to the query embedding; null without one" })
  similarity: number | null;

  @Field(() => String, { nullable: true, description: "Fragments of the chunk with the query's words in <b>…</b>; null without a text query" })
  highlight: string | null;

  @Field(() => DocumentChunk)
  chunk: DocumentChunk;

  @Field(() => Document)
  document: Document;
}

@ObjectType({ description: "One scope's documents, and the embedding model and dimensions its vectors have" })
export class KnowledgeBase {
  @Field(() => KnowledgeScopeKind)
  scope: KnowledgeScopeKind;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  userId: string | null;

  @Field(() => String, { nullable: true, description: "Every vector stored here comes from this model; null until the first one" })
  embeddingModel: string | null;

  @Field(() => Int, { nullable: true, description: "Every vector stored here has this many dimensions; null until the first one" })
  dimensions: number | null;

  @Field(() => Int)
  documentCount: number;

  @Field(() => Int)
  chunkCount: number;
}
