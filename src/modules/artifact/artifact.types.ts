import { Field, Int, ObjectType, registerEnumType } from "type-graphql";
import { BaseModel } from "../../db/base.model";

export enum ArtifactKind {
  CODE = "code",
  DOCUMENT = "document",
  IMAGE = "image",
  FILE = "file",
  DATA = "data",
}
registerEnumType(ArtifactKind, { name: "ArtifactKind" });

export enum ArtifactStatus {
  PENDING = "pending",
  READY = "ready",
}
registerEnumType(ArtifactStatus, {
  name: "ArtifactStatus",
  description: "PENDING: a file version whose bytes have not been uploaded yet (PUT /artifacts/{id}/content); READY: readable",
});

/**
 * One version of something an assistant or tool message produced. Editing never changes a version: it adds
 * the next one (parentId names the version edited, rootId the first), so the history stays as it was.
 */
@ObjectType({ description: "A version of content an assistant or tool message produced: inline text, or a file to download" })
export class Artifact extends BaseModel {
  static override tableName = "artifacts";

  conversationId: string;
  messageId: string;
  parentId: string | null;
  rootId: string;
  /** Where the file is in the storage backend; never shown to clients. Set with the upload. */
  storageKey: string | null;
  createdBy: string | null;

  @Field(() => Int, { description: "1 for the first version, n + 1 for an edit of the history's latest" })
  version: number;

  @Field(() => ArtifactKind)
  kind: ArtifactKind;

  @Field()
  title: string;

  @Field(() => String, { nullable: true, description: "The programming language (CODE)" })
  language: string | null;

  @Field(() => String, { nullable: true, description: "The media type, as given or as uploaded" })
  mimeType: string | null;

  @Field(() => String, { nullable: true, description: "The inline text; null for a file version" })
  content: string | null;

  /** The stored file's size; the field resolver also answers it for inline text. */
  sizeBytes: number | null;

  @Field(() => String, { nullable: true, description: "Hex SHA-256 of the file (READY files)" })
  sha256: string | null;

  @Field(() => ArtifactStatus)
  status: ArtifactStatus;
}
