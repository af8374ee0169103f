import { Field, Int, ObjectType } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { User } from "../user/user.model";
import { DeleteUserMode } from "./privacy.enums";

/** What deleteUser removed, erased and kept; the same counts go to the audit log entry. */
export interface DeletionCounts {
  conversations: number;
  messages: number;
  erasedMessages: number;
  feedback: number;
  transcripts: number;
  artifacts: number;
  dataExports: number;
  apiKeys: number;
  serviceGrants: number;
  assistants: number;
  documents: number;
  queryHistory: number;
  files: number;
  usageRecordsKept: number;
}

@ObjectType({ description: "What deleteUser did (the audit log entry user.delete or user.anonymize has the same counts)", simpleResolvers: true })
export class UserDeletion implements DeletionCounts {
  @Field(() => UUIDScalar)
  userId: string;

  @Field(() => DeleteUserMode)
  mode: DeleteUserMode;

  @Field(() => User, { nullable: true, description: "ANONYMIZE: the tombstone that stays (\"Deleted user\", inactive); DELETE: null" })
  user: User | null;

  @Field(() => Int, { description: "Conversations the user owned, deleted with everything in them" })
  conversations: number;

  @Field(() => Int, { description: "Messages deleted with those conversations, whoever wrote them" })
  messages: number;

  @Field(() => Int, {
    description: "USER messages the user wrote in conversations of others: emptied in place (content \"\", metadata { erasedAt }), seq kept",
  })
  erasedMessages: number;

  @Field(() => Int, { description: "The user's feedback on messages" })
  feedback: number;

  @Field(() => Int, {
    description: "Transcripts deleted: of the user's conversations, asked for by the user, or of conversations holding an erased message",
  })
  transcripts: number;

  @Field(() => Int, { description: "Artifact versions of the user's conversations" })
  artifacts: number;

  @Field(() => Int, { description: "The user's own data exports" })
  dataExports: number;

  @Field(() => Int, { description: "API keys deleted (DELETE) or revoked (ANONYMIZE)" })
  apiKeys: number;

  @Field(() => Int, { description: "Grants of the user as a service" })
  serviceGrants: number;

  @Field(() => Int, { description: "Assistants the user owned" })
  assistants: number;

  @Field(() => Int, { description: "Documents of the user's own knowledge base" })
  documents: number;

  @Field(() => Int, { description: "Questions the user asked (query history)" })
  queryHistory: number;

  @Field(() => Int, { description: "Stored files removed after the commit (transcripts, artifacts, data exports)" })
  files: number;

  @Field(() => Int, { description: "Usage ledger rows billed to the user that stay for accounting (on the tombstone, or without a user)" })
  usageRecordsKept: number;
}
