import { Arg, Args, ArgsType, Ctx, Field, Mutation, Query, Resolver } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Length, MaxLength } from "class-validator";
import type { Context } from "../../graphql/context";
import { viewerOf } from "../user/viewer";
import { ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText } from "../../graphql/json-input";
import { isAdmin } from "../user/viewer";
import { audit } from "../audit/audit.service";
import { SystemConfig } from "./system-config.model";
import { parseRetentionPolicy, RETENTION_KEY } from "../ops/retention.policy";

@ArgsType()
class SetSystemConfigArgs {
  @Field()
  @Length(1, 200)
  key: string;

  @Field(() => JSONResolver, { description: "Any JSON value" })
  value: unknown;

  @Field(() => String, { nullable: true })
  @MaxLength(1000)
  description?: string | null;
}

function assertAdmin(ctx: Context): void {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("System configuration is for admins");
}

@Resolver(() => SystemConfig)
export class SystemConfigResolver {
  @Query(() => [SystemConfig], { description: "Admins only" })
  async systemConfigs(@Ctx() ctx: Context): Promise<SystemConfig[]> {
    assertAdmin(ctx);
    return SystemConfig.query(ctx.db.knex).orderBy("key");
  }

  @Query(() => SystemConfig, { description: "Admins only" })
  async systemConfig(@Arg("key") key: string, @Ctx() ctx: Context): Promise<SystemConfig> {
    assertAdmin(ctx);
    const config = await SystemConfig.query(ctx.db.knex).findById(key);
    if (!config) throw new NotFoundError("System config");
    return config;
  }

  @Mutation(() => SystemConfig, { description: "Admins only: creates or replaces a setting" })
  async setSystemConfig(@Args() { key, value, description }: SetSystemConfigArgs, @Ctx() ctx: Context): Promise<SystemConfig> {
    assertAdmin(ctx);
    checkJson({ value }, "value", "object"); // size and NUL checks; any JSON value is allowed inside
    checkText(key, "key");
    if (description != null) checkText(description, "description");
    if (key === RETENTION_KEY) parseRetentionPolicy(value); // BAD_USER_INPUT naming every problem; nothing stored
    return ctx.db.knex.transaction(async (trx) => {
      const [row] = await trx("system_configs")
        .insert({ key, value: JSON.stringify(value), description: description ?? null, updatedBy: ctx.viewer!.id })
        .onConflict("key")
        .merge()
        .returning("*");
      await audit(ctx, { action: "config.set", targetType: "system_config", targetId: key, details: { value } }, trx);
      return SystemConfig.fromDatabaseJson(row);
    });
  }
}
