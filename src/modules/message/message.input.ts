import { Field, Float, InputType, Int } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { IsOptional, Length, Max, MaxLength, Min } from "class-validator";
import { MessageRole } from "./message.enums";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** Usage of a model reply: given with addMessage, or with completeMessage for a streamed one. */
@InputType({ description: "Usage of a model reply" })
export class MessageUsageInput {
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @Min(0)
  promptTokens?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @Min(0)
  completionTokens?: number | null;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @Min(0)
  @Max(1e8)
  costUsd?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @Min(0)
  latencyMs?: number | null;
}

@InputType()
export class AddMessageInput extends MessageUsageInput {
  @Field(() => UUIDScalar)
  conversationId: string;

  // Nullable with a default rather than non-null: graphql-jit drops the defaults of non-null input fields.
  @Field(() => MessageRole, { nullable: true, defaultValue: MessageRole.USER })
  role?: MessageRole | null;

  @Field({ description: "The text. Empty only for an assistant message that carries toolCalls." })
  content: string;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "Services and admins: write as this user (the author); the writer is kept in sentBy. A service needs the conversation's origin granted.",
  })
  actAs?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "Idempotency key: a retry with the same key returns the original message; other content is CONFLICT",
  })
  @IsOptional()
  @Length(1, 255)
  requestId?: string | null;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object (attachments, client info, ...)" })
  metadata?: Record<string, unknown> | null;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON array of tool calls" })
  toolCalls?: unknown[] | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(200)
  model?: string | null;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "ASSISTANT messages only: the assistant version that wrote it. Left out: the conversation's pinned version, if any.",
  })
  assistantVersionId?: string | null;
}
