// Checked in alert.service.ts rather than with class-validator, so that every refusal names its `field`.
import { ArgsType, Field, InputType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { ConnectionArgs } from "../../graphql/connection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { AlertSeverity } from "./alert.enums";

@InputType()
export class RaiseAlertInput {
  @Field(() => AlertSeverity)
  severity: AlertSeverity;

  @Field({ description: "What raises it, 1 to 100 characters (trimmed), e.g. the service's name" })
  source: string;

  @Field({ description: "1 to 2000 characters (trimmed)" })
  message: string;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object (default {})" })
  details?: unknown;

  @Field(() => UUIDScalar, {
    nullable: true,
    description: "The user it concerns, who will see it: admins may name anyone, services only themselves. Omitted: only admins see it",
  })
  userId?: string | null;
}

@InputType()
export class AlertFilter {
  @Field(() => AlertSeverity, { nullable: true })
  severity?: AlertSeverity | null;

  @Field(() => String, { nullable: true })
  source?: string | null;

  @Field(() => Boolean, { nullable: true, description: "true: only acknowledged alerts; false: only those not acknowledged" })
  acknowledged?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: "true: only resolved alerts; false: only open ones" })
  resolved?: boolean | null;

  @Field(() => Date, { nullable: true, description: "createdAt >= from" })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "createdAt < to" })
  to?: Date | null;
}

@ArgsType()
export class AlertsArgs extends ConnectionArgs {
  @Field(() => AlertFilter, { nullable: true })
  filter?: AlertFilter | null;
}
