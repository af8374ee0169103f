/**
 * A conversation subscription, checked and not started yet: the conversation, where to start, and how to
 * read on (messageAdded or conversationEvents). Iterated, it is one subscriber's own stream (in-process
 * callers such as the Discord adapter). The websocket transport does not iterate it: it hands it to the
 * fan-out (fan-out.ts), which serves every subscriber of the same shape from one stream.
 */
import type { Actor } from "../actor";
import { getConversation } from "../conversation/conversation.service";
import { Message } from "../message/message.model";
import type { StreamError } from "./live-stream";
import { checkAfterSeq, copyFeedState, feedState, liveHubOf, messageAddedStep, openConversationStream, type FeedState, type StreamStep } from "./message-stream";

export class ConversationFeed<T> implements AsyncIterable<T | StreamError> {
  constructor(
    readonly ctx: Actor,
    readonly conversationId: string,
    readonly start: FeedState,
    readonly step: StreamStep<T>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T | StreamError> {
    return openConversationStream(this.ctx, this.conversationId, copyFeedState(this.start), this.step);
  }
}

/** Checks a conversation subscription (afterSeq, NOT_FOUND) before anything is streamed. */
export async function openConversationFeed<T>(ctx: Actor, conversationId: string, start: FeedState, step: StreamStep<T>): Promise<ConversationFeed<T>> {
  checkAfterSeq(start.seq);
  liveHubOf(ctx);
  await getConversation(ctx, conversationId);
  return new ConversationFeed(ctx, conversationId, start, step);
}

/** messageAdded: new messages only. */
export function subscribeMessageAdded(ctx: Actor, conversationId: string, afterSeq: number | null | undefined): Promise<ConversationFeed<Message>> {
  return openConversationFeed(ctx, conversationId, feedState(afterSeq), messageAddedStep);
}
