import { Field, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** A data point reported by a client bot (latency, usage, errors, ...). Append-only. */
@ObjectType({ description: "A data point reported by a client bot" })
export class Metric extends Model {
  static override tableName = "metrics";

  recordedBy: string | null;

  @Field(() => UUIDScalar)
  id: string;

  @Field()
  clientBotId: string;

  @Field()
  metricType: string;

  @Field(() => JSONResolver)
  data: unknown;

  @Field()
  recordedAt: Date;

  @Field()
  createdAt: Date;

  // The column is metric_data (as in the original schemas); the API calls it `data`.
  override $parseDatabaseJson(json: Record<string, unknown>) {
    const { metricData, ...rest } = super.$parseDatabaseJson(json);
    return { ...rest, data: metricData };
  }

  override $formatDatabaseJson(json: Record<string, unknown>) {
    const { data, ...rest } = super.$formatDatabaseJson(json);
    return { ...rest, metricData: data };
  }
}
