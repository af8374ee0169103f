/**
 * Builds the one executable schema that HTTP, graphql-ws and the Discord adapter all run against.
 */
import "reflect-metadata";
import path from "node:path";
import type { GraphQLSchema } from "graphql";
import { buildSchema, type PubSub } from "type-graphql";
import { DateTimeResolver } from "graphql-scalars";
import { UserResolver } from "../modules/user/user.resolver";
import { ConversationResolver } from "../modules/conversation/conversation.resolver";
import { MessageResolver } from "../modules/message/message.resolver";
import { ConversationTranscriptsResolver, TranscriptResolver } from "../modules/transcript/transcript.resolver";
import { MetricResolver } from "../modules/metric/metric.resolver";
import { ApiKeyResolver } from "../modules/api-key/api-key.resolver";
import { ServiceGrantResolver } from "../modules/access/grant.resolver";
import { AuditLogResolver } from "../modules/audit/audit.resolver";
import { SystemConfigResolver } from "../modules/system/system-config.resolver";
import { LiveResolver } from "../modules/live/live.resolver";
import { DiscordMessageResolver, DiscordResolver } from "../modules/discord/discord.resolver";
import { AiModelResolver } from "../modules/usage/ai-model.resolver";
import { AiRequestResolver } from "../modules/usage/ai-request.resolver";
import { UsageResolver } from "../modules/usage/usage.resolver";
import { AlertResolver } from "../modules/alert/alert.resolver";
import { BudgetResolver } from "../modules/usage/budget.resolver";
import { AnswerCacheResolver } from "../modules/knowledge/answer-cache.resolver";
import { KnowledgeTopUserResolver, QueryHistoryResolver } from "../modules/knowledge/query-history.resolver";
import { GuildConfigResolver } from "../modules/guild/guild-config.resolver";
import { MessageSearchResolver } from "../modules/search/message-search.resolver";
import { DocumentResolver } from "../modules/knowledge/document.resolver";
import { AssistantResolver, AssistantVersionResolver, ConversationAssistantResolver, MessageAssistantResolver } from "../modules/assistant/assistant.resolver";
import { ArtifactResolver, ConversationArtifactsResolver, MessageArtifactsResolver } from "../modules/artifact/artifact.resolver";
import { FeedbackResolver, MessageFeedbackResolver } from "../modules/feedback/feedback.resolver";
import { DataExportResolver, UserDeletionResolver } from "../modules/privacy/privacy.resolver";
import { BackupResolver } from "../modules/ops/backup.resolver";

import { installReadPlanner, type PlannerSetup } from "./planner/install";
import { conversationPlan, plannedConversation, plannedConversations } from "../modules/conversation/conversation.plan";
import { messagePlan, plannedChunkCount, plannedText } from "../modules/message/message.plan";
import { userPlan } from "../modules/user/user.plan";

export const SCHEMA_FILE = path.resolve(__dirname, "../../schema.graphql");

const resolvers = [
  UserResolver,
  ConversationResolver,
  MessageResolver,
  TranscriptResolver,
  ConversationTranscriptsResolver,
  MetricResolver,
  ApiKeyResolver,
  ServiceGrantResolver,
  AuditLogResolver,
  BackupResolver,
  SystemConfigResolver,
  LiveResolver,
  DiscordResolver,
  DiscordMessageResolver,
  AiModelResolver,
  AiRequestResolver,
  UsageResolver,
  BudgetResolver,
  AlertResolver,
  AnswerCacheResolver,
  QueryHistoryResolver,
  KnowledgeTopUserResolver,
  GuildConfigResolver,
  MessageSearchResolver,
  DocumentResolver,
  AssistantResolver,
  AssistantVersionResolver,
  ConversationAssistantResolver,
  MessageAssistantResolver,
  ArtifactResolver,
  MessageArtifactsResolver,
  ConversationArtifactsResolver,
  FeedbackResolver,
  MessageFeedbackResolver,
  DataExportResolver,
  UserDeletionResolver,
] as const;

/**
 * TypeGraphQL wants a pubSub as soon as any subscription exists, although Parley's subscriptions bring their
 * own event streams (`subscribe:`, fed by PostgreSQL notifications, see modules/live). Topics are never used.
 */
const noTopics: PubSub = {
  publish() {
    throw new Error("Parley publishes live events with NOTIFY (modules/live), not with topics");
  },
  subscribe() {
    throw new Error("Parley's subscriptions bring their own streams (modules/live), not topics");
  },
};

/** The planned reads (graphql/planner) of the hot types. */
const readPlanner: PlannerSetup = {
  types: [conversationPlan, messagePlan, userPlan],
  roots: {
    "Query.conversation": (ctx, info, args: { id: string }) => plannedConversation(ctx, info, args.id),
    "Query.conversations": plannedConversations,
  },
  computed: { "Message.content": plannedText, "Message.chunkCount": plannedChunkCount },
};

export async function createSchema(options: { emitSchemaFile?: string } = {}): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers,
    pubSub: noTopics,
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    // class-validator checks on inputs (lengths, ranges); failures are BAD_USER_INPUT.
    validate: { forbidUnknownValues: false },
    emitSchemaFile: options.emitSchemaFile ? { path: options.emitSchemaFile, sortedSchema: true } : false,
  });
  installReadPlanner(schema, readPlanner);
  return schema;
}
