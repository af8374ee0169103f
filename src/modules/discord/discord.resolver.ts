import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionArgs, ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { Message } from "../message/message.model";
import { DiscordBinding, DiscordPost } from "./discord.model";
import { DiscordMessageRef, RecordDiscordEditInput, RecordDiscordPostInput } from "./discord.input";
import * as discord from "./discord.service";

export const DiscordBindingConnection = ConnectionType(DiscordBinding);

const FOR_THE_ADAPTER = "Admins, and services granted the DISCORD origin (the Discord adapter)";

@Resolver()
export class DiscordResolver {
  @Query(() => DiscordBinding, { nullable: true, description: `${FOR_THE_ADAPTER}: the active conversation bound to a channel or thread, or null` })
  discordBinding(@Arg("channelId") channelId: string, @Ctx() ctx: Context): Promise<DiscordBinding | null> {
    return discord.getBinding(ctx, channelId);
  }

  @Query(() => DiscordBindingConnection, { description: `${FOR_THE_ADAPTER}: every bound channel, most recently bound first` })
  discordBindings(@Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<DiscordBinding>> {
    return discord.listBindings(ctx, args);
  }

  @Mutation(() => DiscordPost, {
    description: `${FOR_THE_ADAPTER}: what has been posted to Discord of an ASSISTANT message; POSTED and FAILED are final`,
  })
  recordDiscordPost(@Arg("input") input: RecordDiscordPostInput, @Ctx() ctx: Context): Promise<DiscordPost> {
    return discord.recordPost(ctx, input);
  }

  @Mutation(() => Message, {
    description: `${FOR_THE_ADAPTER}, for messages they relayed: the message was edited in Discord (content replaced, history in metadata.discord.edits)`,
  })
  recordDiscordEdit(@Arg("input") input: RecordDiscordEditInput, @Ctx() ctx: Context): Promise<Message> {
    return discord.recordEdit(ctx, input);
  }

  @Mutation(() => Message, {
    description: `${FOR_THE_ADAPTER}, for messages they relayed: the message was deleted in Discord (content emptied, metadata.discord.deletedAt set)`,
  })
  recordDiscordDeletion(@Arg("input") input: DiscordMessageRef, @Ctx() ctx: Context): Promise<Message> {
    return discord.recordDeletion(ctx, input);
  }
}

@Resolver(() => Message)
export class DiscordMessageResolver {
  @FieldResolver(() => DiscordPost, { nullable: true, description: `What was posted of it to Discord. ${FOR_THE_ADAPTER} only; null for others` })
  discordPost(@Root() message: Message, @Ctx() ctx: Context): Promise<DiscordPost | null> {
    return discord.discordPostOf(ctx, message);
  }
}
