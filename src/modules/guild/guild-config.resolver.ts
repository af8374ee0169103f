import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import type { Context } from "../../graphql/context";
import { User } from "../user/user.model";
import { GuildConfig } from "./guild-config.types";
import * as guilds from "./guild-config.service";

const WHO = "Admins, and services granted the DISCORD origin";

@Resolver(() => GuildConfig)
export class GuildConfigResolver {
  @Query(() => GuildConfig, { nullable: true, description: `${WHO}: a Discord guild's settings; null when none are stored` })
  guildConfig(@Arg("guildId") guildId: string, @Ctx() ctx: Context): Promise<GuildConfig | null> {
    return guilds.guildConfig(ctx, guildId);
  }

  @Mutation(() => GuildConfig, {
    description:
      `${WHO}: replaces a guild's settings, or with merge sets only the top-level keys given (null removes one). ` +
      "Unknown keys and values out of range are BAD_USER_INPUT; settings equal to the stored ones change nothing",
  })
  setGuildConfig(
    @Arg("guildId") guildId: string,
    @Arg("settings", () => JSONResolver) settings: unknown,
    @Arg("merge", () => Boolean, { nullable: true, defaultValue: false }) merge: boolean | null,
    @Ctx() ctx: Context,
  ): Promise<GuildConfig> {
    return guilds.setGuildConfig(ctx, guildId, settings, merge ?? false);
  }

  @Mutation(() => Boolean, { description: `${WHO}: removes a guild's settings; false when there were none` })
  deleteGuildConfig(@Arg("guildId") guildId: string, @Ctx() ctx: Context): Promise<boolean> {
    return guilds.deleteGuildConfig(ctx, guildId);
  }

  @FieldResolver(() => User, { nullable: true, description: "Who made the last change; null when that account was deleted" })
  updatedBy(@Root() config: GuildConfig, @Ctx() ctx: Context): Promise<User | undefined> | undefined {
    return config.updatedBy ? ctx.loaders.userById.load(config.updatedBy) : undefined;
  }
}
