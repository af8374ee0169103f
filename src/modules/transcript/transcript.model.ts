import { Field, Float, Int, ObjectType } from "type-graphql";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { Conversation } from "../conversation/conversation.model";
import { TranscriptFormat, TranscriptStatus } from "./transcript.enums";

/**
 * An export of a conversation (JSON or CSV) stored as a file on disk or in S3; served by
 * GET /transcripts/:id/download. The row is also the export's job: PENDING while a server writes the file
 * (attempts and heartbeatAt are that server's lease), then READY or FAILED.
 */
@ObjectType({ description: "An export of a conversation, stored as a file; download it from GET /transcripts/{id}/download" })
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
  /** Where the file is in the storage backend; never shown to clients. Set once READY. */
  storageKey: string | null;
  createdBy: string | null;
  /** The conversation's last seq when the export was created: later messages are not part of it. */
  snapshotSeq: number | null;
  /** How many times a server started this export (a takeover after a crash starts it again). */
  attempts: number;
  /** Last sign of life of the server running the export; null when no server holds it. */
  heartbeatAt: Date | null;

  @Field(() => TranscriptFormat)
  format: TranscriptFormat;

  @Field(() => TranscriptStatus, { description: "PENDING while the file is written, then READY or FAILED" })
  status: TranscriptStatus;

  // Float, not Int: GraphQL Int stops at 2^31 and files can be larger.
  @Field(() => Float, { nullable: true, description: "Size of the file in bytes (READY)" })
  fileSizeBytes: number | null;

  @Field(() => Int, { nullable: true, description: "How many messages the file holds (READY)" })
  messageCount: number | null;

  @Field(() => String, { nullable: true, description: "Hex SHA-256 of the file (READY)" })
  sha256: string | null;

  @Field(() => String, { nullable: true, description: "Why the export failed (status FAILED)" })
  error: string | null;

  @Field(() => String, { nullable: true, description: "The client's idempotency key" })
  requestId: string | null;

  @Field(() => Int, { nullable: true, description: "First seq asked for (default: the first message)" })
  fromSeq: number | null;

  @Field(() => Int, { nullable: true, description: "Last seq asked for (default: the last message when the transcript was created)" })
  toSeq: number | null;

  @Field(() => Date, { name: "from", nullable: true, description: "Only messages created at or after this time" })
  fromTime: Date | null;

  @Field(() => Date, { name: "to", nullable: true, description: "Only messages created before this time" })
  toTime: Date | null;

  @Field(() => Boolean, { description: "TOOL messages and the toolCalls of messages are included" })
  includeToolCalls: boolean;

  @Field(() => Boolean, { description: "SYSTEM messages are included" })
  includeSystem: boolean;

  @Field(() => Date, { nullable: true, description: "When the export became READY or FAILED" })
  completedAt: Date | null;
}
