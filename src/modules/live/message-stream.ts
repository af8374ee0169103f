/**
 * Conversation streams (messageAdded, conversationEvents): every stored message of a conversation after
 * `afterSeq`, in seq order, then each change as it commits, with no gap and no duplicate at the hand-over.
 * A stream watches the conversation BEFORE it reads anything, so whatever commits while it catches up rings
 * its bell, and it always reads on from the position it has delivered, so an early, late, doubled or lost
 * notification changes nothing.
 */
import type { Actor } from "../actor";
import { renewLoaders } from "../actor";
import { BadUserInputError } from "../../graphql/errors";
import { getConversation } from "../conversation/conversation.service";
import { Message } from "../message/message.model";
import { Doorbell, type LiveHub } from "./live.hub";
import { openLiveStream, StreamError } from "./live-stream";

/** Rows read per query while catching up. */
export const PAGE = 100;

/** The process's live hub; live streams exist only in a running server (not the CLI or seeds). */
export function liveHubOf(ctx: Actor): LiveHub {
  if (!ctx.live) throw new Error("Live events need a running server");
  return ctx.live;
}

/** Where a stream stands: the seq of the last message it delivered. */
export interface StreamCursor {
  seq: number;
  /** True on the first read after subscribing (a resumed stream may owe snapshots). */
  first: boolean;
}

/**
 * One read of a stream: yields the events it found after `cursor` (moving it), and returns true when there
 * may be more right away (a full page), false when it is up to date.
 */
export type StreamStep<T> = (cursor: StreamCursor) => AsyncGenerator<T, boolean>;

export async function openConversationStream<T>(
  ctx: Actor,
  conversationId: string,
  afterSeq: number | null | undefined,
  step: StreamStep<T>,
): Promise<AsyncIterableIterator<T | StreamError>> {
  if (afterSeq != null && afterSeq < 0) throw new BadUserInputError("afterSeq must be 0 or more", { field: "afterSeq" });
  const hub = liveHubOf(ctx);
  const live = openLiveStream(ctx, { position: afterSeq ?? null });
  await getConversation(ctx, conversationId); // NOT_FOUND before anything is streamed
  const knex = ctx.db.knex;
  const bell = new Doorbell();
  const unwatch = hub.watch(conversationId, bell);

  async function* stream(): AsyncGenerator<T | StreamError> {
    let cursor: StreamCursor | undefined;
    try {
      for (;;) {
        bell.clear();
        try {
          // Read after watching: whatever commits later rings the bell.
          if (!cursor) {
            const start = afterSeq ?? ((await knex("conversations").where({ id: conversationId }).first("last_seq"))?.lastSeq as number | undefined) ?? 0;
            cursor = { seq: start, first: true };
            live.started(start);
          }
          if (bell.recheck) {
            bell.recheck = false;
            renewLoaders(ctx);
            await getConversation(ctx, conversationId); // deleted, or the viewer's grant revoked: NOT_FOUND
          }
          // Each event says where it would leave the client, so the transport can tell how far it got.
          const events = step(cursor);
          let next;
          while (!(next = await events.next()).done) {
            live.pending = cursor.seq;
            yield next.value;
          }
          cursor.first = false;
          live.recovered();
          if (next.value) continue;
        } catch (error) {
          if (!(await live.retry(error, bell))) throw error;
          if (bell.closed) return;
          bell.recheck = true; // access notifications may have been missed meanwhile too
          continue;
        }
        await bell.wait();
        if (bell.closed) return;
      }
    } catch (error) {
      yield new StreamError(error);
    } finally {
      unwatch();
    }
  }

  return live.iterator(stream(), bell, unwatch);
}

/** The messages after the cursor, one page: one query for all the conversation's streams at that seq. */
export function messagesAfter(ctx: Actor, conversationId: string, seq: number): Promise<Message[]> {
  return liveHubOf(ctx).shared(conversationId, `after:${seq}`, async () =>
    Message.query(ctx.db.knex).where({ conversationId }).where("seq", ">", seq).orderBy("seq").limit(PAGE),
  );
}

/** messageAdded: new messages only. */
export function subscribeMessageAdded(ctx: Actor, conversationId: string, afterSeq: number | null | undefined) {
  return openConversationStream<Message>(ctx, conversationId, afterSeq, async function* (cursor) {
    const rows = await messagesAfter(ctx, conversationId, cursor.seq);
    for (const row of rows) {
      cursor.seq = row.seq;
      renewLoaders(ctx); // each event is resolved with fresh loaders
      yield row;
    }
    return rows.length === PAGE;
  });
}
