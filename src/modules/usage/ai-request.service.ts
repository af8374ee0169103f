/**
 * The usage ledger for workers: recordAiRequest puts one model call on the ledger (with its roll-ups, see
 * ledger.ts), idempotent on the reporter's requestId. Who is billed: the given user, else the conversation's
 * owner, else the reporter. A service bills only within a conversation it may access (its owner or one of its
 * authors) or itself, so a worker granted one conversation cannot charge anyone else.
 *
 * Assistant messages written with usage record their ledger row themselves (message.service.ts,
 * stream.service.ts): one source of truth, in the message's own statement or transaction.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf, isAdmin } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkDiscordId, checkJson, trimmedText } from "../../graphql/json-input";
import { getConversation } from "../conversation/conversation.service";
import type { Conversation } from "../conversation/conversation.model";
import { AiRequest } from "./ai-request.model";
import type { RecordAiRequestInput } from "./ai-request.input";
import { insertLedgerEntry, type LedgerEntry } from "./ledger";
import { AiRequestKind, AiRequestStatus } from "./usage.enums";

/** How far in the future a call's time may be (clock skew between a worker and the database). */
const FUTURE_SLACK_MS = 60_000;

const text = (value: string | null | undefined, field: string, max: number): string | null => (value == null ? null : trimmedText(value, field, max));

function count(value: number | null | undefined, field: string): number {
  if (value != null && value < 0) throw new BadUserInputError(`${field} must be 0 or more`, { field });
  return value ?? 0;
}

function optionalCount(value: number | null | undefined, field: string): number | null {
  return value == null ? null : count(value, field);
}

function score(value: number | null | undefined, field: string): number | null {
  if (value != null && !(value >= 0 && value <= 1)) throw new BadUserInputError(`${field} must be between 0 and 1`, { field });
  return value ?? null;
}

/** The input checked, before anything is read. */
function checked(input: RecordAiRequestInput) {
  const promptTokens = count(input.promptTokens, "promptTokens");
  const cachedTokens = count(input.cachedTokens, "cachedTokens");
  if (cachedTokens > promptTokens) throw new BadUserInputError("cachedTokens are part of promptTokens: at most promptTokens", { field: "cachedTokens" });
  const latencyMs = optionalCount(input.latencyMs, "latencyMs");
  const timeToFirstTokenMs = optionalCount(input.timeToFirstTokenMs, "timeToFirstTokenMs");
  if (latencyMs != null && timeToFirstTokenMs != null && timeToFirstTokenMs > latencyMs) {
    throw new BadUserInputError("timeToFirstTokenMs must not exceed latencyMs", { field: "timeToFirstTokenMs" });
  }
  if (input.costUsd != null && !(Number.isFinite(input.costUsd) && input.costUsd >= 0)) throw new BadUserInputError("costUsd must be 0 or more", { field: "costUsd" });
  if (input.guildId != null) checkDiscordId(input.guildId, "guildId");
  if (input.metadata != null) checkJson(input.metadata, "metadata", "object");
  if (input.occurredAt && input.occurredAt.getTime() > Date.now() + FUTURE_SLACK_MS) {
    throw new BadUserInputError("occurredAt must not be in the future", { field: "occurredAt" });
  }
  return {
    requestId: text(input.requestId, "requestId", 200)!,
    provider: text(input.provider, "provider", 100),
    model: text(input.model, "model", 200)!,
    kind: input.kind ?? AiRequestKind.CHAT,
    promptTokens,
    completionTokens: count(input.completionTokens, "completionTokens"),
    cachedTokens,
    latencyMs,
    timeToFirstTokenMs,
    status: input.status ?? AiRequestStatus.SUCCESS,
    errorCode: text(input.errorCode, "errorCode", 100),
    confidence: score(input.confidence, "confidence"),
    safety: score(input.safety, "safety"),
    relevance: score(input.relevance, "relevance"),
    costUsd: input.costUsd ?? null,
    metadata: input.metadata ?? {},
    occurredAt: input.occurredAt ?? null,
  };
}

