import { Arg, Int, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Message } from "../message/message.model";
import { subscribeMessageAdded } from "./conversation-feed";
import { eventOrThrow, type StreamError } from "./live-stream";
import { ConversationChange, subscribeConversationsChanged } from "./inbox-stream";
import { ConversationEvent, subscribeConversationEvents, type ConversationEventValue } from "./conversation-events";

@Resolver()
export class LiveResolver {
  @Subscription(() => Message, {
    description:
      "Every message of the conversation with seq > afterSeq, in order, then each new message as it is stored: no gap, " +
      "no duplicate. Without afterSeq, new messages only. Resume after a disconnect with the last seq you received.",
    subscribe: ({ args, context }) => subscribeMessageAdded(context as Context, args.conversationId, args.afterSeq),
  })
  messageAdded(
    @Root() event: Message | StreamError,
    @Arg("conversationId", () => UUIDScalar) _conversationId: string,
    @Arg("afterSeq", () => Int, { nullable: true }) _afterSeq: number | null,
  ): Message {
    return eventOrThrow(event);
  }

  @Subscription(() => ConversationEvent, {
    description:
      "Everything a chat view needs, gap-free like messageAdded: MessageAddedEvent, then for STREAMING messages one " +
      "MessageDeltaEvent per chunk (only the new text) and a MessageUpdatedEvent when it completes or fails. Resuming " +
      "with afterSeq first sends a snapshot (MessageUpdatedEvent) of every message at or before afterSeq still streaming, " +
      "and of those named in streamingSeqs whatever their status.",
    subscribe: ({ args, context }) => subscribeConversationEvents(context as Context, args.conversationId, args.afterSeq, args.streamingSeqs ?? []),
  })
  conversationEvents(
    @Root() event: ConversationEventValue | StreamError,
    @Arg("conversationId", () => UUIDScalar) _conversationId: string,
    @Arg("afterSeq", () => Int, { nullable: true }) _afterSeq: number | null,
    @Arg("streamingSeqs", () => [Int], {
      nullable: true,
      description: "When resuming: the seqs of messages you hold as STREAMING; each is sent again as it is now (it may have ended meanwhile)",
    })
    _streamingSeqs: number[] | null,
  ): ConversationEventValue {
    return eventOrThrow(event);
  }

  @Subscription(() => ConversationChange, {
    description:
      "Changes to your conversations (created, renamed, archived, new message, deleted), each as the conversation as it is " +
      "now. Subscribe first, then load the list with `conversations`, so that no change falls in between.",
    subscribe: ({ context }) => subscribeConversationsChanged(context as Context),
  })
  conversationsChanged(@Root() event: ConversationChange | StreamError): ConversationChange {
    return eventOrThrow(event);
  }
}
