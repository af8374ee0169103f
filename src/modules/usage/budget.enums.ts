import { registerEnumType } from "type-graphql";

/** The period a budget caps, in its own time zone. */
export enum BudgetPeriod {
  DAILY = "daily",
  WEEKLY = "weekly",
  MONTHLY = "monthly",
}
registerEnumType(BudgetPeriod, { name: "BudgetPeriod", description: "The period a budget caps, in its time zone (weeks start on Monday)" });

/** HARD refuses new USER messages and startMessage once spent; SOFT only alerts. */
export enum BudgetEnforcement {
  HARD = "hard",
  SOFT = "soft",
}
registerEnumType(BudgetEnforcement, { name: "BudgetEnforcement", description: "HARD refuses new USER messages and startMessage once the limit is spent; SOFT only alerts" });
