import { Args, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UsageArgs } from "./usage.input";
import { UsageBucket } from "./usage.types";
import { usage } from "./usage.service";

@Resolver()
export class UsageResolver {
  @Query(() => [UsageBucket], {
    description:
      "Model calls summed by period (UTC), oldest first, optionally split by user, model and guild. Members see their own, " +
      "services those of conversations they may access and those they reported, admins all.",
  })
  usage(@Args() args: UsageArgs, @Ctx() ctx: Context): Promise<UsageBucket[]> {
    return usage(ctx, args);
  }
}
