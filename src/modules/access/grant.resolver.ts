import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ServiceGrant } from "./grant.model";
import { GrantServiceInput } from "./grant.input";
import * as grants from "./grant.service";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { User } from "../user/user.model";

@Resolver(() => ServiceGrant)
export class ServiceGrantResolver {
  @Mutation(() => ServiceGrant, { description: "Admins only: lets a service reach a conversation, or every conversation of an origin" })
  grantService(@Arg("input") input: GrantServiceInput, @Ctx() ctx: Context): Promise<ServiceGrant> {
    return grants.grantService(ctx, input);
  }

  @Mutation(() => Boolean, { description: "Admins only" })
  revokeServiceGrant(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return grants.revokeServiceGrant(ctx, id);
  }

  @Query(() => [ServiceGrant], { description: "Admins: any service's grants (or all); services: their own" })
  serviceGrants(@Arg("serviceId", () => UUIDScalar, { nullable: true }) serviceId: string | null, @Ctx() ctx: Context): Promise<ServiceGrant[]> {
    return grants.listServiceGrants(ctx, serviceId);
  }

  @FieldResolver(() => User, { nullable: true, description: "The service granted" })
  service(@Root() grant: ServiceGrant, @Ctx() ctx: Context): Promise<User | undefined> {
    return ctx.loaders.userById.load(grant.serviceId);
  }
}
