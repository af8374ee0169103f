import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { User } from "../user/user.model";
import { Conversation } from "../conversation/conversation.model";
import { Message } from "./message.model";
import { AddMessageInput } from "./message.input";
import * as messages from "./message.service";
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

  // Declared on the model too (which keeps its place in the schema); resolved here because the stored
  // content may be ciphertext. An undecryptable message is an error for this field, never garbage text.
  @FieldResolver(() => String)
  content(@Root() message: Message, @Ctx() ctx: Context): string {
    try {
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
