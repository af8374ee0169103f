import { Arg, Args, Ctx, Int, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { Metric } from "./metric.model";
import { MetricInput, MetricsArgs } from "./metric.input";
import * as metrics from "./metric.service";

export const MetricConnection = ConnectionType(Metric);

@Resolver(() => Metric)
export class MetricResolver {
  @Mutation(() => Int, { description: "Stores the metrics (all or none); returns how many were stored. Services and admins." })
  recordMetrics(@Arg("input", () => [MetricInput]) input: MetricInput[], @Ctx() ctx: Context): Promise<number> {
    return metrics.recordMetrics(ctx, input);
  }

  @Query(() => MetricConnection, { description: "Metrics, newest first. Services see their own; admins see all." })
  metrics(@Args() args: MetricsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Metric>> {
    return metrics.listMetrics(ctx, args);
  }
}
