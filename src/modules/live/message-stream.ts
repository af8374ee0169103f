/**
 * messageAdded: every stored message of a conversation after `afterSeq`, in seq order, then each new one as
 * it commits, with no gap and no duplicate at the hand-over. The stream watches the conversation BEFORE it
 * reads anything, so a message committed while it catches up rings its bell, and it always reads on from the
 * last seq it delivered, so an early, late, doubled or lost notification changes nothing.
 */
import type { Context } from "../../graphql/context";
import { renewLoaders } from "../../graphql/context";
import { BadUserInputError } from "../../graphql/errors";
import { getConversation } from "../conversation/conversation.service";
import { Message } from "../message/message.model";
import { Doorbell } from "./live.hub";

/** Rows read per query while catching up. */
const PAGE = 100;

/**
 * How a stream ends with an error: graphql-ws answers an iterator that throws by closing the socket, so the
 * error is delivered as the stream's last event instead (the field resolver throws it) and the stream ends.
 */
export class StreamError {
  constructor(readonly error: unknown) {}
}

export async function subscribeMessageAdded(
  ctx: Context,
  conversationId: string,
  afterSeq: number | null | undefined,
): Promise<AsyncIterableIterator<Message | StreamError>> {
  if (afterSeq != null && afterSeq < 0) throw new BadUserInputError("afterSeq must be 0 or more", { field: "afterSeq" });
  const hub = ctx.live;
  if (!hub) throw new Error("Live events need a running server");
  await getConversation(ctx, conversationId); // NOT_FOUND before anything is streamed
  const knex = ctx.db.knex;
  const bell = new Doorbell();
  const unwatch = hub.watch(conversationId, bell);

  async function* stream(): AsyncGenerator<Message | StreamError> {
    try {
      // Read after watching: whatever commits later rings the bell.
      let last = afterSeq ?? ((await knex("conversations").where({ id: conversationId }).first("last_seq"))?.lastSeq as number | undefined) ?? 0;
      for (;;) {
        bell.clear();
        if (bell.recheck) {
          bell.recheck = false;
          renewLoaders(ctx);
          await getConversation(ctx, conversationId); // deleted, or the viewer's grant revoked: NOT_FOUND
        }
        const rows = await Message.query(knex).where({ conversationId }).where("seq", ">", last).orderBy("seq").limit(PAGE);
        for (const row of rows) {
          last = row.seq;
          renewLoaders(ctx); // each event is resolved with fresh loaders
          yield row;
        }
        if (rows.length === PAGE) continue;
        await bell.wait();
        if (bell.closed) return;
      }
    } catch (error) {
      yield new StreamError(error);
    } finally {
      unwatch();
    }
  }

  const events = stream();
  const iterator: AsyncIterableIterator<Message | StreamError> = {
    next: () => events.next(),
    // A generator waiting on its bell would take a return() only at its next yield: wake it to end now.
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
