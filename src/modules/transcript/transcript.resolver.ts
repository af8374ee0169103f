import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Conversation } from "../conversation/conversation.model";
import { User } from "../user/user.model";
import { Transcript } from "./transcript.model";
import { TranscriptStatus } from "./transcript.enums";
import { CreateTranscriptInput } from "./transcript.input";
import * as transcripts from "./transcript.service";

@Resolver(() => Transcript)
export class TranscriptResolver {
  @Query(() => Transcript, { description: "A transcript of a conversation you can read; NOT_FOUND otherwise" })
  transcript(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Transcript> {
    return transcripts.getTranscript(ctx, id);
  }

  @Mutation(() => Transcript, {
    description:
      "Exports a conversation you can read as a JSON or CSV file. Small exports come back READY (or FAILED); larger ones " +
      "PENDING, to poll with transcript(id). Idempotent on requestId",
  })
  createTranscript(@Arg("input") input: CreateTranscriptInput, @Ctx() ctx: Context): Promise<Transcript> {
    return transcripts.createTranscript(ctx, input);
  }

  @FieldResolver(() => Conversation)
  async conversation(@Root() transcript: Transcript, @Ctx() ctx: Context): Promise<Conversation> {
    return (await ctx.loaders.conversationById.load(transcript.conversationId))!; // read through getTranscript's access check
  }

  @FieldResolver(() => User, { nullable: true, description: "Who asked for the export; null when that account was deleted" })
  createdBy(@Root() transcript: Transcript, @Ctx() ctx: Context): Promise<User | undefined> | undefined {
    return transcript.createdBy ? ctx.loaders.userById.load(transcript.createdBy) : undefined;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "Where to GET the file (relative to the server, with the same Authorization header); null until READY",
  })
  downloadPath(@Root() transcript: Transcript): string | null {
    return transcript.status === TranscriptStatus.READY ? `/transcripts/${transcript.id}/download` : null;
  }
}

@Resolver(() => Conversation)
export class ConversationTranscriptsResolver {
  @FieldResolver(() => [Transcript], { description: "The conversation's transcripts, newest first" })
  transcripts(@Root() conversation: Conversation, @Ctx() ctx: Context): Promise<Transcript[]> {
    return ctx.loaders.transcriptsByConversationId.load(conversation.id);
  }
}
