import { Arg, Ctx, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { Budget, BudgetStatus } from "./budget.model";
import { SetBudgetInput } from "./budget.input";
import * as budgets from "./budget.service";

@Resolver(() => Budget)
export class BudgetResolver {
  @Mutation(() => Budget, { description: "Admins: creates or replaces the budget of a user or a Discord guild; the spend so far this period counts" })
  setBudget(@Arg("input") input: SetBudgetInput, @Ctx() ctx: Context): Promise<Budget> {
    return budgets.setBudget(ctx, input);
  }

  @Mutation(() => Boolean, { description: "Admins: removes a budget" })
  deleteBudget(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return budgets.deleteBudget(ctx, id);
  }

  @Query(() => BudgetStatus, {
    nullable: true,
    description: "Where a budget stands this period: yours by default; a user's (admins) or a guild's (admins, services granted DISCORD). Null without a budget",
  })
  budgetStatus(
    @Arg("userId", () => UUIDScalar, { nullable: true }) userId: string | null,
    @Arg("guildId", () => String, { nullable: true }) guildId: string | null,
    @Ctx() ctx: Context,
  ): Promise<BudgetStatus | null> {
    return budgets.budgetStatus(ctx, { userId, guildId });
  }
}
