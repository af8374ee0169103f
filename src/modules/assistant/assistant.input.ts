import { ArgsType, Field, InputType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { IsOptional, MaxLength } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";
import { KnowledgeScopeInput } from "../knowledge/scope";

@InputType({ description: "A new assistant; its settings become version 1" })
export class CreateAssistantInput {
  @Field({ description: "Unique among your assistants (or among the shared ones), ignoring case" })
  name: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000)
  description?: string | null;

  @Field()
  model: string;

  @Field(() => String, { nullable: true })
  systemPrompt?: string | null;

  @Field(() => JSONResolver, { nullable: true, description: "LLM parameters: a JSON object (temperature 0–2, top_p 0–1, max_tokens ≥ 1 when given)" })
  parameters?: Record<string, unknown> | null;

  @Field(() => [JSONResolver], {
    nullable: true,
    description: 'OpenAI-style tools: { type: "function", function: { name, description, parameters: { type: "object", properties, required } } }',
  })
  tools?: unknown[] | null;

  @Field(() => KnowledgeScopeInput, { nullable: true, description: "The knowledge it answers from; you must be able to read it" })
  knowledgeScope?: KnowledgeScopeInput | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "Admins: a shared assistant (no owner), seen by everyone" })
  shared?: boolean | null;
}

/**
 * A change of an assistant. model, systemPrompt, parameters, tools and knowledgeScope write version n+1
 * (fields left out are carried over; an explicit null clears systemPrompt or knowledgeScope); name and
 * description change the assistant itself.
 */
@InputType({ description: "Fields left out stay; a change of model, systemPrompt, parameters, tools or knowledgeScope writes a new version" })
export class UpdateAssistantInput {
  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000)
  description?: string | null;

  @Field(() => String, { nullable: true })
  model?: string | null;

  @Field(() => String, { nullable: true, description: "null clears it" })
  systemPrompt?: string | null;

  @Field(() => JSONResolver, { nullable: true })
  parameters?: Record<string, unknown> | null;

  @Field(() => [JSONResolver], { nullable: true })
  tools?: unknown[] | null;

  @Field(() => KnowledgeScopeInput, { nullable: true, description: "null clears it" })
  knowledgeScope?: KnowledgeScopeInput | null;
}

@InputType()
export class AssistantsFilter {
  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "Also list inactive assistants" })
  includeInactive?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: "true: only shared ones; false: only owned ones" })
  shared?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: "true: only your own" })
  mine?: boolean | null;
}

@ArgsType()
export class AssistantsArgs extends ConnectionArgs {
  @Field(() => AssistantsFilter, { nullable: true })
  filter?: AssistantsFilter | null;
}
