import { Arg, Ctx, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { Role } from "../user/role.enum";
import { ApiKey, CreatedApiKey } from "./api-key.model";
import * as keys from "./api-key.manage";
import { UUIDScalar } from "../../graphql/scalars/uuid";

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  @Mutation(() => CreatedApiKey, {
    description: "A new key for yourself (admins: for `userId`), optionally limited to a lower `role`. The secret `key` is shown only here.",
  })
  createApiKey(
    @Arg("name") name: string,
    @Arg("role", () => Role, { nullable: true }) role: Role | null,
    @Arg("userId", () => UUIDScalar, { nullable: true }) userId: string | null,
    @Ctx() ctx: Context,
  ): Promise<CreatedApiKey> {
    return keys.createKey(ctx, name, role, userId);
  }

  @Mutation(() => ApiKey, { description: "Revokes a key at once (idempotent). Your own keys; admins: anyone's." })
  revokeApiKey(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<ApiKey> {
    return keys.revokeKey(ctx, id);
  }

  @Query(() => [ApiKey], { description: "Your keys, newest first (admins: `userId`'s)" })
  apiKeys(@Arg("userId", () => UUIDScalar, { nullable: true }) userId: string | null, @Ctx() ctx: Context): Promise<ApiKey[]> {
    return keys.listKeys(ctx, userId);
  }
}
