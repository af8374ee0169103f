import { Field, Float, Int, ObjectType, registerEnumType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { UUIDScalar } from "../../graphql/scalars/uuid";

export enum AnswerMatch {
  EXACT = "exact",
  SIMILAR = "similar",
}
registerEnumType(AnswerMatch, {
  name: "AnswerMatch",
  description: "How a cached answer matched: the same question once normalized, or a question whose embedding is close enough",
});

@ObjectType({ description: "An answer stored for a question in one knowledge scope, served until it expires or a source document changes" })
export class CachedAnswer {
  @Field(() => UUIDScalar)
  id: string;

  @Field({ description: "The question as it was stored (trimmed)" })
  question: string;

  @Field()
  answer: string;

  @Field(() => String, { nullable: true, description: "The model that wrote the answer" })
  model: string | null;

  @Field(() => JSONResolver)
  metadata: Record<string, unknown>;

  @Field(() => Int, { description: "Times it was served since it was stored" })
  hitCount: number;

  @Field(() => Date, { nullable: true })
  lastHitAt: Date | null;

  @Field({ description: "From then on it is never served, and the sweeper deletes it" })
  expiresAt: Date;

  @Field({ description: "When this answer was stored (storing the same question again restarts it)" })
  createdAt: Date;

  @Field(() => [UUIDScalar], { description: "The documents the answer was built from: changing or deleting one of them drops the answer" })
  sourceDocumentIds: string[];
}

@ObjectType({ description: "A cached answer served for a question" })
export class CachedAnswerHit {
  @Field(() => CachedAnswer, { description: "The entry, its hitCount and lastHitAt counting this hit" })
  entry: CachedAnswer;

  @Field(() => AnswerMatch)
  match: AnswerMatch;

  @Field(() => Float, { nullable: true, description: "The cosine similarity of the two questions' embeddings (SIMILAR); null for EXACT" })
  similarity: number | null;
}
