import { Field, Int, ObjectType, registerEnumType } from "type-graphql";
import { Model } from "objection";
import { Conversation } from "../conversation/conversation.model";

export enum DiscordPostStatus {
  /** Parts are being posted (or a streamed reply is still being edited). */
  POSTING = "posting",
  POSTED = "posted",
  /** Discord refused it for good (the channel is gone, the bot lost access); not tried again. */
  FAILED = "failed",
}
registerEnumType(DiscordPostStatus, { name: "DiscordPostStatus" });

/** What the Discord adapter posted of one assistant message. */
@ObjectType({ description: "What the Discord adapter posted of an assistant message" })
export class DiscordPost extends Model {
  static override tableName = "discord_posts";
  static override idColumn = "messageId";

  messageId: string;

  @Field()
  channelId: string;

  @Field(() => [String], { description: "The Discord messages holding the reply, in order (one per 2,000-character part)" })
  discordMessageIds: string[];

  @Field(() => DiscordPostStatus)
  status: DiscordPostStatus;

  @Field(() => String, { nullable: true, description: "Why Discord refused it (FAILED)" })
  error: string | null;

  @Field()
  updatedAt: Date;
}

/** A Discord channel bound to its active conversation, with where the adapter resumes after a restart. */
@ObjectType({ description: "A Discord channel (or thread) bound to its active conversation" })
export class DiscordBinding {
  @Field(() => Conversation)
  conversation: Conversation;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  @Field()
  channelId: string;

  @Field(() => String, {
    nullable: true,
    description: "Discord id of the newest message relayed into the conversation (backfill continues after it); null before the first",
  })
  lastRelayedMessageId: string | null;

  @Field(() => Int, {
    description: "Every ASSISTANT message after this seq still has to be posted to the channel, or finished (streamed replies)",
  })
  resumeAfterSeq: number;
}
