import { Field, InputType } from "type-graphql";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@InputType({ description: "Exactly one of conversationId and origin" })
export class GrantServiceInput {
  @Field(() => UUIDScalar)
  serviceId: string;

  @Field(() => UUIDScalar, { nullable: true, description: "Grant one conversation" })
  conversationId?: string | null;

  @Field(() => ConversationOrigin, { nullable: true, description: "Grant every conversation of this origin, present and future" })
  origin?: ConversationOrigin | null;
}
