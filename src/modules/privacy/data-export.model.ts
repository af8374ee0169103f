import { Field, Float, Int, ObjectType } from "type-graphql";
import { BaseModel } from "../../db/base.model";
import { DataExportStatus } from "./privacy.enums";

/** What a READY archive holds (data-export.archive.ts counts it while writing). */
@ObjectType({ description: "What a data export holds", simpleResolvers: true })
export class DataExportCounts {
  @Field(() => Int, { description: "Conversations you own" })
  conversations: number;

  @Field(() => Int, { description: "Messages of the conversations you own, whoever wrote them" })
  messages: number;

  @Field(() => Int, { description: "Messages you wrote in conversations you do not own (only yours)" })
  messagesElsewhere: number;

  @Field(() => Int, { description: "Your feedback on messages" })
  feedback: number;

  @Field(() => Int, { description: "Usage ledger rows billed to you" })
  usage: number;

  // Archived since 2026-12-03: null for exports written before they were.
  @Field(() => Int, { nullable: true, description: "Assistants you own (null in archives made before they were included)" })
  assistants: number | null;

  @Field(() => Int, { nullable: true, description: "Documents of your own knowledge base (null in archives made before they were included)" })
  documents: number | null;

  @Field(() => Int, { nullable: true, description: "Questions you asked, from the query history (null in archives made before they were included)" })
  queryHistory: number | null;

  @Field(() => Int, { nullable: true, description: "Your API keys, without their secrets (null in archives made before they were included)" })
  apiKeys: number | null;
}

/**
 * An archive of everything Parley holds of one user (their profile, conversations, messages, feedback and
 * usage), as one JSON file in the storage backend; served by GET /exports/:id/download to that user only.
 * The row is also the export's job: PENDING while a server writes the file (attempts and heartbeatAt are
 * that server's lease, see transcript.jobs.ts), then READY or FAILED.
 */
@ObjectType({ description: "An archive (JSON) of all your data; download it from GET /exports/{id}/download" })
export class DataExport extends BaseModel {
  static override tableName = "data_exports";
  static override jsonAttributes = ["counts"];

  userId: string;
  /** Where the file is in the storage backend; never shown to clients. Set once READY. */
  storageKey: string | null;
  /** How many times a server started this export (a takeover after a crash starts it again). */
  attempts: number;
  /** Last sign of life of the server running the export; null when no server holds it. */
  heartbeatAt: Date | null;

  @Field(() => DataExportStatus)
  status: DataExportStatus;

  // Float, not Int: GraphQL Int stops at 2^31 and archives can be larger.
  @Field(() => Float, { nullable: true, description: "Size of the file in bytes (READY)" })
  fileSizeBytes: number | null;

  @Field(() => String, { nullable: true, description: "Hex SHA-256 of the file (READY)" })
  sha256: string | null;

  @Field(() => DataExportCounts, { nullable: true, description: "What the file holds (READY)" })
  counts: DataExportCounts | null;

  @Field(() => String, { nullable: true, description: "Why the export failed (status FAILED)" })
  error: string | null;

  @Field(() => String, { nullable: true, description: "The client's idempotency key" })
  requestId: string | null;

  @Field(() => Date, { nullable: true, description: "When the export became READY or FAILED" })
  completedAt: Date | null;
}
