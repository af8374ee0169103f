/**
 * The right to be forgotten: deleteUser(id, mode), for admins (not on themselves). Both modes remove the same
 * personal content; they differ in what stays for accounting:
 *
 * Removed in both modes
 * - the conversations the user OWNS, with everything in them (messages by anyone, transcripts, artifacts,
 *   feedback on them, Discord posts) — as deleteConversation does, files after the commit;
 * - in conversations of OTHERS, the USER messages the user wrote (also those a service relayed for them):
 *   emptied in place (content "", no ciphertext, tool calls and chunks gone, metadata replaced by
 *   { erasedAt }) rather than deleted, because deleting would tear a gap into someone else's seq order. Their
 *   ASSISTANT, SYSTEM and TOOL messages (a service's or admin's output) are that conversation's content and stay;
 * - transcripts asked for by the user, or of a conversation holding one of the erased messages (their files
 *   hold the text); the user's data exports; the user's feedback, assistants, own knowledge base (documents),
 *   query history and grants as a service;
 * - every way in: API keys (deleted, or revoked), and open websockets are closed on every server (the access
 *   channel, as for deactivateUser). A JWT of the identity provider no longer finds the user (external id
 *   cleared or row gone): signing in again would provision a new, empty account.
 *
 * What stays
 * - ANONYMIZE: a tombstone user row, "Deleted user", MEMBER, inactive, without email, external or Discord id
 *   and preferences; the usage ledger (ai_requests) and the cost roll-ups and budget stay on it, so spend per
 *   user still adds up; the user's activity counters go.
 * - DELETE: no user row. Ledger rows stay with a null user (spend that happened stays on record, per the usage
 *   migration); roll-ups, budget and alerts of the user go with the row. Other references (message authors,
 *   audit actors, who created a grant or a document) become null.
 * - Both: the audit log as it is (what was done, by whom, on which ids), plus one entry user.delete or
 *   user.anonymize with the counts, written in the deletion's transaction.
 *
 * Files are deleted after the commit, so a rollback never leaves rows whose files are gone; the rows are
 * locked (FOR UPDATE) in the deleting transaction, so an export or upload finishing meanwhile finds its row
 * gone and removes its own file (transcript.jobs.ts, artifact.service.ts).
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { isAdmin, viewerOf } from "../user/viewer";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { ACCESS_CHANNEL, EVENTS_CHANNEL, notify } from "../../db/notifications";
import { audit } from "../audit/audit.service";
import { publishConversationDeleted } from "../live/live.hub";
import { removeArtifactFiles } from "../artifact/artifact.service";
import { MessageRole } from "../message/message.enums";
import { Role } from "../user/role.enum";
import { User } from "../user/user.model";
import { DeleteUserMode } from "./privacy.enums";
import { type DeletionCounts, UserDeletion } from "./user-deletion.types";

/** The display name of an anonymized user. */
export const TOMBSTONE_NAME = "Deleted user";

async function count(query: Knex.QueryBuilder): Promise<number> {
  const [{ n }] = (await query.count("* as n")) as { n: string | number }[];
  return Number(n);
}

function keysOf(rows: { storageKey: string | null }[]): string[] {
  return rows.flatMap((row) => (row.storageKey ? [row.storageKey] : []));
}

/**
 * Empties the USER messages `userId` wrote in conversations owned by others, in one statement that also announces
 * each change to live streams (publishMessageUpdated, as SQL: a user may have written thousands of them).
 */
async function eraseMessagesElsewhere(trx: Knex.Transaction, userId: string): Promise<{ id: string; conversationId: string }[]> {
  const erasedAt = JSON.stringify({ erasedAt: new Date().toISOString() });
  const result = (await trx.raw(
    `update messages m
        set content = '', encrypted_content = null, key_id = null, tool_calls = null, chunk_count = 0, metadata = ?::jsonb
      where m.author_id = ? and m.role = ?
        and not exists (select 1 from conversations c where c.id = m.conversation_id and c.owner_id = ?)
      returning m.id, m.conversation_id as conversation_id,
        pg_notify(?, json_build_object('t', 'updated', 'c', m.conversation_id, 's', m.seq)::text) as notified`,
    [erasedAt, userId, MessageRole.USER, userId, EVENTS_CHANNEL],
  )) as { rows: { id: string; conversation_id: string }[] };
  return result.rows.map((row) => ({ id: row.id, conversationId: row.conversation_id }));
}

