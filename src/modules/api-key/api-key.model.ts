import { Field, ObjectType } from "type-graphql";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { Role } from "../user/role.enum";
import { User } from "../user/user.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** An API key. Only a hash of the secret is stored; `prefix` tells keys apart in lists. */
@ObjectType({ description: "An API key (the secret itself is shown only once, when it is created)" })
export class ApiKey extends BaseModel {
  static override tableName = "api_keys";

  static override relationMappings = () => ({
    user: { relation: Model.BelongsToOneRelation, modelClass: User, join: { from: "api_keys.userId", to: "users.id" } },
  });

  keyHash: string;

  @Field(() => UUIDScalar, { description: "The user the key belongs to" })
  userId: string;

  @Field(() => Role, { nullable: true, description: "A role lower than the user's that the key is limited to" })
  role: Role | null;

  @Field()
  name: string;

  @Field({ description: "The first characters of the key" })
  prefix: string;

  @Field(() => Date, { nullable: true })
  lastUsedAt: Date | null;

  @Field(() => Date, { nullable: true })
  revokedAt: Date | null;
}

/** The answer to createApiKey: the key's fields plus the secret, which is shown only this once. */
@ObjectType({ description: "A new API key with its secret (shown only this once)" })
export class CreatedApiKey extends ApiKey {
  @Field({ description: "The secret: send it as `Authorization: Bearer <key>`. It cannot be shown again." })
  key: string;
}
