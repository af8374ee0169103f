import type { GraphQLResolveInfo } from "graphql";
import { Arg, Args, Ctx, FieldResolver, Info, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionArgs, ConnectionType, toConnection, type ConnectionShape } from "../../graphql/connection";
import { childFieldArguments } from "../../graphql/planner/selection";
import { messagePageKey } from "../message/message.loaders";
import { User } from "../user/user.model";
import { Message } from "../message/message.model";
import { Conversation } from "./conversation.model";
import { ConversationsArgs, CreateConversationInput, UpdateConversationInput } from "./conversation.input";
import * as conversations from "./conversation.service";
import { UUIDScalar } from "../../graphql/scalars/uuid";

export const ConversationConnection = ConnectionType(Conversation);
export const MessageConnection = ConnectionType(Message);

@Resolver(() => Conversation)
export class ConversationResolver {
  @Query(() => Conversation, { description: "A conversation you can read; NOT_FOUND otherwise" })
  conversation(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo): Promise<Conversation> {
    const pages = childFieldArguments(info, "messages");
    return conversations.getConversation(ctx, id, pages?.length === 1 ? (pages[0] as ConnectionArgs) : undefined);
  }

  @Query(() => ConversationConnection, { description: "Your conversations, most recently active first" })
  conversations(@Args() args: ConversationsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Conversation>> {
    return conversations.listConversations(ctx, args);
  }

  @Mutation(() => Conversation)
  createConversation(@Arg("input") input: CreateConversationInput, @Ctx() ctx: Context): Promise<Conversation> {
    return conversations.createConversation(ctx, input);
  }

  @Mutation(() => Conversation)
  updateConversation(
    @Arg("id", () => UUIDScalar) id: string,
    @Arg("input") input: UpdateConversationInput,
    @Ctx() ctx: Context,
  ): Promise<Conversation> {
    return conversations.updateConversation(ctx, id, input);
  }

  @Mutation(() => Conversation, { description: "Makes the conversation read-only; idempotent" })
  archiveConversation(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Conversation> {
    return conversations.archiveConversation(ctx, id);
  }

  @Mutation(() => Boolean, { description: "Deletes the conversation with its messages and transcripts" })
  deleteConversation(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return conversations.deleteConversation(ctx, id);
  }

  @FieldResolver(() => User)
  async owner(@Root() conversation: Conversation, @Ctx() ctx: Context): Promise<User> {
    return (await ctx.loaders.userById.load(conversation.ownerId))!; // owner_id is NOT NULL with a cascading FK
  }

  @FieldResolver(() => Message, { nullable: true })
  async lastMessage(@Root() conversation: Conversation, @Ctx() ctx: Context): Promise<Message | undefined> {
    if (conversation.lastSeq === 0) return undefined;
    return ctx.loaders.lastMessageByConversationId.load(conversation.id);
  }

  @FieldResolver(() => MessageConnection, {
    description: "Messages by seq. `first`/`after` page forwards from the oldest; `last: 50` gives the newest 50 in chronological order",
  })
  async messages(@Root() conversation: Conversation, @Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Message>> {
    const { page, key } = messagePageKey(conversation.id, args, ctx.config);
    const rows = await ctx.loaders.messagePage.load(key);
    return toConnection([...rows], page, (message) => [message.seq], () => conversation.messageCount);
  }
}
