import { Field, Float, Int, ObjectType } from "type-graphql";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { BudgetEnforcement, BudgetPeriod } from "./budget.enums";

/** A cap on the spend of one user or one Discord guild per period (user_budgets). */
@ObjectType({ description: "A cap on the spend of one user or one Discord guild per period" })
export class Budget extends Model {
  static override tableName = "user_budgets";

  @Field(() => UUIDScalar)
  id: string;

  @Field(() => UUIDScalar, { nullable: true })
  userId: string | null;

  @Field(() => String, { nullable: true })
  guildId: string | null;

  @Field(() => BudgetPeriod)
  period: BudgetPeriod;

  @Field({ description: "IANA time zone the periods start in (midnight, Monday, the 1st)" })
  timeZone: string;

  @Field(() => Float)
  limitUsd: number;

  @Field(() => [Int], { description: "Percentages of the limit that raise an alert when the spend crosses them" })
  thresholds: number[];

  @Field(() => BudgetEnforcement)
  enforcement: BudgetEnforcement;

  /** The spend of the period that starts at periodStart, kept by every ledger insert. */
  periodStart: Date | null;
  spentUsd: number;

  @Field()
  createdAt: Date;

  @Field()
  updatedAt: Date;

  override $parseDatabaseJson(json: Record<string, unknown>) {
    const parsed = super.$parseDatabaseJson(json);
    for (const key of ["limitUsd", "spentUsd"]) if (typeof parsed[key] === "string") parsed[key] = Number(parsed[key]);
    return parsed;
  }
}

@ObjectType({ description: "Where a budget stands in its current period" })
export class BudgetStatus {
  @Field(() => Budget)
  budget: Budget;

  @Field()
  periodStart: Date;

  @Field({ description: "When the next period starts (the spend starts from 0 again)" })
  resetsAt: Date;

  @Field(() => Float)
  spentUsd: number;

  @Field(() => Float, { description: "Never below 0" })
  remainingUsd: number;

  @Field(() => Float, { description: "Spent as a percentage of the limit (may pass 100: spend that happened is always recorded)" })
  percent: number;

  @Field({ description: "The limit is spent; a HARD budget now refuses new USER messages and startMessage" })
  exceeded: boolean;
}
