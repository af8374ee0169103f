import { ArgsType, Field, InputType } from "type-graphql";
import { ConnectionArgs } from "../../graphql/connection";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@InputType()
export class AuditLogFilter {
  @Field(() => UUIDScalar, { nullable: true })
  actorId?: string;

  @Field({ nullable: true })
  action?: string;

  @Field({ nullable: true })
  targetType?: string;

  @Field({ nullable: true })
  targetId?: string;

  @Field({ nullable: true, description: "createdAt >= from" })
  from?: Date;

  @Field({ nullable: true, description: "createdAt < to" })
  to?: Date;
}

@ArgsType()
export class AuditLogsArgs extends ConnectionArgs {
  @Field(() => AuditLogFilter, { nullable: true })
  filter?: AuditLogFilter | null;
}
