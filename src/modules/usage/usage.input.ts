import { ArgsType, Field, InputType } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { UsageGroupBy, UsagePeriod } from "./usage.enums";

@InputType({ description: "Which model calls to sum: from (inclusive) to (exclusive), and optional narrowing" })
export class UsageFilter {
  @Field()
  from: Date;

  @Field()
  to: Date;

  @Field(() => UUIDScalar, { nullable: true, description: "Members: only their own (the default)" })
  userId?: string | null;

  @Field(() => String, { nullable: true })
  model?: string | null;

  @Field(() => String, { nullable: true })
  guildId?: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId?: string | null;
}

@ArgsType()
export class UsageArgs {
  @Field(() => UsageFilter)
  filter: UsageFilter;

  @Field(() => UsagePeriod)
  period: UsagePeriod;

  @Field(() => [UsageGroupBy], { nullable: true, description: "Split the buckets by these too (default: none)" })
  groupBy?: UsageGroupBy[] | null;
}
