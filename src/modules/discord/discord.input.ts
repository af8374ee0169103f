import { Field, InputType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { ArrayMaxSize, IsOptional, Matches, MaxLength } from "class-validator";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { DiscordPostStatus } from "./discord.model";

const SNOWFLAKE = /^\d{1,25}$/;

@InputType({ description: "The Discord adapter: what it has posted of an assistant message" })
export class RecordDiscordPostInput {
  @Field(() => UUIDScalar)
  messageId: string;

  @Field(() => [String], { description: "Every Discord message posted for it so far, in order" })
  @ArrayMaxSize(100)
  @Matches(SNOWFLAKE, { each: true })
  discordMessageIds: string[];

  @Field(() => DiscordPostStatus)
  status: DiscordPostStatus;

  @Field(() => String, { nullable: true, description: "FAILED: why (shown to operators, not to Discord users)" })
  @IsOptional()
  @MaxLength(500)
  error?: string | null;
}

/** Identifies a relayed message: its conversation and the Discord message it came from (its requestId). */
@InputType({ description: "A message relayed from Discord: its conversation and the Discord message id" })
export class DiscordMessageRef {
  @Field(() => UUIDScalar)
  conversationId: string;

  @Field()
  @Matches(SNOWFLAKE)
  discordMessageId: string;
}

@InputType({ description: "The Discord adapter: a relayed message was edited (or its attachments and embeds changed) in Discord" })
export class RecordDiscordEditInput extends DiscordMessageRef {
  @Field({ description: "The text as it is now in Discord" })
  content: string;

  @Field(() => Date, { nullable: true, description: "Discord's edited_timestamp; null when only embeds or attachments changed" })
  editedAt?: Date | null;

  @Field(() => JSONResolver, { nullable: true, description: "The message's Discord details as they are now (replaces metadata.discord, keeping its edit history)" })
  discord?: Record<string, unknown> | null;
}
