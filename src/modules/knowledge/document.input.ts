import { ArgsType, Field, Float, InputType, Int } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeInput } from "./scope";

@InputType({ description: "A chunk the client cut itself, with its embedding when it has one" })
export class DocumentChunkInput {
  @Field()
  text: string;

  @Field(() => [Float], { nullable: true, description: "Its vector; left out, Parley asks EMBEDDINGS_URL for one when that is set" })
  embedding?: number[] | null;
}

@InputType({
  description:
    "A document to store: `text` (Parley cuts it into chunks) or `chunks` (cut by the client), one of the two. With `id` it replaces that document; with `externalId` it replaces the scope's document of that key, or creates it",
})
export class UpsertDocumentInput {
  @Field(() => KnowledgeScopeInput)
  scope: KnowledgeScopeInput;

  @Field(() => UUIDScalar, { nullable: true })
  id?: string | null;

  @Field(() => String, { nullable: true })
  externalId?: string | null;

  @Field()
  title: string;

  @Field(() => String, { nullable: true })
  sourceUrl?: string | null;

  @Field(() => [String], { nullable: true, defaultValue: [] })
  tags?: string[] | null;

  @Field(() => JSONResolver, { nullable: true })
  metadata?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true, description: "A PostgreSQL text search configuration (english, simple, german, …); SEARCH_LANGUAGE when left out" })
  language?: string | null;

  @Field(() => String, { nullable: true })
  text?: string | null;

  @Field(() => [DocumentChunkInput], { nullable: true })
  chunks?: DocumentChunkInput[] | null;

  @Field(() => String, {
    nullable: true,
    description: "The model the embeddings come from; the knowledge base keeps it, and a different one is refused (vectors of two models do not compare)",
  })
  embeddingModel?: string | null;
}

@InputType({ description: "Which documents to search or list; every part optional" })
export class DocumentSearchFilter {
  @Field(() => KnowledgeScopeInput, { nullable: true, description: "One scope; left out, every scope you may read" })
  scope?: KnowledgeScopeInput | null;

  @Field(() => [String], { nullable: true, description: "Documents having all of these tags" })
  tags?: string[] | null;

  @Field(() => JSONResolver, { nullable: true, description: "Documents whose metadata contains this object (jsonb @>)" })
  metadata?: Record<string, unknown> | null;
}

@ArgsType()
export class SearchDocumentsArgs {
  @Field(() => String, { nullable: true, description: "Words to find (web search syntax: \"a phrase\", or, -not)" })
  query?: string | null;

  @Field(() => [Float], { nullable: true, description: "The query's embedding, from the knowledge base's embedding model" })
  embedding?: number[] | null;

  @Field(() => DocumentSearchFilter, { nullable: true })
  filter?: DocumentSearchFilter | null;

  @Field(() => Int, { nullable: true, defaultValue: 10 })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "Text search configuration of the query; SEARCH_LANGUAGE when left out" })
  language?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: "Exact nearest neighbours: compares every vector in the scopes searched instead of walking the HNSW index (slower; perfect recall)",
  })
  exact?: boolean | null;
}

@InputType({ description: "A knowledge base's embedding model and dimensions, declared before its first vector" })
export class ConfigureKnowledgeBaseInput {
  @Field(() => KnowledgeScopeInput)
  scope: KnowledgeScopeInput;

  @Field()
  embeddingModel: string;

  @Field(() => Int)
  dimensions: number;
}
