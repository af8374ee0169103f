import { Field, InputType, Int } from "type-graphql";
import { IsOptional, Length, Min } from "class-validator";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { TranscriptFormat } from "./transcript.enums";

@InputType()
export class CreateTranscriptInput {
  @Field(() => UUIDScalar)
  conversationId: string;

  @Field(() => TranscriptFormat)
  format: TranscriptFormat;

  @Field(() => Int, { nullable: true, description: "First seq to export (default 1)" })
  @IsOptional()
  @Min(1)
  fromSeq?: number | null;

  @Field(() => Int, { nullable: true, description: "Last seq to export (default: the conversation's last message now)" })
  @IsOptional()
  @Min(1)
  toSeq?: number | null;

  @Field(() => Date, { nullable: true, description: "Only messages created at or after this time" })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Only messages created before this time" })
  to?: Date | null;

  @Field(() => Boolean, { nullable: true, defaultValue: true, description: "Include TOOL messages and the toolCalls of messages" })
  includeToolCalls: boolean;

  @Field(() => Boolean, { nullable: true, defaultValue: true, description: "Include SYSTEM messages" })
  includeSystem: boolean;

  @Field(() => String, {
    nullable: true,
    description: "Idempotency key: a retry with the same requestId returns the same transcript; different settings are CONFLICT",
  })
  @IsOptional()
  @Length(1, 200)
  requestId?: string | null;
}
