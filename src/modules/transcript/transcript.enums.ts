import { registerEnumType } from "type-graphql";

export enum TranscriptFormat {
  JSON = "json",
  CSV = "csv",
}
registerEnumType(TranscriptFormat, { name: "TranscriptFormat" });

export enum TranscriptStatus {
  PENDING = "pending",
  READY = "ready",
  FAILED = "failed",
}
registerEnumType(TranscriptStatus, { name: "TranscriptStatus" });
