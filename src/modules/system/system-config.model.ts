import { Field, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** An operator setting stored in the database (feature switches, defaults for bots, ...). */
@ObjectType({ description: "An operator setting stored in the database (admins only)" })
export class SystemConfig extends Model {
  static override tableName = "system_configs";
  static override idColumn = "key";

  @Field()
  key: string;

  @Field(() => JSONResolver)
  value: unknown;

  @Field(() => String, { nullable: true })
  description: string | null;

  @Field(() => UUIDScalar, { nullable: true })
  updatedBy: string | null;

  @Field()
  createdAt: Date;

  @Field()
  updatedAt: Date;
}
