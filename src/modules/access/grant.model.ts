import { Field, ObjectType } from "type-graphql";
import { Model } from "objection";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/** What a service identity may reach beyond its own conversations: one conversation, or a whole origin. */
@ObjectType({ description: "A service's access to one conversation, or to every conversation of an origin" })
export class ServiceGrant extends Model {
  static override tableName = "service_grants";

  @Field(() => UUIDScalar)
  id: string;

  @Field(() => UUIDScalar)
  serviceId: string;

  @Field(() => UUIDScalar, { nullable: true })
  conversationId: string | null;

  @Field(() => ConversationOrigin, { nullable: true })
  origin: ConversationOrigin | null;

  createdBy: string | null;

  @Field()
  createdAt: Date;
}

/** A service's grants, loaded once per request. */
export interface GrantSet {
  origins: ReadonlySet<string>;
  conversationIds: ReadonlySet<string>;
}
