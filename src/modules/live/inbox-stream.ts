/**
 * conversationsChanged: keeps a frontend's conversation list current. Every change to a conversation the
 * viewer owns (created, renamed, archived, a new message, deleted) is sent as the conversation as it is now,
 * or as `deleted`. Changes are read when their notification arrives, in updatedAt order within a batch; if
 * notifications may have been missed (the LISTEN connection dropped), the most recent conversations are sent
 * again. There is no catch-up from a position: load the list with `conversations` after subscribing.
 */
import { Field, ObjectType } from "type-graphql";
import type { Context } from "../../graphql/context";
import { renewLoaders, viewerOf } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Conversation } from "../conversation/conversation.model";
import { InboxBell } from "./live.hub";
import { liveHubOf, liveIterator, PAGE, StreamError } from "./message-stream";

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

export async function subscribeConversationsChanged(ctx: Context): Promise<AsyncIterableIterator<ConversationChange | StreamError>> {
  const viewer = viewerOf(ctx);
  const hub = liveHubOf(ctx);
  const knex = ctx.db.knex;
  const bell = new InboxBell();
  const unwatch = hub.watchInbox(viewer.id, bell);

  async function* stream(): AsyncGenerator<ConversationChange | StreamError> {
    try {
      for (;;) {
        await bell.wait();
        if (bell.closed) return;
        bell.clear();
        const changes = bell.changed;
        bell.changed = new Map();
        if (bell.recheck) {
          bell.recheck = false;
          const recent: { id: string }[] = await knex("conversations").where({ ownerId: viewer.id }).orderBy("updatedAt", "desc").limit(PAGE).select("id");
          for (const { id } of recent) if (!changes.has(id)) changes.set(id, false);
        }
        const ids = [...changes].filter(([, deleted]) => !deleted).map(([id]) => id);
        const rows = ids.length
          ? await Conversation.query(knex).whereIn("id", ids).where("ownerId", viewer.id).orderBy([{ column: "updatedAt" }, { column: "id" }])
          : [];
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
  return liveIterator(stream(), bell, unwatch);
}
