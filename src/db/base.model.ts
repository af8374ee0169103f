import { Model } from "objection";
import { Field, ObjectType } from "type-graphql";
import { UUIDScalar } from "../graphql/scalars/uuid";

/**
 * Shared columns of every table with a uuid key. The database fills id, created_at and updated_at
 * (defaults and the touch trigger), so the app never invents them.
 */
@ObjectType()
export abstract class BaseModel extends Model {
  @Field(() => UUIDScalar)
  id: string;

  @Field()
  createdAt: Date;

  @Field()
  updatedAt: Date;
}
