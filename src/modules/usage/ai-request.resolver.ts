import { Arg, Ctx, Mutation, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { AiRequest } from "./ai-request.model";
import { RecordAiRequestInput } from "./ai-request.input";
import { recordAiRequest } from "./ai-request.service";

@Resolver(() => AiRequest)
export class AiRequestResolver {
  @Mutation(() => AiRequest, {
    description:
      "Puts a model call on the usage ledger (services and admins), priced from the catalogue unless costUsd is given. " +
      "Idempotent on requestId: the same call again returns the first row and counts nothing; other content is CONFLICT.",
  })
  recordAiRequest(@Arg("input") input: RecordAiRequestInput, @Ctx() ctx: Context): Promise<AiRequest> {
    return recordAiRequest(ctx, input);
  }
}
