/**
 * Conversation streams (messageAdded, conversationEvents): every stored message of a conversation after
 * `afterSeq`, in seq order, then each change as it commits, with no gap and no duplicate at the hand-over.
 * A stream watches the conversation BEFORE it reads anything, so whatever commits while it catches up rings
 * its bell, and it always reads on from the position it has delivered, so an early, late, doubled or lost
 * notification changes nothing.
 */
import type { Context } from "../../graphql/context";
import { renewLoaders } from "../../graphql/context";
import { BadUserInputError } from "../../graphql/errors";
import { getConversation } from "../conversation/conversation.service";
import { Message } from "../message/message.model";
import { Doorbell, type LiveHub } from "./live.hub";

/** Rows read per query while catching up. */
export const PAGE = 100;

/**
 * How a stream ends with an error: graphql-ws answers an iterator that throws by closing the socket, so the
 * error is delivered as the stream's last event instead (the field resolver throws it) and the stream ends.
 */
export class StreamError {
  constructor(readonly error: unknown) {}
}

/** What a subscription's field resolver returns for an event: the event, or the stream's final error thrown. */
export function eventOrThrow<T>(event: T | StreamError): T {
  if (event instanceof StreamError) throw event.error;
  return event;
}

/** The process's live hub; live streams exist only in a running server (not the CLI or seeds). */
export function liveHubOf(ctx: Context): LiveHub {
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
  ctx: Context,
  conversationId: string,
  afterSeq: number | null | undefined,
  step: StreamStep<T>,
): Promise<AsyncIterableIterator<T | StreamError>> {
  if (afterSeq != null && afterSeq < 0) throw new BadUserInputError("afterSeq must be 0 or more", { field: "afterSeq" });
  const hub = liveHubOf(ctx);
  await getConversation(ctx, conversationId); // NOT_FOUND before anything is streamed
  const knex = ctx.db.knex;
  const bell = new Doorbell();
  const unwatch = hub.watch(conversationId, bell);

  async function* stream(): AsyncGenerator<T | StreamError> {
    try {
      // Read after watching: whatever commits later rings the bell.
      const start = afterSeq ?? ((await knex("conversations").where({ id: conversationId }).first("last_seq"))?.lastSeq as number | undefined) ?? 0;
      const cursor: StreamCursor = { seq: start, first: true };
      for (;;) {
        bell.clear();
        if (bell.recheck) {
          bell.recheck = false;
          renewLoaders(ctx);
          await getConversation(ctx, conversationId); // deleted, or the viewer's grant revoked: NOT_FOUND
        }
        const more = yield* step(cursor);
        cursor.first = false;
        if (more) continue;
        await bell.wait();
        if (bell.closed) return;
      }
    } catch (error) {
      yield new StreamError(error);
    } finally {
      unwatch();
    }
  }

  return liveIterator(stream(), bell, unwatch);
}

/**
 * The iterator graphql-ws consumes. A generator waiting on its bell would take a return() only at its next
 * yield, so return() first wakes it (and stops watching) to end at once.
 */
export function liveIterator<T>(events: AsyncGenerator<T>, bell: Doorbell, unwatch: () => void): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    next: () => events.next(),
    return: (value?: unknown) => {
      bell.close();
      unwatch();
      return events.return(value as never);
    },
    throw: (error?: unknown) => events.throw(error),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** The messages after the cursor, one page: one query for all the conversation's streams at that seq. */
export function messagesAfter(ctx: Context, conversationId: string, seq: number): Promise<Message[]> {
  return liveHubOf(ctx).shared(conversationId, `after:${seq}`, async () =>
    Message.query(ctx.db.knex).where({ conversationId }).where("seq", ">", seq).orderBy("seq").limit(PAGE),
  );
}

/** messageAdded: new messages only. */
export function subscribeMessageAdded(ctx: Context, conversationId: string, afterSeq: number | null | undefined) {
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
