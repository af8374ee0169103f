import { Field, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { User } from "../user/user.model";
import { Message } from "../message/message.model";
import { Transcript } from "../transcript/transcript.model";
import { ConversationOrigin, ConversationStatus } from "./conversation.enums";

/**
 * A chat session: a web conversation or a Discord channel. Relations (owner, messages, lastMessage) are
 * resolved through per-request DataLoaders in ConversationResolver, never through Objection eager loading.
 */
@ObjectType({ description: "A chat session (web, API or a Discord channel)", simpleResolvers: true })
export class Conversation extends BaseModel {
  static override tableName = "conversations";

  // For Objection queries ($relatedQuery, joins, scripts). The API resolves relations through DataLoaders.
  // A thunk, so that models importing each other do not meet half-initialised.
  static override relationMappings = () => ({
    owner: { relation: Model.BelongsToOneRelation, modelClass: User, join: { from: "conversations.ownerId", to: "users.id" } },
    messages: { relation: Model.HasManyRelation, modelClass: Message, join: { from: "conversations.id", to: "messages.conversationId" } },
    transcripts: {
      relation: Model.HasManyRelation,
      modelClass: Transcript,
      join: { from: "conversations.id", to: "transcripts.conversationId" },
    },
  });

  ownerId: string;
  /** Highest seq handed out so far; the next message gets lastSeq + 1. */
  lastSeq: number;

  @Field()
  title: string;

  @Field(() => ConversationOrigin)
  origin: ConversationOrigin;

  @Field(() => String, { nullable: true })
  discordGuildId: string | null;

  @Field(() => String, { nullable: true })
  discordChannelId: string | null;

  @Field(() => JSONResolver, { description: "LLM parameters (model, temperature, system prompt, ...)" })
  parameters: Record<string, unknown>;

  @Field(() => ConversationStatus)
  status: ConversationStatus;

  @Field(() => Int)
  messageCount: number;

  @Field(() => Date, { nullable: true })
  endedAt: Date | null;
}
