/**
 * conversationsChanged: keeps a frontend's conversation list current. Every change to a conversation the
 * viewer owns (created, renamed, archived, a new message, deleted) is sent as the conversation as it is now,
 * or as `deleted`. Changes are read when their notification arrives, in updatedAt order within a batch; if
 * notifications may have been missed (the LISTEN connection dropped), the most recent conversations are sent
 * again. There is no catch-up from a position: load the list with `conversations` after subscribing.
 */
import { Field, ObjectType } from "type-graphql";
import type { Actor } from "../actor";
import { renewLoaders } from "../actor";
import { viewerOf } from "../user/viewer";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Conversation } from "../conversation/conversation.model";
import { InboxBell } from "./live.hub";
import { liveHubOf, PAGE } from "./message-stream";
import { openLiveStream, StreamError } from "./live-stream";

@ObjectType({ description: "A conversation of yours changed, or was deleted" })
export class ConversationChange {
  @Field(() => UUIDScalar)
  conversationId: string;

  @Field(() => Conversation, { nullable: true, description: "The conversation as it is now; null when deleted" })
  conversation: Conversation | null;

  @Field()
  deleted: boolean;
}

const change = (conversationId: string, conversation: Conversation | null): ConversationChange =>
  Object.assign(new ConversationChange(), { conversationId, conversation, deleted: conversation === null });

export async function subscribeConversationsChanged(ctx: Actor): Promise<AsyncIterableIterator<ConversationChange | StreamError>> {
  const viewer = viewerOf(ctx);
  const hub = liveHubOf(ctx);
  const live = openLiveStream(ctx, { reload: "the list with conversations" });
  const knex = ctx.db.knex;
  const bell = new InboxBell();
  const unwatch = hub.watchInbox(viewer.id, bell);

  /** The changes' conversations as they are now (deleted ones absent), and the recent ones too after a recheck. */
  async function read(changes: Map<string, boolean>, recheck: boolean): Promise<Conversation[]> {
    if (recheck) {
      const recent: { id: string }[] = await knex("conversations").where({ ownerId: viewer.id }).orderBy("updatedAt", "desc").limit(PAGE).select("id");
      for (const { id } of recent) if (!changes.has(id)) changes.set(id, false);
    }
    const ids = [...changes].filter(([, deleted]) => !deleted).map(([id]) => id);
    return ids.length
      ? Conversation.query(knex).whereIn("id", ids).where("ownerId", viewer.id).orderBy([{ column: "updatedAt" }, { column: "id" }])
      : [];
  }

  async function* stream(): AsyncGenerator<ConversationChange | StreamError> {
    try {
      for (;;) {
        await bell.wait();
        if (bell.closed) return;
        bell.clear();
        const changes = bell.changed;
        bell.changed = new Map();
        const recheck = bell.recheck;
        bell.recheck = false;
        let rows: Conversation[];
        try {
          rows = await read(changes, recheck);
          live.recovered();
        } catch (error) {
          if (!(await live.retry(error, bell))) throw error;
          // Nothing is lost: the changes go back to be read with any that came meanwhile, and, as
          // notifications may have been missed while the database was away, the recent ones too.
          for (const [id, deleted] of changes) bell.note(id, deleted);
          bell.ring(true);
          continue;
        }
        const found = new Set(rows.map((row) => row.id));
        // Deleted, or gone between the notification and the read.
        for (const [id] of changes) if (!found.has(id)) yield change(id, null);
        for (const row of rows) {
          renewLoaders(ctx);
          ctx.loaders.conversationById.prime(row.id, row);
          yield change(row.id, row);
        }
      }
    } catch (error) {
      yield new StreamError(error);
    } finally {
      unwatch();
    }
  }
  return live.iterator(stream(), bell, unwatch);
}
