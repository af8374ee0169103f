import { ArgsType, Field, InputType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { IsOptional, Matches, MaxLength } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";
import { ConversationOrigin, ConversationStatus } from "./conversation.enums";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@InputType()
export class CreateConversationInput {
  @Field({ nullable: true, defaultValue: "" })
  @MaxLength(500)
  title: string;

  @Field(() => ConversationOrigin, { nullable: true, defaultValue: ConversationOrigin.WEB })
  origin: ConversationOrigin;

  @Field(() => JSONResolver, { nullable: true, description: "LLM parameters (model, temperature, system prompt, ...)" })
  parameters?: Record<string, unknown> | null;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "Services and admins: create it for this user (a service needs the origin granted). Default: you",
  })
  ownerId?: string | null;

  @Field(() => String, { nullable: true, description: "DISCORD origin only: the guild (server) id" })
  @IsOptional()
  @Matches(/^\d{1,25}$/)
  discordGuildId?: string | null;

  @Field(() => String, { nullable: true, description: "DISCORD origin only: the channel or thread id; one active conversation per channel" })
  @IsOptional()
  @Matches(/^\d{1,25}$/)
  discordChannelId?: string | null;
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

  @Field(() => UUIDScalar, { nullable: true, description: "Admins only: list this user's conversations instead of your own" })
  ownerId?: string;
}

@ArgsType()
export class ConversationsArgs extends ConnectionArgs {
  @Field(() => ConversationFilter, { nullable: true })
  filter?: ConversationFilter | null;
}
