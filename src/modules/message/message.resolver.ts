import { Arg, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { User } from "../user/user.model";
import { Conversation } from "../conversation/conversation.model";
import { Message } from "./message.model";
import { AddMessageInput } from "./message.input";
import * as messages from "./message.service";
import * as streams from "./stream.service";
import { CompleteMessageInput, MessageChunk, StartMessageInput } from "./stream.input";
import { MessageStatus } from "./message.enums";
import { messageText, UndecryptableContentError } from "./encryption";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@Resolver(() => Message)
export class MessageResolver {
  @Query(() => Message, { description: "A message of a conversation you can read; NOT_FOUND otherwise" })
  message(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Message> {
    return messages.getMessage(ctx, id);
  }

  @Mutation(() => Message, { description: "Appends a message; idempotent on requestId" })
  addMessage(@Arg("input") input: AddMessageInput, @Ctx() ctx: Context): Promise<Message> {
    return messages.addMessage(ctx, input);
  }

  @Mutation(() => Message, { description: "Starts a STREAMING message (default role ASSISTANT); idempotent on requestId" })
  startMessage(@Arg("input") input: StartMessageInput, @Ctx() ctx: Context): Promise<Message> {
    return streams.startMessage(ctx, input);
  }

  @Mutation(() => MessageChunk, {
    description:
      "Appends chunk `index` (0, 1, 2 ...) to a STREAMING message. A retried index with the same text is acknowledged " +
      "again; other text is CONFLICT; an index ahead of the next one is BAD_USER_INPUT with extensions.expectedIndex.",
  })
  appendMessageChunk(
    @Arg("messageId", () => UUIDScalar) messageId: string,
    @Arg("index", () => Int) index: number,
    @Arg("text") text: string,
    @Ctx() ctx: Context,
  ): Promise<MessageChunk> {
    return streams.appendChunk(ctx, messageId, index, text);
  }

  @Mutation(() => Message, { description: "Ends a STREAMING message as COMPLETE, with its usage; idempotent" })
  completeMessage(
    @Arg("messageId", () => UUIDScalar) messageId: string,
    @Arg("usage", () => CompleteMessageInput, { nullable: true }) usage: CompleteMessageInput | null,
    @Ctx() ctx: Context,
  ): Promise<Message> {
    return streams.completeMessage(ctx, messageId, usage ?? {});
  }

  @Mutation(() => Message, { description: "Ends a STREAMING message as FAILED, keeping the text so far; `error` goes to metadata.error; idempotent" })
  failMessage(@Arg("messageId", () => UUIDScalar) messageId: string, @Arg("error") error: string, @Ctx() ctx: Context): Promise<Message> {
    return streams.failMessage(ctx, messageId, error);
  }

  @FieldResolver(() => Int, { description: "How many chunks the text was streamed in (0 for a message added whole)" })
  async chunkCount(@Root() message: Message, @Ctx() ctx: Context): Promise<number> {
    // While streaming, counted from the same read as `content`, so the two always agree.
    return message.status === MessageStatus.STREAMING ? (await ctx.loaders.streamedText.load(message)).chunks : message.chunkCount;
  }

  // Declared on the model too (which keeps its place in the schema); resolved here because the stored
  // content may be ciphertext, or still in chunks. An undecryptable message is an error, never garbage text.
  @FieldResolver(() => String, { description: "The text; while STREAMING, the text streamed so far" })
  async content(@Root() message: Message, @Ctx() ctx: Context): Promise<string> {
    try {
      if (message.status === MessageStatus.STREAMING) return (await ctx.loaders.streamedText.load(message)).text;
      return messageText(ctx.config.encryption, message);
    } catch (error) {
      if (error instanceof UndecryptableContentError) {
        ctx.log.error({ messageId: message.id, keyId: message.keyId, reason: error.reason }, "message content could not be decrypted");
      }
      throw error;
    }
  }

  @FieldResolver(() => User, { nullable: true, description: "Null when the author's account was deleted" })
  async author(@Root() message: Message, @Ctx() ctx: Context): Promise<User | undefined> {
    return message.authorId ? ctx.loaders.userById.load(message.authorId) : undefined;
  }

  @FieldResolver(() => User, { nullable: true, description: "The service that wrote this message on behalf of its author" })
  async sentBy(@Root() message: Message, @Ctx() ctx: Context): Promise<User | undefined> {
    return message.sentBy ? ctx.loaders.userById.load(message.sentBy) : undefined;
  }

  @FieldResolver(() => Conversation)
  async conversation(@Root() message: Message, @Ctx() ctx: Context): Promise<Conversation> {
    // A message is only ever handed out to readers of its conversation, so no second access check is needed.
    return (await ctx.loaders.conversationById.load(message.conversationId))!;
  }
}
