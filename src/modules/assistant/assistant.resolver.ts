import { Arg, Args, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { User } from "../user/user.model";
import { Conversation } from "../conversation/conversation.model";
import { Message } from "../message/message.model";
import { Assistant, AssistantVersion } from "./assistant.types";
import { AssistantsArgs, CreateAssistantInput, UpdateAssistantInput } from "./assistant.input";
import * as assistants from "./assistant.service";

const AssistantConnection = ConnectionType(Assistant);

@Resolver(() => Assistant)
export class AssistantResolver {
  @Query(() => Assistant, { description: "An assistant you can see (your own, or a shared one); NOT_FOUND otherwise" })
  assistant(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Assistant> {
    return assistants.getAssistant(ctx, id);
  }

  @Query(() => AssistantConnection, { description: "Your assistants and the shared ones (admins: all), recently changed first; active ones unless filter.includeInactive" })
  assistants(@Args() args: AssistantsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Assistant>> {
    return assistants.listAssistants(ctx, args);
  }

  @Mutation(() => Assistant, { description: "Creates an assistant with its version 1; shared: admins only" })
  createAssistant(@Arg("input") input: CreateAssistantInput, @Ctx() ctx: Context): Promise<Assistant> {
    return assistants.createAssistant(ctx, input);
  }

  @Mutation(() => Assistant, { description: "Changes an assistant: new settings become version n+1; older versions stay as they were" })
  updateAssistant(@Arg("id", () => UUIDScalar) id: string, @Arg("input") input: UpdateAssistantInput, @Ctx() ctx: Context): Promise<Assistant> {
    return assistants.updateAssistant(ctx, id, input);
  }

  @Mutation(() => Assistant, { description: "Retires (false) or restores (true) an assistant; idempotent. Pins and attributions stay." })
  setAssistantActive(@Arg("id", () => UUIDScalar) id: string, @Arg("active") active: boolean, @Ctx() ctx: Context): Promise<Assistant> {
    return assistants.setAssistantActive(ctx, id, active);
  }

  @Mutation(() => Boolean, { description: "Deletes an assistant nothing points at; CONFLICT (ASSISTANT_IN_USE) when a conversation or message does: deactivate it instead" })
  deleteAssistant(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return assistants.deleteAssistant(ctx, id);
  }

  @Mutation(() => Conversation, { description: "Pins a version of an active assistant (default: its current one) to a conversation you may write" })
  pinAssistant(
    @Arg("conversationId", () => UUIDScalar) conversationId: string,
    @Arg("assistantId", () => UUIDScalar) assistantId: string,
    @Arg("version", () => Int, { nullable: true }) version: number | null,
    @Ctx() ctx: Context,
  ): Promise<Conversation> {
    return assistants.pinAssistant(ctx, conversationId, assistantId, version);
  }

  @Mutation(() => Conversation, { description: "Removes a conversation's pinned assistant; idempotent" })
  unpinAssistant(@Arg("conversationId", () => UUIDScalar) conversationId: string, @Ctx() ctx: Context): Promise<Conversation> {
    return assistants.unpinAssistant(ctx, conversationId);
  }

  @FieldResolver(() => Boolean, { description: "Shared (made by an admin, no owner): everyone sees it" })
  shared(@Root() assistant: Assistant): boolean {
    return assistant.ownerId === null;
  }

  @FieldResolver(() => User, { nullable: true, description: "Null for a shared assistant" })
  async owner(@Root() assistant: Assistant, @Ctx() ctx: Context): Promise<User | undefined> {
    return assistant.ownerId ? ctx.loaders.userById.load(assistant.ownerId) : undefined;
  }

  @FieldResolver(() => AssistantVersion, { description: "The version that pins take by default" })
  currentVersion(@Root() assistant: Assistant, @Ctx() ctx: Context): Promise<AssistantVersion> {
    return assistants.currentVersionOf(ctx, assistant);
  }

  @FieldResolver(() => [AssistantVersion], { description: "Every version, oldest first" })
  versions(@Root() assistant: Assistant, @Ctx() ctx: Context): Promise<AssistantVersion[]> {
    return assistants.versionsOf(ctx, assistant);
  }
}

@Resolver(() => AssistantVersion)
export class AssistantVersionResolver {
  @FieldResolver(() => Assistant)
  async assistant(@Root() version: AssistantVersion, @Ctx() ctx: Context): Promise<Assistant> {
    return (await ctx.loaders.assistantById.load(version.assistantId))!; // assistant_id is NOT NULL with a cascading FK
  }
}

@Resolver(() => Conversation)
export class ConversationAssistantResolver {
  @FieldResolver(() => AssistantVersion, { nullable: true, description: "The pinned assistant version, as it was when pinned" })
  assistant(@Root() conversation: Conversation, @Ctx() ctx: Context): Promise<AssistantVersion | null> {
    return assistants.versionOf(ctx, conversation as Conversation & assistants.WithAssistantVersion);
  }
}

@Resolver(() => Message)
export class MessageAssistantResolver {
  @FieldResolver(() => AssistantVersion, { nullable: true, description: "The assistant version that wrote this (assistant) message" })
  assistant(@Root() message: Message, @Ctx() ctx: Context): Promise<AssistantVersion | null> {
    return assistants.versionOf(ctx, message as Message & assistants.WithAssistantVersion);
  }
}
