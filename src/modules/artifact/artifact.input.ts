import { ArgsType, Field, InputType } from "type-graphql";
import { IsOptional, Length } from "class-validator";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { ArtifactKind } from "./artifact.types";

const CONTENT =
  "Inline text, up to ARTIFACT_MAX_TEXT_BYTES in UTF-8 (PAYLOAD_TOO_LARGE above). Leave it out for a file: the version is " +
  "PENDING until its bytes are sent to PUT /artifacts/{id}/content";

@InputType()
export class CreateArtifactInput {
  @Field(() => UUIDScalar, { description: "The ASSISTANT or TOOL message that produced it" })
  messageId: string;

  @Field(() => ArtifactKind)
  kind: ArtifactKind;

  @Field()
  @Length(1, 500)
  title: string;

  @Field(() => String, { nullable: true, description: "The programming language (CODE)" })
  @IsOptional()
  @Length(1, 100)
  language?: string | null;

  @Field(() => String, { nullable: true, description: "A media type such as text/markdown or image/png (no parameters)" })
  @IsOptional()
  @Length(3, 255)
  mimeType?: string | null;

  @Field(() => String, { nullable: true, description: CONTENT })
  content?: string | null;
}

@InputType({ description: "The next version. Title, language and mimeType left out are the edited version's; content is the new version's own" })
export class EditArtifactInput {
  @Field(() => UUIDScalar, { nullable: true, description: "The message that produced the edit (default: the edited version's)" })
  messageId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 500)
  title?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 100)
  language?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(3, 255)
  mimeType?: string | null;

  @Field(() => String, { nullable: true, description: CONTENT })
  content?: string | null;
}

@ArgsType()
export class ConversationArtifactsArgs {
  @Field(() => ArtifactKind, { nullable: true, description: "Only artifacts of this kind" })
  kind?: ArtifactKind | null;
}