export async function deleteUser(ctx: Actor, id: string, mode: DeleteUserMode): Promise<UserDeletion> {
  const viewer = viewerOf(ctx);
  if (!isAdmin(viewer)) throw new ForbiddenError("User management is for admins");
  if (mode !== DeleteUserMode.ANONYMIZE && mode !== DeleteUserMode.DELETE) throw new BadUserInputError("mode must be ANONYMIZE or DELETE", { field: "mode" });
  if (id === viewer.id) throw new ForbiddenError("Admins cannot delete or anonymize themselves");

  // On the maintenance pool: a user of years may own thousands of conversations, more than the API's statement
  // timeout lets one statement delete.
  const done = await ctx.db.maintenance.transaction(async (trx) => {
    // The row lock queues concurrent deletions of the user, and writes that reference the user (their foreign key
    // checks) until this commits.
    const found = await trx("users").where({ id }).forUpdate().first("id");
    if (!found) throw new NotFoundError("User");
    const owned = () => trx("conversations").select("id").where({ ownerId: id });

    // Stop writers of the user's conversations (they are deleted below) and read what goes with them.
    const conversations: { id: string }[] = await trx("conversations").where({ ownerId: id }).forUpdate().select("id");
    const messages = await count(trx("messages").whereIn("conversationId", owned()));
    const artifactRows: { storageKey: string | null }[] = await trx("artifacts").whereIn("conversationId", owned()).forUpdate().select("storageKey");

    await trx("message_chunks")
      .whereIn("messageId", trx("messages as m").select("m.id").where({ "m.authorId": id, "m.role": MessageRole.USER }).whereNotIn("m.conversationId", owned()))
      .delete()
      .returning("messageId");
    const erased = await eraseMessagesElsewhere(trx, id);
    const erasedIn = [...new Set(erased.map((row) => row.conversationId))];

    const transcriptRows: { id: string; storageKey: string | null }[] = await trx("transcripts")
      .where((q) => q.whereIn("conversationId", owned()).orWhere("createdBy", id).orWhereIn("conversationId", erasedIn))
      .forUpdate()
      .select("id", "storageKey");
    if (transcriptRows.length) await trx("transcripts").whereIn("id", transcriptRows.map((row) => row.id)).delete().returning("id");
    const exportRows: { storageKey: string | null }[] = await trx("data_exports").where({ userId: id }).del().returning("storageKey");

    const feedback = await trx("feedback").where({ userId: id }).del().returning("id");
    const documents = await count(trx("documents").whereIn("knowledgeBaseId", trx("knowledge_bases").select("id").where({ userId: id })));
    await trx("knowledge_bases").where({ userId: id }).del().returning("id");
    const queryHistory = await trx("query_history").where({ userId: id }).del().returning("id");
    const assistants = await trx("assistants").where({ ownerId: id }).del().returning("id");
    const serviceGrants = await trx("service_grants").where({ serviceId: id }).del().returning("id");
    // Their open streams end with NOT_FOUND, as after deleteConversation.
    for (const conversation of conversations) await publishConversationDeleted(trx, conversation.id, id);
    await trx("conversations").where({ ownerId: id }).del().returning("id");
    const usageRecordsKept = await count(trx("ai_requests").where({ userId: id }));

    let apiKeys: number;
    let user: User | null = null;
    if (mode === DeleteUserMode.DELETE) {
      apiKeys = await count(trx("api_keys").where({ userId: id }));
      await trx("users").where({ id }).del().returning("id"); // the rest goes by cascade or is set null
    } else {
      apiKeys = (await trx("api_keys").where({ userId: id }).whereNull("revokedAt").update({ revokedAt: trx.fn.now() }).returning("id")).length;
      await trx("user_activity").where({ userId: id }).del().returning("userId");
      [user] = (await User.query(trx)
        .patch({ displayName: TOMBSTONE_NAME, role: Role.MEMBER, email: null, externalId: null, discordId: null, preferences: {}, isActive: false })
        .where({ id })
        .returning("*")) as unknown as User[];
    }
    const transcriptKeys = [...keysOf(transcriptRows), ...keysOf(exportRows)];
    const artifactKeys = keysOf(artifactRows);
    const counts: DeletionCounts = {
      conversations: conversations.length,
      messages,
      erasedMessages: erased.length,
      feedback: feedback.length,
      transcripts: transcriptRows.length,
      artifacts: artifactRows.length,
      dataExports: exportRows.length,
      apiKeys,
      serviceGrants: serviceGrants.length,
      assistants: assistants.length,
      documents,
      queryHistory: queryHistory.length,
      files: transcriptKeys.length + artifactKeys.length,
      usageRecordsKept,
    };
    const action = mode === DeleteUserMode.DELETE ? "user.delete" : "user.anonymize";
    await audit(ctx, { action, targetType: "user", targetId: id, details: { ...counts } }, trx);
    // Every server drops the user's cached keys and closes their websockets.
    await notify(trx, ACCESS_CHANNEL, { userId: id });
    return { counts, user, transcriptKeys, artifactKeys };
  });

  ctx.apiKeyCache?.clear(); // this process at once; the others when the notification arrives
  ctx.loaders.userById.clear(id);
  if (done.user) ctx.loaders.userById.prime(id, done.user);
  if (!ctx.transcripts && done.counts.files > 0) ctx.log.error({ keys: [...done.transcriptKeys, ...done.artifactKeys] }, "no storage to delete the files of a deleted user");
  await ctx.transcripts?.removeFiles(done.transcriptKeys);
  await removeArtifactFiles(ctx, done.artifactKeys);
  return Object.assign(new UserDeletion(), { userId: id, mode, user: done.user, ...done.counts });
}
