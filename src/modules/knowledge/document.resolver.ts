import { Arg, Args, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionArgs, ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Document, DocumentChunk, DocumentSearchHit, KnowledgeBase } from "./document.model";
import { ConfigureKnowledgeBaseInput, DocumentSearchFilter, SearchDocumentsArgs, UpsertDocumentInput } from "./document.input";
import { KnowledgeScopeInput } from "./scope";
import * as documents from "./document.service";
import { searchDocuments } from "./document-search.service";

const DocumentConnection = ConnectionType(Document);

@Resolver(() => Document)
export class DocumentResolver {
  @Mutation(() => Document, { description: "Stores a document (text cut into chunks by Parley, or the client's chunks) with its embeddings; replaces it by id or externalId" })
  upsertDocument(@Arg("input") input: UpsertDocumentInput, @Ctx() ctx: Context): Promise<Document> {
    return documents.upsertDocument(ctx, input);
  }

  @Mutation(() => Boolean, { description: "Deletes a document, its chunks and the cached answers built from it" })
  deleteDocument(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return documents.deleteDocument(ctx, id);
  }

  @Query(() => Document, { description: "A document of a scope you may read" })
  document(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Document> {
    return documents.findDocument(ctx, id);
  }

  @Query(() => DocumentConnection, { description: "Documents of the scopes you may read (or of the filter's scope), recently updated first" })
  documents(
    @Arg("filter", () => DocumentSearchFilter, { nullable: true }) filter: DocumentSearchFilter | null,
    @Args() page: ConnectionArgs,
    @Ctx() ctx: Context,
  ): Promise<ConnectionShape<Document>> {
    return documents.listDocuments(ctx, filter, page);
  }

  @Query(() => [DocumentSearchHit], { description: "Hybrid search of documents: full text and vector similarity fused by reciprocal rank; either part optional" })
  searchDocuments(@Args() args: SearchDocumentsArgs, @Ctx() ctx: Context): Promise<DocumentSearchHit[]> {
    return searchDocuments(ctx, args);
  }

  @Query(() => KnowledgeBase, { nullable: true, description: "A scope's knowledge base; null before anything was stored in it" })
  knowledgeBase(@Arg("scope") scope: KnowledgeScopeInput, @Ctx() ctx: Context): Promise<KnowledgeBase | null> {
    return documents.knowledgeBase(ctx, scope);
  }

  @Mutation(() => KnowledgeBase, { description: "Declares a scope's embedding model and dimensions (before its first vector)" })
  configureKnowledgeBase(@Arg("input") input: ConfigureKnowledgeBaseInput, @Ctx() ctx: Context): Promise<KnowledgeBase> {
    return documents.configureKnowledgeBase(ctx, input);
  }

  @FieldResolver(() => [DocumentChunk], { description: "Its chunks in order, from position `after` on" })
  chunks(
    @Root() document: Document,
    @Arg("first", () => Int, { defaultValue: 20 }) first: number,
    @Arg("after", () => Int, { nullable: true }) after: number | null,
    @Ctx() ctx: Context,
  ): Promise<DocumentChunk[]> {
    return documents.chunksOfDocument(ctx, document.id, first, after);
  }
}
