import { Field, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** One change to access or data: who, what, on which target, from where. Append-only. */
@ObjectType({ description: "A change to access or data (admins only)" })
export class AuditLog extends Model {
  static override tableName = "audit_logs";

  @Field(() => UUIDScalar)
  id: string;

  @Field(() => UUIDScalar, { nullable: true, description: "Null when the actor's account was deleted" })
  actorId: string | null;

  @Field({ description: "e.g. api_key.create, user.set_role, conversation.delete" })
  action: string;

  @Field(() => String, { nullable: true })
  targetType: string | null;

  @Field(() => String, { nullable: true })
  targetId: string | null;

  @Field(() => JSONResolver)
  details: Record<string, unknown>;

  @Field(() => String, { nullable: true })
  ip: string | null;

  @Field(() => String, { nullable: true })
  requestId: string | null;

  @Field()
  createdAt: Date;
}
