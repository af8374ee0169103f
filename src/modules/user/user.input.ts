import { ArgsType, Field, InputType } from "type-graphql";
import { IsEmail, IsOptional, Length, Matches, ValidateNested } from "class-validator";
import { ConnectionArgs } from "../../graphql/connection";
import { Role } from "./role.enum";

@InputType()
export class UserFilter {
  @Field(() => Role, { nullable: true })
  role?: Role;

  @Field({ nullable: true })
  isActive?: boolean;

  @Field(() => String, { nullable: true, description: "Part of the display name or email, any case (for pickers: type a few letters)" })
  @IsOptional()
  @Length(1, 200)
  search?: string | null;
}

@ArgsType()
export class UsersArgs extends ConnectionArgs {
  @Field(() => UserFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: UserFilter | null;
}

@InputType()
export class CreateUserInput {
  @Field()
  @Length(1, 200)
  displayName: string;

  // Nullable with a default rather than non-null: graphql-jit drops the defaults of non-null input fields.
  @Field(() => Role, { nullable: true, defaultValue: Role.MEMBER })
  role?: Role | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsEmail()
  email?: string | null;

  @Field(() => String, { nullable: true, description: "Identity-provider subject (JWT `sub`)" })
  @IsOptional()
  @Length(1, 255)
  externalId?: string | null;
}

@InputType()
export class UpsertDiscordUserInput {
  @Field({ description: "The Discord user id (a snowflake)" })
  @Matches(/^\d{1,25}$/)
  discordId: string;

  @Field()
  @Length(1, 200)
  displayName: string;
}
