import { Field, InputType, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { IsOptional, Length, MaxLength } from "class-validator";
import { MessageRole } from "./message.enums";
import { MessageUsageInput } from "./message.input";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@InputType({ description: "A message whose text will arrive in chunks (appendMessageChunk), then completeMessage or failMessage" })
export class StartMessageInput {
  @Field(() => UUIDScalar)
  conversationId: string;

  // Nullable with a default rather than non-null: graphql-jit drops the defaults of non-null input fields.
  @Field(() => MessageRole, { nullable: true, defaultValue: MessageRole.ASSISTANT })
  role?: MessageRole | null;

  @Field(() => UUIDScalar, { nullable: true, description: "As in addMessage: write as this user" })
  actAs?: string | null;

  @Field(() => String, { nullable: true, description: "Idempotency key: a retry returns the message it started" })
  @IsOptional()
  @Length(1, 255)
  requestId?: string | null;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object" })
  metadata?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(200)
  model?: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "As in addMessage: the assistant version writing it (default: the conversation's pin)" })
  assistantVersionId?: string | null;
}

@InputType({ description: "Usage of a completed message" })
export class CompleteMessageInput extends MessageUsageInput {}

@ObjectType({ description: "One chunk of a streamed message, as stored" })
export class MessageChunk {
  @Field(() => UUIDScalar)
  messageId: string;

  @Field(() => Int, { description: "0, 1, 2 ... in the order the text is read" })
  index: number;

  @Field()
  text: string;
}