/** Whom the call is billed to, in which conversation and guild; FORBIDDEN/NOT_FOUND as the reporter's rights say. */
async function billing(ctx: Actor, input: RecordAiRequestInput): Promise<{ userId: string; conversation: Conversation | null }> {
  const viewer = viewerOf(ctx);
  const conversation = input.conversationId ? await getConversation(ctx, input.conversationId) : null;
  if (input.messageId) {
    const message = await ctx.loaders.messageById.load(input.messageId);
    if (!conversation || message?.conversationId !== conversation.id) {
      throw new BadUserInputError("messageId must be a message of conversationId", { field: "messageId" });
    }
  }
  const userId = input.userId ?? conversation?.ownerId ?? viewer.id;
  if (userId !== viewer.id && !isAdmin(viewer)) {
    const mayBill = conversation && (userId === conversation.ownerId || (await isAuthorIn(ctx, conversation.id, userId)));
    if (!mayBill) throw new ForbiddenError("A service bills only the owner or an author of a conversation it may access, or itself");
  }
  if (userId !== viewer.id && !(await ctx.loaders.userById.load(userId))) throw new NotFoundError("User");
  return { userId, conversation };
}

async function isAuthorIn(ctx: Actor, conversationId: string, userId: string): Promise<boolean> {
  return !!(await ctx.db.knex("messages").where({ conversationId, authorId: userId }).first("id"));
}

/** The same call reported again: the fields that say what was used and by whom. */
function sameCall(row: AiRequest, entry: LedgerEntry): boolean {
  return (
    row.userId === entry.userId &&
    row.model === entry.model &&
    row.kind === entry.kind &&
    row.status === entry.status &&
    row.promptTokens === entry.promptTokens &&
    row.completionTokens === entry.completionTokens &&
    row.cachedTokens === entry.cachedTokens &&
    row.conversationId === entry.conversationId &&
    (entry.costUsd == null || row.costUsd === entry.costUsd)
  );
}

/**
 * A call to be priced from the catalogue must name a model it knows (unambiguously): a worker reporting an
 * unknown one learns at once to add it or to give the cost, rather than filling the ledger with UNKNOWN rows.
 * A known model without a price in force at the call's time is recorded as UNKNOWN.
 */
async function assertCatalogued(knex: Knex, entry: Pick<LedgerEntry, "model" | "provider">): Promise<void> {
  const models: { provider: string }[] = await knex("aiModels").where({ name: entry.model }).select("provider");
  const matching = entry.provider ? models.filter((model) => model.provider === entry.provider) : models;
  if (matching.length === 0) {
    throw new BadUserInputError(`The catalogue has no model ${entry.provider ? `${entry.provider}/` : ""}${entry.model}: add it (upsertAiModel) or give costUsd`, { field: "model" });
  }
  if (matching.length > 1) throw new BadUserInputError(`Several providers have a model named ${entry.model}: give provider`, { field: "provider" });
}

export async function recordAiRequest(ctx: Actor, input: RecordAiRequestInput): Promise<AiRequest> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.MEMBER) throw new ForbiddenError("Model calls are reported by services and admins");
  const call = checked(input);
  const { userId, conversation } = await billing(ctx, input);
  const entry: LedgerEntry = {
    ...call,
    userId,
    reportedBy: viewer.id,
    conversationId: conversation?.id ?? null,
    messageId: input.messageId ?? null,
    guildId: input.guildId ?? conversation?.discordGuildId ?? null,
  };
  const knex = ctx.db.knex;
  if (entry.costUsd == null) await assertCatalogued(knex, entry);
  const row = await insertLedgerEntry(knex, entry);
  if (row) return AiRequest.fromDatabaseJson(row);
  // On the ledger already (a retry, or a concurrent twin that committed first): that row, if it is the same call.
  const earlier = await AiRequest.query(knex).findOne({ reportedBy: viewer.id, requestId: entry.requestId });
  if (!earlier) throw new ConflictError("requestId is being recorded by a concurrent request; retry");
  if (!sameCall(earlier, entry)) throw new ConflictError("requestId was already used for a different model call");
  return earlier;
}
