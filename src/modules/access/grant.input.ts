import { Field, InputType } from "type-graphql";
import { UUIDResolver } from "graphql-scalars";
import { ConversationOrigin } from "../conversation/conversation.enums";

@InputType({ description: "Exactly one of conversationId and origin" })
export class GrantServiceInput {
  @Field(() => UUIDResolver)
  serviceId: string;

  @Field(() => UUIDResolver, { nullable: true, description: "Grant one conversation" })
  conversationId?: string | null;

  @Field(() => ConversationOrigin, { nullable: true, description: "Grant every conversation of this origin, present and future" })
  origin?: ConversationOrigin | null;
}
