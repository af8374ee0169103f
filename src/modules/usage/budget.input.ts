import { Field, Float, InputType, Int } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { BudgetEnforcement, BudgetPeriod } from "./budget.enums";

@InputType({ description: "A budget for a user or a Discord guild (one of the two); setting it again replaces it" })
export class SetBudgetInput {
  @Field(() => UUIDScalar, { nullable: true })
  userId?: string | null;

  @Field(() => String, { nullable: true })
  guildId?: string | null;

  @Field(() => BudgetPeriod)
  period: BudgetPeriod;

  @Field(() => String, { nullable: true, defaultValue: "UTC", description: "An IANA time zone, e.g. Europe/Lisbon" })
  timeZone?: string | null;

  @Field(() => Float, { description: "USD per period, more than 0" })
  limitUsd: number;

  @Field(() => [Int], { nullable: true, defaultValue: [50, 80, 100], description: "1 to 10 percentages, each 1 to 100" })
  thresholds?: number[] | null;

  @Field(() => BudgetEnforcement, { nullable: true, defaultValue: BudgetEnforcement.SOFT })
  enforcement?: BudgetEnforcement | null;
}
