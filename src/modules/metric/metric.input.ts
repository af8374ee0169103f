import { ArgsType, Field, InputType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Length } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";

@InputType()
export class MetricInput {
  @Field()
  @Length(1, 200)
  clientBotId: string;

  @Field()
  @Length(1, 200)
  metricType: string;

  @Field(() => JSONResolver, { nullable: true, description: "A JSON object; {} when omitted" })
  data?: Record<string, unknown> | null;

  @Field({ nullable: true, description: "When it was measured (default: now)" })
  recordedAt?: Date;
}

@InputType()
export class MetricFilter {
  @Field({ nullable: true })
  clientBotId?: string;

  @Field({ nullable: true })
  metricType?: string;

  @Field({ nullable: true, description: "recordedAt >= from" })
  from?: Date;

  @Field({ nullable: true, description: "recordedAt < to" })
  to?: Date;
}

@ArgsType()
export class MetricsArgs extends ConnectionArgs {
  @Field(() => MetricFilter, { nullable: true })
  filter?: MetricFilter | null;
}
