import { Arg, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { NotFoundError } from "../../graphql/errors";
import { getConversation } from "../conversation/conversation.service";
import { Transcript } from "./transcript.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@Resolver(() => Transcript)
export class TranscriptResolver {
  @Query(() => Transcript, { description: "A transcript of a conversation you can read; NOT_FOUND otherwise" })
  async transcript(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<Transcript> {
    const transcript = await Transcript.query(ctx.db.knex).findById(id);
    if (!transcript) throw new NotFoundError("Transcript");
    await getConversation(ctx, transcript.conversationId).catch((error: unknown) => {
      throw error instanceof NotFoundError ? new NotFoundError("Transcript") : error;
    });
    return transcript;
  }
}
