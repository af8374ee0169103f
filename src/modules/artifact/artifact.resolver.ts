import { Arg, Args, Ctx, FieldResolver, Float, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Conversation } from "../conversation/conversation.model";
import { Message } from "../message/message.model";
import { User } from "../user/user.model";
import { Artifact, ArtifactStatus } from "./artifact.types";
import { ConversationArtifactsArgs, CreateArtifactInput, EditArtifactInput } from "./artifact.input";
import * as artifacts from "./artifact.service";

const WRITERS = "Services that reach the conversation, and admins (as for assistant messages)";

@Resolver(() => Artifact)
export class ArtifactResolver {
  @Query(() => Artifact, { description: "A version of an artifact in a conversation you can read; NOT_FOUND otherwise" })
  artifact(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Artifact> {
    return artifacts.getArtifact(ctx, id);
  }

  @Mutation(() => Artifact, { description: `${WRITERS}: version 1 of an artifact of an ASSISTANT or TOOL message` })
  createArtifact(@Arg("input") input: CreateArtifactInput, @Ctx() ctx: Context): Promise<Artifact> {
    return artifacts.createArtifact(ctx, input);
  }

  @Mutation(() => Artifact, { description: `${WRITERS}: the next version of the artifact's history, edited from this version; the old ones stay` })
  editArtifact(@Arg("id", () => UUIDScalar) id: string, @Arg("input") input: EditArtifactInput, @Ctx() ctx: Context): Promise<Artifact> {
    return artifacts.editArtifact(ctx, id, input);
  }

  @Mutation(() => Boolean, { description: `${WRITERS}: deletes every version of the artifact's history, and their files` })
  deleteArtifact(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return artifacts.deleteArtifact(ctx, id);
  }

  @FieldResolver(() => [Artifact], { description: "Every version of this artifact's history, first to latest" })
  versions(@Root() artifact: Artifact, @Ctx() ctx: Context): Promise<Artifact[]> {
    return artifacts.artifactVersions(ctx, artifact);
  }

  @FieldResolver(() => Artifact, { nullable: true, description: "The version this one edits; null for the first (or when that was deleted)" })
  async parent(@Root() artifact: Artifact, @Ctx() ctx: Context): Promise<Artifact | null> {
    // Same history, so same conversation: readable through the check that produced this version.
    return artifact.parentId ? ((await ctx.loaders.artifactById.load(artifact.parentId)) ?? null) : null;
  }

  @FieldResolver(() => Message)
  async message(@Root() artifact: Artifact, @Ctx() ctx: Context): Promise<Message> {
    return (await ctx.loaders.messageById.load(artifact.messageId))!;
  }

  @FieldResolver(() => Conversation)
  async conversation(@Root() artifact: Artifact, @Ctx() ctx: Context): Promise<Conversation> {
    return (await ctx.loaders.conversationById.load(artifact.conversationId))!;
  }

  @FieldResolver(() => User, { nullable: true, description: "Who created this version; null when that account was deleted" })
  createdBy(@Root() artifact: Artifact, @Ctx() ctx: Context): Promise<User | undefined> | undefined {
    return artifact.createdBy ? ctx.loaders.userById.load(artifact.createdBy) : undefined;
  }

  @FieldResolver(() => Float, { nullable: true, description: "Size in bytes: of the file (READY), or of the inline text in UTF-8" })
  sizeBytes(@Root() artifact: Artifact): number | null {
    return artifact.content != null ? Buffer.byteLength(artifact.content) : artifact.sizeBytes;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "Where to GET the bytes (relative to the server, with the same Authorization header); null while PENDING",
  })
  downloadPath(@Root() artifact: Artifact): string | null {
    return artifact.status === ArtifactStatus.READY ? `/artifacts/${artifact.id}/download` : null;
  }

  @FieldResolver(() => String, { nullable: true, description: "Where to PUT the file of a PENDING file version; null otherwise" })
  uploadPath(@Root() artifact: Artifact): string | null {
    return artifact.status === ArtifactStatus.PENDING ? `/artifacts/${artifact.id}/content` : null;
  }
}

@Resolver(() => Message)
export class MessageArtifactsResolver {
  @FieldResolver(() => [Artifact], { description: "The artifact versions this message produced, oldest first" })
  artifacts(@Root() message: Message, @Ctx() ctx: Context): Promise<Artifact[]> {
    return ctx.loaders.artifactsByMessageId.load(message.id);
  }
}

@Resolver(() => Conversation)
export class ConversationArtifactsResolver {
  @FieldResolver(() => [Artifact], { description: "The latest version of each artifact of the conversation, most recently changed first" })
  artifacts(@Root() conversation: Conversation, @Args() args: ConversationArtifactsArgs, @Ctx() ctx: Context): Promise<Artifact[]> {
    return ctx.loaders.artifactsByConversation.load({ conversationId: conversation.id, kind: args.kind ?? null });
  }
}
