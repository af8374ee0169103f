import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { AiModel, AiModelPrice } from "./ai-model.model";
import { ModelsArgs, UpsertAiModelInput } from "./ai-model.input";
import * as catalogue from "./ai-model.service";

@Resolver(() => AiModel)
export class AiModelResolver {
  @Query(() => [AiModel], { description: "The model catalogue, by provider then name; retired models only with includeRetired" })
  models(@Args() args: ModelsArgs, @Ctx() ctx: Context): Promise<AiModel[]> {
    return catalogue.listModels(ctx, args);
  }

  @Mutation(() => AiModel, {
    description:
      "Admins only: creates the model (by provider and name) or updates the fields given, and adds the price given to its history. " +
      "A price already in force is never changed (CONFLICT)",
  })
  upsertAiModel(@Arg("input") input: UpsertAiModelInput, @Ctx() ctx: Context): Promise<AiModel> {
    return catalogue.upsertAiModel(ctx, input);
  }

  @Mutation(() => AiModel, {
    description: "Admins only: hides the model from `models` (idempotent); its prices still apply. upsertAiModel with isActive: true brings it back",
  })
  retireAiModel(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<AiModel> {
    return catalogue.retireAiModel(ctx, id);
  }

  @FieldResolver(() => [AiModelPrice], { description: "The price history, newest effectiveFrom first (prices yet to start included)" })
  prices(@Root() model: AiModel, @Ctx() ctx: Context): Promise<AiModelPrice[]> {
    return catalogue.priceHistory(ctx, model);
  }

  @FieldResolver(() => AiModelPrice, { nullable: true, description: "The price in force now; null before the first one starts" })
  currentPrice(@Root() model: AiModel, @Ctx() ctx: Context): Promise<AiModelPrice | undefined> {
    return catalogue.currentPrice(ctx, model);
  }
}
