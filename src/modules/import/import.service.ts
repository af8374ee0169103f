/**
 * `npm run cli -- import --from chatgpt|jsonl FILE --owner USER`: conversations from another chat app into
 * Parley, owned by one user. A reader turns the file into conversations and messages as it reads it (constant
 * memory); this drives the writer, one transaction per conversation or per BATCH of its messages, and counts
 * what happened for the summary. Running it again stores nothing new, and completes what a stopped run left.
 */
import type { Knex } from "knex";
import { actorFor, type ActorDeps } from "../actor";
import { User } from "../user/user.model";
import { BadUserInputError } from "../../graphql/errors";
import type { Progress } from "../../progress";
import { readChatGpt } from "./chatgpt.reader";
import { readJsonl } from "./jsonl.reader";
import { importedConversationId, importedRequestId, writeBatch, type ImportTarget, type ReadyMessage } from "./import.writer";
import { ImportSource, SKIP_REASONS, SkipLog, type ImportItem, type ImportSummary, type SourceConversation, type SourceMessage } from "./import.types";

/** Messages per transaction: a conversation up to this size is written whole or not at all. */
export const BATCH = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The owner: a user id, or the display name of exactly one active user. A name two users share is refused
 * (naming the ids to choose from) rather than guessed.
 */
export async function findOwner(knex: Knex, given: string): Promise<User> {
  const value = given.trim();
  if (UUID.test(value)) {
    const user = await User.query(knex).findById(value.toLowerCase());
    if (!user || !user.isActive) throw new BadUserInputError(`--owner: no active user has the id ${value}`);
    return user;
  }
  const users = await User.query(knex).where({ displayName: value, isActive: true }).orderBy("createdAt").limit(6);
  if (users.length === 0) throw new BadUserInputError(`--owner: no active user is named "${value}" (give a user id or an exact display name)`);
  if (users.length > 1) {
    throw new BadUserInputError(`--owner: "${value}" names more than one user; give the id of one of them: ${users.map((user) => user.id).join(", ")}`);
  }
  return users[0];
}

export interface ImportOptions {
  source: ImportSource;
  file: string;
  /** A user id or an exact display name (findOwner). */
  owner: string;
  onProgress?: (progress: Progress) => void;
}

/** One conversation of the file while its messages are read. */
interface Open {
  target: ImportTarget;
  batch: ReadyMessage[];
  /** Whether the conversation was there before this run; known after its first batch. */
  existed: boolean | undefined;
  written: number;
  /** The time of the last message, for a message without one. */
  lastTime: Date | null;
}

export async function importConversations(deps: ActorDeps, options: ImportOptions): Promise<ImportSummary> {
  // The maintenance pool: a long import must not meet the API's statement timeout.
  const knex = deps.db.maintenance;
  const owner = await findOwner(knex, options.owner);
  const actor = actorFor(deps, { id: owner.id, role: owner.role, displayName: owner.displayName });
  const { source } = options;
  const skips = new SkipLog();
  const summary: ImportSummary = {
    source,
    owner: { id: owner.id, displayName: owner.displayName },
    conversations: { imported: 0, completed: 0, present: 0 },
    messages: { imported: 0, present: 0 },
    skipped: skips,
  };
  const started = new Date();
  const onBytes = (done: number, total: number) => options.onProgress?.({ done, total });
  const items: AsyncIterable<ImportItem> = source === ImportSource.CHATGPT ? readChatGpt(options.file, skips, onBytes) : readJsonl(options.file, skips, onBytes);

  const open = (conversation: SourceConversation): Open => ({
    target: { id: importedConversationId(owner.id, source, conversation.sourceId), source, conversation, createdAt: conversation.createdAt ?? started },
    batch: [],
    existed: undefined,
    written: 0,
    lastTime: conversation.createdAt,
  });

  const flush = async (current: Open, last: boolean) => {
    const { target, batch } = current;
    // Without a time of its own, the conversation started with its first message.
    if (current.existed === undefined && !target.conversation.createdAt && batch.length) target.createdAt = batch[0].createdAt;
    const result = await writeBatch(knex, actor, target, batch, last ? { wroteBefore: current.written > 0 } : null, skips);
    current.existed ??= !result.created;
    current.written += result.written;
    summary.messages.imported += result.written;
    summary.messages.present += result.present;
    current.batch = [];
    if (!last) return;
    if (!current.existed) summary.conversations.imported++;
    else if (current.written > 0) summary.conversations.completed++;
    else summary.conversations.present++;
  };

  const ready = (current: Open, message: SourceMessage): ReadyMessage | undefined => {
    if (message.content.includes("\u0000") || message.model?.includes("\u0000")) {
      skips.note("nul-character", message.where);
      return undefined;
    }
    // The hard limit of every message; MAX_USER_MESSAGE_LENGTH is a rule for new messages, not for history.
    const limit = deps.config.maxMessageLength;
    if (message.content.length > limit && [...message.content].length > limit) {
      skips.note("too-long", message.where);
      return undefined;
    }
    const createdAt = message.createdAt ?? current.lastTime ?? current.target.createdAt;
    current.lastTime = createdAt;
    return { ...message, createdAt, requestId: importedRequestId(source, current.target.conversation.sourceId, message.sourceId) };
  };

  let current: Open | undefined;
  for await (const item of items) {
    if (item.kind === "conversation") {
      if (current) await flush(current, true);
      current = open(item.conversation);
      continue;
    }
    const message = ready(current!, item.message); // readers yield messages only after their conversation
    if (!message) continue;
    current!.batch.push(message);
    if (current!.batch.length === BATCH) await flush(current!, false);
  }
  if (current) await flush(current, true);
  return summary;
}

/** The summary as the CLI prints it: counts, then each reason things were left out with its first places. */
export function summaryLines(summary: ImportSummary): string[] {
  const { conversations: c, messages: m } = summary;
  const lines = [
    `Imported from ${summary.source} for ${summary.owner.displayName} (${summary.owner.id}):`,
    `  conversations: ${c.imported} imported, ${c.completed} completed (partly there before), ${c.present} already present`,
    `  messages: ${m.imported} imported, ${m.present} already present`,
  ];
  const reasons = [...summary.skipped.reasons.entries()];
  lines.push(reasons.length ? "  skipped or dropped:" : "  nothing skipped");
  for (const [reason, { count, examples }] of reasons) {
    lines.push(`    ${reason}: ${count} (${SKIP_REASONS[reason]}), e.g. ${examples.join("; ")}`);
  }
  return lines;
}
