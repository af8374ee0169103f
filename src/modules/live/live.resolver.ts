import { Arg, Ctx, Int, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Message } from "../message/message.model";
import { StreamError, subscribeMessageAdded } from "./message-stream";

@Resolver()
export class LiveResolver {
  @Subscription(() => Message, {
    description:
      "Every message of the conversation with seq > afterSeq, in order, then each new message as it is stored: no gap, " +
      "no duplicate. Without afterSeq, new messages only. Resume after a disconnect with the last seq you received.",
    subscribe: ({ args, context }) => subscribeMessageAdded(context as Context, args.conversationId, args.afterSeq),
  })
  messageAdded(
    @Root() event: Message | StreamError,
    @Arg("conversationId", () => UUIDScalar) _conversationId: string,
    @Arg("afterSeq", () => Int, { nullable: true }) _afterSeq: number | null,
    @Ctx() _ctx: Context,
  ): Message {
    if (event instanceof StreamError) throw event.error;
    return event;
  }
}
