import { Field, ObjectType } from "type-graphql";
import { UUIDResolver } from "graphql-scalars";
import { Model } from "objection";
import { ConversationOrigin } from "../conversation/conversation.enums";

/** What a service identity may reach beyond its own conversations: one conversation, or a whole origin. */
@ObjectType({ description: "A service's access to one conversation, or to every conversation of an origin" })
export class ServiceGrant extends Model {
  static override tableName = "service_grants";

  @Field(() => UUIDResolver)
  id: string;

  @Field(() => UUIDResolver)
  serviceId: string;

  @Field(() => UUIDResolver, { nullable: true })
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
