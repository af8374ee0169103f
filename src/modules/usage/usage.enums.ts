import { registerEnumType } from "type-graphql";

/** What a model call was for (ai_requests.kind). */
export enum AiRequestKind {
  CHAT = "chat",
  EMBEDDING = "embedding",
  RAG_QUERY = "rag_query",
  TOOL = "tool",
  OTHER = "other",
}
registerEnumType(AiRequestKind, { name: "AiRequestKind", description: "What a model call was for" });

/** How a model call ended (ai_requests.status). */
export enum AiRequestStatus {
  SUCCESS = "success",
  ERROR = "error",
  TIMEOUT = "timeout",
  CANCELLED = "cancelled",
}
registerEnumType(AiRequestStatus, { name: "AiRequestStatus", description: "How a model call ended" });

/** Where a ledger row's cost came from. */
export enum CostSource {
  GIVEN = "given",
  CATALOG = "catalog",
  UNKNOWN = "unknown",
}
registerEnumType(CostSource, {
  name: "CostSource",
  description: "GIVEN: reported with the call; CATALOG: computed from the catalogue price in force at the call's time; UNKNOWN: an unpriced model",
});

/** The length of a usage bucket (weeks start on Monday, all in UTC). */
export enum UsagePeriod {
  HOUR = "hour",
  DAY = "day",
  WEEK = "week",
  MONTH = "month",
}
registerEnumType(UsagePeriod, { name: "UsagePeriod", description: "The length of a usage bucket, in UTC (weeks start on Monday)" });

/** What usage buckets are split by, besides their period. */
export enum UsageGroupBy {
  USER = "user_id",
  MODEL = "model",
  GUILD = "guild_id",
}
registerEnumType(UsageGroupBy, { name: "UsageGroupBy", description: "What usage buckets are split by, besides their period" });
