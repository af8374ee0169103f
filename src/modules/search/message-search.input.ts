import { Field, InputType } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { MessageRole } from "../message/message.enums";

@InputType({ description: "Narrows searchMessages; every field is optional and they combine with AND" })
export class MessageSearchFilter {
  @Field(() => UUIDScalar, { nullable: true, description: "Only this conversation (NOT_FOUND when you cannot read it)" })
  conversationId?: string | null;

  @Field(() => MessageRole, { nullable: true })
  role?: MessageRole | null;

  @Field(() => Date, { nullable: true, description: "Messages created at or after this time" })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Messages created before this time" })
  to?: Date | null;
}
