import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { Role } from "./role.enum";
import { CreateUserInput, UpsertDiscordUserInput, UsersArgs } from "./user.input";
import * as admin from "./user.admin";
import type { Context } from "../../graphql/context";
import { viewerOf } from "./viewer";
import { NotFoundError } from "../../graphql/errors";
import { isAdmin } from "./viewer";
import { User } from "./user.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { UserActivity } from "./user-activity.types";
import { userActivity } from "./user-activity.service";
import { updatePreferences } from "./user-preferences.service";

/** Private fields are null for anyone but the user and admins (a message's author may be someone else). */
function privateField<T>(ctx: Context, user: User, value: T): T | null {
  const viewer = viewerOf(ctx);
  return viewer.id === user.id || isAdmin(viewer) ? value : null;
}

export const UserConnection = ConnectionType(User);

@Resolver(() => User)
export class UserResolver {
  @Query(() => UserConnection, { description: "Admins only: all users, newest first" })
  users(@Args() args: UsersArgs, @Ctx() ctx: Context): Promise<ConnectionShape<User>> {
    return admin.listUsers(ctx, args);
  }

  @Mutation(() => User, { description: "Admins only" })
  createUser(@Arg("input") input: CreateUserInput, @Ctx() ctx: Context): Promise<User> {
    return admin.createUser(ctx, input);
  }

  @Mutation(() => User, { description: "Admins only (not on themselves)" })
  setUserRole(@Arg("id", () => UUIDScalar) id: string, @Arg("role", () => Role) role: Role, @Ctx() ctx: Context): Promise<User> {
    return admin.setUserRole(ctx, id, role);
  }

  @Mutation(() => User, { description: "Admins only (not on themselves): the user's keys and tokens stop working at once" })
  deactivateUser(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<User> {
    return admin.deactivateUser(ctx, id);
  }

  @Mutation(() => User, { description: "Admins only" })
  reactivateUser(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<User> {
    return admin.reactivateUser(ctx, id);
  }

  @Mutation(() => User, { description: "Admins, and services granted the DISCORD origin: the member with this Discord id, created or renamed" })
  upsertDiscordUser(@Arg("input") input: UpsertDiscordUserInput, @Ctx() ctx: Context): Promise<User> {
    return admin.upsertDiscordUser(ctx, input);
  }

  @Query(() => User, { description: "The user the bearer token belongs to" })
  async viewer(@Ctx() ctx: Context): Promise<User> {
    const viewer = viewerOf(ctx);
    const user = await ctx.loaders.userById.load(viewer.id);
    if (!user) throw new NotFoundError("User");
    // A key limited to a lower role acts with that role; a copy, so the cached user elsewhere keeps its own.
    return user.role === viewer.role ? user : Object.assign(user.$clone(), { role: viewer.role });
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

  @Mutation(() => User, {
    description: "The viewer's own preferences (theme, language, defaultModel, defaultAssistantId, timeZone; null removes one), merged into the stored ones or, with merge: false, replacing them",
  })
  updatePreferences(
    @Arg("preferences", () => JSONResolver) preferences: unknown,
    @Arg("merge", () => Boolean, { nullable: true, defaultValue: true }) merge: boolean | null,
    @Ctx() ctx: Context,
  ): Promise<User> {
    return updatePreferences(ctx, preferences, merge ?? true); // an explicit null means the default
  }

  @FieldResolver(() => UserActivity, { nullable: true, description: "Visible to the user and admins" })
  activity(@Root() user: User, @Ctx() ctx: Context): Promise<UserActivity | null> {
    return userActivity(ctx, user);
  }

  @FieldResolver(() => JSONResolver, { nullable: true, description: "Visible to the user and admins" })
  preferences(@Root() user: User, @Ctx() ctx: Context): Record<string, unknown> | null {
    return privateField(ctx, user, user.preferences);
  }
}
