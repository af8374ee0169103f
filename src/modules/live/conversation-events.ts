/**
 * conversationEvents: one stream of everything a chat view needs, gap-free like messageAdded.
 * - MessageAddedEvent: a new message (a STREAMING one with its text so far and chunkCount).
 * - MessageDeltaEvent: a chunk appended to a STREAMING message: only the new text, never the whole again.
 * - MessageUpdatedEvent: a streamed message completed or failed (its full text), or, when a stream resumes
 *   with afterSeq while a message at or before afterSeq is still STREAMING, its snapshot so far.
 * A client appends delta `index` to the message's text when index equals its chunkCount so far; the stream
 * sends each chunk once, after the snapshot or message that it follows.
 */
import { createUnionType, Field, Int, ObjectType } from "type-graphql";
import type { Context } from "../../graphql/context";
import { renewLoaders } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Message } from "../message/message.model";
import { MessageStatus } from "../message/message.enums";
import { chunkText, streamedTexts, type ChunkRow } from "../message/stream.service";
import { liveHubOf, messagesAfter, openConversationStream, PAGE } from "./message-stream";

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

export function subscribeConversationEvents(ctx: Context, conversationId: string, afterSeq: number | null | undefined) {
  const knex = ctx.db.knex;
  const hub = liveHubOf(ctx);
  const encryption = ctx.config.encryption;
  /** STREAMING messages this stream has sent (by id), with how many of their chunks it has sent. */
  const streaming = new Map<string, number>();

  /** Fresh loaders for one event, primed with the text so far that the event's chunk count matches. */
  async function withTextSoFar(message: Message): Promise<Message> {
    renewLoaders(ctx);
    if (message.status !== MessageStatus.STREAMING) return message;
    const [sofar] = await streamedTexts(knex, encryption, [message]);
    ctx.loaders.streamedText.prime(message, sofar);
    streaming.set(message.id, sofar.chunks);
    return message;
  }

  return openConversationStream<ConversationEventValue>(ctx, conversationId, afterSeq, async function* (cursor) {
    if (cursor.first && afterSeq != null) {
      // Resuming: messages already received may still be streaming; send what they hold now.
      const open = await Message.query(knex).where({ conversationId, status: MessageStatus.STREAMING }).where("seq", "<=", cursor.seq).orderBy("seq");
      for (const message of open) yield event(MessageUpdatedEvent, { message: await withTextSoFar(message) });
    }
    const rows = await messagesAfter(ctx, conversationId, cursor.seq);
    for (const row of rows) {
      cursor.seq = row.seq;
      yield event(MessageAddedEvent, { message: await withTextSoFar(row) });
    }
    for (const [id, sent] of streaming) {
      const now = await hub.shared(conversationId, `message:${id}`, async (): Promise<Message | undefined> => Message.query(knex).findById(id));
      if (now && now.status === MessageStatus.STREAMING) {
        const chunks = await hub.shared(conversationId, `chunks:${id}:${sent}`, async (): Promise<ChunkRow[]> =>
          knex("message_chunks").where({ messageId: id }).where("idx", ">=", sent).orderBy("idx"),
        );
        for (const chunk of chunks) {
          if (chunk.idx !== streaming.get(id)) break; // never skip one: a later read sends it in order
          streaming.set(id, chunk.idx + 1);
          yield event(MessageDeltaEvent, { messageId: id, seq: now.seq, index: chunk.idx, text: chunkText(encryption, now, chunk) });
        }
        continue;
      }
      streaming.delete(id);
      if (now) {
        renewLoaders(ctx);
        yield event(MessageUpdatedEvent, { message: now }); // completed or failed: the full text
      }
    }
    return rows.length === PAGE;
  });
}
