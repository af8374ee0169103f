/**
 * conversationEvents: one stream of everything a chat view needs, gap-free like messageAdded.
 * - MessageAddedEvent: a new message (a STREAMING one with its text so far and chunkCount).
 * - MessageDeltaEvent: a chunk appended to a STREAMING message: only the new text, never the whole again.
 * - MessageUpdatedEvent: a streamed message completed or failed (its full text), or, when a stream resumes
 *   with afterSeq while a message at or before afterSeq is still STREAMING, its snapshot so far. A message the
 *   client holds as STREAMING may have completed while it was away: it names those (`streamingSeqs`), and each
 *   is sent again as it is now, whatever its status, so no reply stays "typing…" forever.
 * A client appends delta `index` to the message's text when index equals its chunkCount so far; the stream
 * sends each chunk once, after the snapshot or message that it follows.
 */
import { createUnionType, Field, Int, ObjectType } from "type-graphql";
import type { Actor } from "../actor";
import { renewLoaders } from "../actor";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { BadUserInputError } from "../../graphql/errors";
import { Message } from "../message/message.model";
import { MessageStatus } from "../message/message.enums";
import { chunksFrom, chunkText, streamedTexts, type ChunkRow } from "../message/stream.service";
import { feedState, liveHubOf, messagesAfter, PAGE, type FeedState, type StreamStep } from "./message-stream";
import { openConversationFeed, type ConversationFeed } from "./conversation-feed";

@ObjectType({ description: "A message was added (a STREAMING one carries its text so far)" })
export class MessageAddedEvent {
  @Field(() => Message)
  message: Message;
}

@ObjectType({ description: "A chunk was appended to a STREAMING message" })
export class MessageDeltaEvent {
  @Field(() => UUIDScalar)
  messageId: string;

  @Field(() => Int)
  seq: number;

  @Field(() => Int, { description: "The chunk's index: append it when it equals the chunkCount you have" })
  index: number;

  @Field()
  text: string;
}

@ObjectType({ description: "A streamed message completed or failed, or its snapshot when a stream resumes mid-stream" })
export class MessageUpdatedEvent {
  @Field(() => Message)
  message: Message;
}

export const ConversationEvent = createUnionType({
  name: "ConversationEvent",
  types: () => [MessageAddedEvent, MessageDeltaEvent, MessageUpdatedEvent] as const,
  resolveType: (event) =>
    event instanceof MessageDeltaEvent ? MessageDeltaEvent : event instanceof MessageUpdatedEvent ? MessageUpdatedEvent : MessageAddedEvent,
});
export type ConversationEventValue = MessageAddedEvent | MessageDeltaEvent | MessageUpdatedEvent;

const event = <T extends object>(type: new () => T, fields: T): T => Object.assign(new type(), fields);

/**
 * The events' messages, each handed out with fresh loaders; a STREAMING one primed with its text so far, which
 * the chunk count its deltas continue from matches. The texts of all of them are read in one statement (shared
 * with the conversation's other streams), so a read costs the same however many messages stream at once.
 */
async function* withTextSoFar(ctx: Actor, conversationId: string, state: FeedState, messages: Message[]): AsyncGenerator<Message> {
  const open = messages.filter((message) => message.status === MessageStatus.STREAMING);
  const key = `texts:${open.map((message) => message.id).join(",")}`;
  const texts = open.length ? await liveHubOf(ctx).shared(conversationId, key, () => streamedTexts(ctx.db.knex, ctx.config.encryption, open)) : [];
  const textOf = new Map(open.map((message, i) => [message.id, texts[i]]));
  for (const message of messages) {
    renewLoaders(ctx);
    const sofar = textOf.get(message.id);
    if (sofar) {
      ctx.loaders.streamedText.prime(message, sofar);
      state.streaming.set(message.id, sofar.chunks);
    }
    yield message;
  }
}

/** conversationEvents: one read of the stream (see the top of this file). */
export const conversationEventsStep: StreamStep<ConversationEventValue> = async function* (ctx, conversationId, state) {
  const knex = ctx.db.knex;
  const hub = liveHubOf(ctx);
  const encryption = ctx.config.encryption;
  const { streaming } = state;
  if (state.resume) {
    // Resuming: messages already received may still be streaming, or have ended meanwhile; send them as they are now.
    const open = await Message.query(knex)
      .where({ conversationId })
      .where("seq", "<=", state.seq!)
      .where((q) => q.where({ status: MessageStatus.STREAMING }).orWhereIn("seq", state.resume!))
      .orderBy("seq");
    for await (const message of withTextSoFar(ctx, conversationId, state, open)) yield event(MessageUpdatedEvent, { message });
    state.resume = undefined;
  }
  const rows = await messagesAfter(ctx, conversationId, state.seq!);
  for await (const message of withTextSoFar(ctx, conversationId, state, rows)) {
    state.seq = message.seq;
    yield event(MessageAddedEvent, { message });
  }
  if (streaming.size === 0) return rows.length === PAGE;
  // Where every message sent while streaming stands now, and its chunks not sent yet: two statements for all
  // of them, each shared by the conversation's streams that stand at the same place.
  const ids = [...streaming.keys()];
  const current = await hub.shared(conversationId, `messages:${ids.join(",")}`, async (): Promise<Message[]> => Message.query(knex).findByIds(ids));
  const now = new Map(current.map((message) => [message.id, message]));
  const stillStreaming = new Map([...streaming].filter(([id]) => now.get(id)?.status === MessageStatus.STREAMING));
  const from = [...stillStreaming].map(([id, sent]) => `${id}:${sent}`).join(",");
  const chunks = stillStreaming.size
    ? await hub.shared(conversationId, `chunks:${from}`, () => chunksFrom(knex, stillStreaming))
    : new Map<string, ChunkRow[]>();
  for (const id of [...streaming.keys()]) {
    const message = now.get(id);
    if (message && stillStreaming.has(id)) {
      for (const chunk of chunks.get(id) ?? []) {
        if (chunk.idx !== streaming.get(id)) break; // never skip one: a later read sends it in order
        streaming.set(id, chunk.idx + 1);
        yield event(MessageDeltaEvent, { messageId: id, seq: message.seq, index: chunk.idx, text: chunkText(encryption, message, chunk) });
      }
      continue;
    }
    streaming.delete(id);
    if (message) {
      renewLoaders(ctx);
      yield event(MessageUpdatedEvent, { message }); // completed or failed: the full text
    }
  }
  return rows.length === PAGE;
};

export async function subscribeConversationEvents(
  ctx: Actor,
  conversationId: string,
  afterSeq: number | null | undefined,
  streamingSeqs: readonly number[] = [],
): Promise<ConversationFeed<ConversationEventValue>> {
  if (streamingSeqs.length > PAGE) throw new BadUserInputError(`streamingSeqs may name at most ${PAGE} messages`, { field: "streamingSeqs" });
  return openConversationFeed(ctx, conversationId, feedState(afterSeq, streamingSeqs), conversationEventsStep);
}
