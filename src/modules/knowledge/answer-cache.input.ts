// Lengths and ranges are checked in answer-cache.service.ts rather than with class-validator, so that every
// refusal names its `field`.
import { ArgsType, Field, Float, InputType, Int } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { ValidateNested } from "class-validator";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeInput } from "./scope";

@InputType({ description: "An answer to keep for a question; storing the same question (once normalized) again replaces it" })
export class StoreAnswerInput {
  @Field(() => KnowledgeScopeInput, { description: "Whose cache: the viewer must be allowed to write this scope's knowledge" })
  @ValidateNested()
  scope: KnowledgeScopeInput;

  @Field({ description: "1 to 10000 characters (trimmed); matched after normalization (case, spacing, trailing ?!.)" })
  question: string;

  @Field({ description: "1 to 200000 characters" })
  answer: string;

  @Field(() => [Float], {
    nullable: true,
    description: "The question's embedding, for similar questions to find it: as many dimensions as the knowledge base's vectors. Needs pgvector",
  })
  embedding?: number[] | null;

  @Field(() => String, { nullable: true, description: "The model that made the embedding: recorded on a knowledge base that has none, refused when it names another" })
  embeddingModel?: string | null;

  @Field(() => [UUIDScalar], {
    nullable: true,
    description: "The documents the answer was built from (at most 100), each in knowledge the viewer may read: changing or deleting one drops the answer",
  })
  sourceDocumentIds?: string[] | null;

  @Field(() => String, { nullable: true, description: "The model that wrote the answer (1 to 200 characters)" })
  model?: string | null;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object (default {})" })
  metadata?: unknown;

  @Field(() => Int, { nullable: true, description: "Seconds it is served, 1 to 31536000 (default: ANSWER_CACHE_TTL_SECONDS)" })
  ttlSeconds?: number | null;
}

@ArgsType()
export class CachedAnswerArgs {
  @Field({ description: "The question, matched after normalization (case, spacing, trailing ?!.)" })
  question: string;

  @Field(() => KnowledgeScopeInput)
  @ValidateNested()
  scope: KnowledgeScopeInput;

  @Field(() => [Float], {
    nullable: true,
    description: "The question's embedding: without an exact match, the most similar stored question at ANSWER_CACHE_SIMILARITY or above is served. Needs pgvector",
  })
  embedding?: number[] | null;
}
