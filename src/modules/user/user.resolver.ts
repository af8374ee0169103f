import { Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import type { Context } from "../../graphql/context";
import { viewerOf } from "../../graphql/context";
import { NotFoundError } from "../../graphql/errors";
import { isAdmin } from "./viewer";
import { User } from "./user.model";

/** Private fields are null for anyone but the user and admins (a message's author may be someone else). */
function privateField<T>(ctx: Context, user: User, value: T): T | null {
  const viewer = viewerOf(ctx);
  return viewer.id === user.id || isAdmin(viewer) ? value : null;
}

@Resolver(() => User)
export class UserResolver {
  @Query(() => User, { description: "The user the bearer token belongs to" })
  async viewer(@Ctx() ctx: Context): Promise<User> {
    const user = await ctx.loaders.userById.load(viewerOf(ctx).id);
    if (!user) throw new NotFoundError("User");
    return user;
  }

  @FieldResolver(() => String, { nullable: true, description: "Visible to the user and admins" })
  email(@Root() user: User, @Ctx() ctx: Context): string | null {
    return privateField(ctx, user, user.email);
  }

  @FieldResolver(() => String, { nullable: true, description: "Identity-provider subject; visible to the user and admins" })
  externalId(@Root() user: User, @Ctx() ctx: Context): string | null {
    return privateField(ctx, user, user.externalId);
  }

  @FieldResolver(() => String, { nullable: true, description: "Visible to the user and admins" })
  discordId(@Root() user: User, @Ctx() ctx: Context): string | null {
    return privateField(ctx, user, user.discordId);
  }

  @FieldResolver(() => JSONResolver, { nullable: true, description: "Visible to the user and admins" })
  preferences(@Root() user: User, @Ctx() ctx: Context): Record<string, unknown> | null {
    return privateField(ctx, user, user.preferences);
  }
}
