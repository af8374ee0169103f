import { Field, ObjectType } from "type-graphql";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { User } from "../user/user.model";

/** An API key. Only a hash of the secret is stored; `prefix` tells keys apart in lists. */
@ObjectType({ description: "An API key (the secret itself is shown only once, when it is created)" })
export class ApiKey extends BaseModel {
  static override tableName = "api_keys";

  static override relationMappings = () => ({
    user: { relation: Model.BelongsToOneRelation, modelClass: User, join: { from: "api_keys.userId", to: "users.id" } },
  });

  userId: string;
  keyHash: string;

  @Field()
  name: string;

  @Field({ description: "The first characters of the key" })
  prefix: string;

  @Field(() => Date, { nullable: true })
  lastUsedAt: Date | null;

  @Field(() => Date, { nullable: true })
  revokedAt: Date | null;
}
