import { Field, Float, Int, ObjectType } from "type-graphql";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { Conversation } from "../conversation/conversation.model";
import { TranscriptFormat, TranscriptStatus } from "./transcript.enums";

/** An export of a conversation (JSON or CSV) stored as a file; served by GET /transcripts/:id/download. */
@ObjectType({ description: "An export of a conversation, stored as a file" })
export class Transcript extends BaseModel {
  static override tableName = "transcripts";

  static override relationMappings = () => ({
    conversation: {
      relation: Model.BelongsToOneRelation,
      modelClass: Conversation,
      join: { from: "transcripts.conversationId", to: "conversations.id" },
    },
  });

  conversationId: string;
  storageKey: string | null;
  createdBy: string | null;

  @Field(() => TranscriptFormat)
  format: TranscriptFormat;

  @Field(() => TranscriptStatus)
  status: TranscriptStatus;

  // Float, not Int: GraphQL Int stops at 2^31 and files can be larger.
  @Field(() => Float, { nullable: true })
  fileSizeBytes: number | null;

  @Field(() => Int, { nullable: true })
  messageCount: number | null;

  @Field(() => String, { nullable: true, description: "Hex SHA-256 of the file" })
  sha256: string | null;

  @Field(() => String, { nullable: true, description: "Why the export failed (status FAILED)" })
  error: string | null;
}
