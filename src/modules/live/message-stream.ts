/**
 * Conversation streams (messageAdded, conversationEvents): every stored message of a conversation after
 * `afterSeq`, in seq order, then each change as it commits, with no gap and no duplicate at the hand-over.
 * A stream watches the conversation BEFORE it reads anything, so whatever commits while it catches up rings
 * its bell, and it always reads on from the position it has delivered, so an early, late, doubled or lost
 * notification changes nothing.
 *
 * Where a stream stands is a value (FeedState), not hidden in closures: over websockets one stream serves a
 * whole group of subscribers (fan-out.ts), which can hand a subscriber that falls behind a copy of it, and
 * merge two groups that stand at the same place.
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

/** Where a conversation stream stands: what its subscribers have been sent. */
export interface FeedState {
  /** The seq of the last message delivered; null until a live-only stream has read where it starts. */
  seq: number | null;
  /** A resumed conversationEvents stream, before its first read: the seqs it owes a snapshot of (streamingSeqs). */
  resume?: readonly number[];
  /** conversationEvents: the STREAMING messages sent (by id), with how many of their chunks were sent. */
  streaming: Map<string, number>;
}

export function feedState(afterSeq: number | null | undefined, resume?: readonly number[]): FeedState {
  return { seq: afterSeq ?? null, resume: afterSeq == null ? undefined : resume, streaming: new Map() };
}

export function copyFeedState(state: FeedState): FeedState {
  return { seq: state.seq, resume: state.resume, streaming: new Map(state.streaming) };
}

/** True when two streams would send the same events from here on. */
export function sameFeedState(a: FeedState, b: FeedState): boolean {
  if (a.seq === null || a.seq !== b.seq || a.resume || b.resume || a.streaming.size !== b.streaming.size) return false;
  for (const [id, sent] of a.streaming) if (b.streaming.get(id) !== sent) return false;
  return true;
}

/**
 * One read of a stream: yields the events it found after `state` (moving it as each is yielded), and returns
 * true when there may be more right away (a full page), false when it is up to date.
 */
export type StreamStep<T> = (ctx: Actor, conversationId: string, state: FeedState) => AsyncGenerator<T, boolean>;

/** What a stream's owner decides; a stream of one subscriber (the default) has nothing else to consult. */
export interface StreamHooks {
  /** After a change of access (or a missed notification): throws (NOT_FOUND) when the stream must end. */
  recheck(): Promise<void>;
  /** Before each read. */
  beforeRead?(): Promise<void>;
  /** Up to date, before sleeping until the next event: true ends the stream (its subscribers went elsewhere). */
  idle?(): boolean;
}

/** Checks that the viewer may still read the conversation (deleted, or a grant revoked: NOT_FOUND). */
export function recheckAccess(ctx: Actor, conversationId: string): Promise<void> {
  renewLoaders(ctx);
  return getConversation(ctx, conversationId).then(() => undefined);
}

/** Refuses what no stream can start from. */
export function checkAfterSeq(afterSeq: number | null | undefined): void {
  if (afterSeq != null && afterSeq < 0) throw new BadUserInputError("afterSeq must be 0 or more", { field: "afterSeq" });
}

/**
 * The stream's events from `state` on, in `ctx`'s name (its loaders, its LiveStream), until the returned
 * iterator's return(). Access must have been checked by the caller; the stream checks it again on every
 * access change.
 */
export function openConversationStream<T>(
  ctx: Actor,
  conversationId: string,
  state: FeedState,
  step: StreamStep<T>,
  hooks: StreamHooks = { recheck: () => recheckAccess(ctx, conversationId) },
): AsyncIterableIterator<T | StreamError> {
  const hub = liveHubOf(ctx);
  const live = openLiveStream(ctx, { position: state.seq });
  const knex = ctx.db.knex;
  const bell = new Doorbell();
  const unwatch = hub.watch(conversationId, bell);

  async function* stream(): AsyncGenerator<T | StreamError> {
    try {
      for (;;) {
        bell.clear();
        try {
          // Read after watching: whatever commits later rings the bell.
          if (state.seq === null) {
            state.seq = ((await knex("conversations").where({ id: conversationId }).first("last_seq"))?.lastSeq as number | undefined) ?? 0;
            live.started(state.seq);
          }
          if (bell.recheck) {
            bell.recheck = false;
            await hooks.recheck();
          }
          await hooks.beforeRead?.();
          if (bell.closed) return;
          // Each event says where it would leave the client, so the transport can tell how far it got.
          const events = step(ctx, conversationId, state);
          let next;
          while (!(next = await events.next()).done) {
            live.pending = state.seq;
            yield next.value;
          }
          live.recovered();
          if (next.value) continue;
        } catch (error) {
          if (!(await live.retry(error, bell))) throw error;
          if (bell.closed) return;
          bell.recheck = true; // access notifications may have been missed meanwhile too
          continue;
        }
        if (hooks.idle?.()) return;
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

/** The messages after `seq`, one page: one query for all the conversation's streams at that seq. */
export function messagesAfter(ctx: Actor, conversationId: string, seq: number): Promise<Message[]> {
  return liveHubOf(ctx).shared(conversationId, `after:${seq}`, async () =>
    Message.query(ctx.db.knex).where({ conversationId }).where("seq", ">", seq).orderBy("seq").limit(PAGE),
  );
}

/** messageAdded: new messages only. */
export const messageAddedStep: StreamStep<Message> = async function* (ctx, conversationId, state) {
  const rows = await messagesAfter(ctx, conversationId, state.seq!);
  for (const row of rows) {
    state.seq = row.seq;
    renewLoaders(ctx); // each event is resolved with fresh loaders
    yield row;
  }
  return rows.length === PAGE;
};
