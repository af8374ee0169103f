import { Field, ObjectType } from "type-graphql";
import { BaseModel } from "../../db/base.model";
import { Role } from "./role.enum";

/**
 * A person or a machine identity (service). Fields that identify someone outside Parley (email, external
 * and Discord ids, preferences) are resolved by UserResolver, which shows them only to the user and admins.
 */
@ObjectType({ description: "A person or service identity", simpleResolvers: true })
export class User extends BaseModel {
  static override tableName = "users";

  externalId: string | null;
  discordId: string | null;
  email: string | null;
  preferences: Record<string, unknown>;

  @Field()
  displayName: string;

  @Field(() => Role)
  role: Role;

  @Field()
  isActive: boolean;
}
