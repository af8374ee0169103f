import { Field, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeKind } from "../knowledge/scope";

/**
 * A named preset: model, system prompt, LLM parameters, tools and a knowledge scope. Those live in its
 * versions (AssistantVersion), never changed once written; the assistant row holds only what is not part of
 * an answer's record: name, description, owner, whether it may be pinned.
 */
@ObjectType({ description: "A named preset of model, system prompt, parameters, tools and knowledge scope; owned by a user or shared" })
export class Assistant extends BaseModel {
  static override tableName = "assistants";

  /** Null for a shared assistant (made by an admin). */
  ownerId: string | null;
  createdBy: string | null;

  @Field()
  name: string;

  @Field(() => String, { nullable: true })
  description: string | null;

  @Field({ description: "Inactive assistants cannot be pinned; conversations that pinned them keep their pin" })
  isActive: boolean;

  /** The number of the newest version; GraphQL's currentVersion is the version itself (AssistantResolver). */
  currentVersion: number;

  // A getter, not a column: Objection writes own properties only, and the column's name is taken by the field above.
  @Field(() => Int, { description: "The number of the current (newest) version: 1, 2, 3 …" })
  get currentVersionNumber(): number {
    return this.currentVersion;
  }
}

@ObjectType({ description: "The knowledge scope an assistant answers from" })
export class AssistantKnowledgeScope {
  @Field(() => KnowledgeScopeKind)
  kind: KnowledgeScopeKind;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  userId: string | null;
}

/**
 * One version of an assistant, as it was when written: a conversation that pinned it, and a message that
 * names it, keep saying what they used after the assistant changes (a change writes version n+1).
 */
@ObjectType({ description: "One version of an assistant; never changed once written" })
export class AssistantVersion extends Model {
  static override tableName = "assistant_versions";

  @Field(() => UUIDScalar)
  id: string;

  assistantId: string;
  createdBy: string | null;

  @Field(() => Int, { description: "1, 2, 3 … within its assistant" })
  version: number;

  @Field()
  model: string;

  @Field(() => String, { nullable: true })
  systemPrompt: string | null;

  @Field(() => JSONResolver, { description: "LLM parameters (temperature, top_p, max_tokens, …): a JSON object" })
  parameters: Record<string, unknown>;

  @Field(() => [JSONResolver], { description: 'Tool definitions: { type: "function", function: { name, description, parameters: <JSON schema> } }' })
  tools: unknown[];

  @Field(() => AssistantKnowledgeScope, { nullable: true })
  knowledgeScope: AssistantKnowledgeScope | null;

  @Field()
  createdAt: Date;
}
