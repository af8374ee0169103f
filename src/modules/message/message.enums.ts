import { registerEnumType } from "type-graphql";

export enum MessageRole {
  USER = "user",
  ASSISTANT = "assistant",
  SYSTEM = "system",
  TOOL = "tool",
}
registerEnumType(MessageRole, { name: "MessageRole" });

export enum MessageStatus {
  COMPLETE = "complete",
  STREAMING = "streaming",
  FAILED = "failed",
}
registerEnumType(MessageStatus, { name: "MessageStatus" });
