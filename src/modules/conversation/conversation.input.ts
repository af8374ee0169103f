import { ArgsType, Field, InputType } from "type-graphql";
import { JSONResolver, UUIDResolver } from "graphql-scalars";
import { MaxLength } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";
import { ConversationOrigin, ConversationStatus } from "./conversation.enums";

@InputType()
export class CreateConversationInput {
  @Field({ nullable: true, defaultValue: "" })
  @MaxLength(500)
  title: string;

  @Field(() => ConversationOrigin, { nullable: true, defaultValue: ConversationOrigin.WEB })
  origin: ConversationOrigin;

  @Field(() => JSONResolver, { nullable: true, description: "LLM parameters (model, temperature, system prompt, ...)" })
  parameters?: Record<string, unknown> | null;
}

@InputType()
export class UpdateConversationInput {
  @Field({ nullable: true })
  @MaxLength(500)
  title?: string;

  @Field(() => JSONResolver, { nullable: true, description: "Replaces the parameters object" })
  parameters?: Record<string, unknown> | null;
}

@InputType()
export class ConversationFilter {
  @Field(() => ConversationStatus, { nullable: true })
  status?: ConversationStatus;

  @Field(() => ConversationOrigin, { nullable: true })
  origin?: ConversationOrigin;

  @Field(() => UUIDResolver, { nullable: true, description: "Admins only: list this user's conversations instead of your own" })
  ownerId?: string;
}

@ArgsType()
export class ConversationsArgs extends ConnectionArgs {
  @Field(() => ConversationFilter, { nullable: true })
  filter?: ConversationFilter | null;
}
