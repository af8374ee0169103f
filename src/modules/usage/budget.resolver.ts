import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { ConnectionArgs, ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { User } from "../user/user.model";
import { Budget, BudgetStatus } from "./budget.model";
import { SetBudgetInput } from "./budget.input";
import * as budgets from "./budget.service";

export const BudgetStatusConnection = ConnectionType(BudgetStatus);

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

  @Query(() => BudgetStatusConnection, { description: "Admins only: every budget where it stands this period, newest budget first" })
  budgets(@Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<BudgetStatus>> {
    return budgets.listBudgets(ctx, args);
  }

  @FieldResolver(() => User, { nullable: true, description: "The user the budget caps; null for a guild's" })
  user(@Root() budget: Budget, @Ctx() ctx: Context): Promise<User | undefined> | undefined {
    return budget.userId ? ctx.loaders.userById.load(budget.userId) : undefined;
  }
}
