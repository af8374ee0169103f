import { Field, Float, Int, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { User } from "../user/user.model";
import { Conversation } from "../conversation/conversation.model";
import { MessageRole, MessageStatus } from "./message.enums";

/**
 * One message of a conversation. `seq` numbers messages 1, 2, 3 ... within their conversation in commit
 * order, with no gaps: it is the cursor of history pages and the resume point of subscriptions.
 */
@ObjectType({ description: "A message of a conversation", simpleResolvers: true })
export class Message extends BaseModel {
  static override tableName = "messages";

  static override relationMappings = () => ({
    conversation: {
      relation: Model.BelongsToOneRelation,
      modelClass: Conversation,
      join: { from: "messages.conversationId", to: "conversations.id" },
    },
    author: { relation: Model.BelongsToOneRelation, modelClass: User, join: { from: "messages.authorId", to: "users.id" } },
  });

  conversationId: string;
  authorId: string | null;
  /** The service that wrote the message on behalf of its author (actAs), else null. */
  sentBy: string | null;
  encryptedContent: Uint8Array | null;
  keyId: string | null;

  @Field(() => Int, { description: "Position in the conversation: 1, 2, 3 ... in commit order, without gaps" })
  seq: number;

  @Field(() => MessageRole)
  role: MessageRole;

  /** NULL when the text is stored encrypted: read it with messageText() (the GraphQL field resolver does). */
  @Field(() => String)
  content: string | null;

  @Field(() => MessageStatus)
  status: MessageStatus;

  /** Chunks appended while STREAMING; the next appendMessageChunk must carry this index. */
  @Field(() => Int, { description: "How many chunks the text was streamed in (0 for a message added whole)" })
  chunkCount: number;

  @Field(() => String, { nullable: true, description: "The client's idempotency key" })
  requestId: string | null;

  @Field(() => JSONResolver)
  metadata: Record<string, unknown>;

  @Field(() => JSONResolver, { nullable: true, description: "Tool calls requested by an assistant message" })
  toolCalls: unknown;

  @Field(() => String, { nullable: true })
  model: string | null;

  @Field(() => Int, { nullable: true })
  promptTokens: number | null;

  @Field(() => Int, { nullable: true })
  completionTokens: number | null;

  // numeric comes back as a string from both drivers; $parseDatabaseJson turns it into a number.
  @Field(() => Float, { nullable: true })
  costUsd: number | null;

  @Field(() => Int, { nullable: true })
  latencyMs: number | null;

  override $parseDatabaseJson(json: Record<string, unknown>) {
    const parsed = super.$parseDatabaseJson(json);
    if (typeof parsed.costUsd === "string") parsed.costUsd = Number(parsed.costUsd);
    return parsed;
  }
}
