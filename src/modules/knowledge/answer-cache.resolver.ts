import { Arg, Args, Ctx, Int, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { KnowledgeScopeInput } from "./scope";
import { CachedAnswer, CachedAnswerHit } from "./answer-cache.types";
import { CachedAnswerArgs, StoreAnswerInput } from "./answer-cache.input";
import * as answers from "./answer-cache.service";

@Resolver(() => CachedAnswer)
export class AnswerCacheResolver {
  @Query(() => CachedAnswerHit, {
    nullable: true,
    description:
      "The answer cached for a question in a scope you may read (null on a miss): the same question once normalized, else, with an embedding, " +
      "the most similar one at ANSWER_CACHE_SIMILARITY or above. Expired answers are never served; a hit counts in hitCount",
  })
  cachedAnswer(@Args() args: CachedAnswerArgs, @Ctx() ctx: Context): Promise<CachedAnswerHit | null> {
    return answers.cachedAnswer(ctx, args);
  }

  @Mutation(() => CachedAnswer, {
    description: "Keeps an answer for a question in a scope you may write, replacing the one stored for the same question (its hits start again at 0)",
  })
  storeAnswer(@Arg("input") input: StoreAnswerInput, @Ctx() ctx: Context): Promise<CachedAnswer> {
    return answers.storeAnswer(ctx, input);
  }

  @Mutation(() => Boolean, { description: "Deletes one cached answer of a scope you may write" })
  deleteCachedAnswer(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return answers.deleteCachedAnswer(ctx, id);
  }

  @Mutation(() => Int, { description: "Deletes every cached answer of a scope you may write; returns how many" })
  clearAnswerCache(@Arg("scope", () => KnowledgeScopeInput) scope: KnowledgeScopeInput, @Ctx() ctx: Context): Promise<number> {
    return answers.clearAnswerCache(ctx, scope);
  }
}
