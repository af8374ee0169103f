import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { User } from "../user/user.model";
import { KnowledgeStats, KnowledgeTopUser, QueryRecord } from "./query-history.types";
import { KnowledgeStatsArgs, QueryHistoryArgs, RecordQueryInput } from "./query-history.input";
import * as history from "./query-history.service";

export const QueryRecordConnection = ConnectionType(QueryRecord);

@Resolver(() => QueryRecord)
export class QueryHistoryResolver {
  @Mutation(() => QueryRecord, {
    description:
      "Records a question and how it was answered. Members record their own; admins and services granted DISCORD also questions asked in a guild " +
      "and those of Discord members (userId)",
  })
  recordQuery(@Arg("input") input: RecordQueryInput, @Ctx() ctx: Context): Promise<QueryRecord> {
    return history.recordQuery(ctx, input);
  }

  @Query(() => QueryRecordConnection, {
    description: "Recorded questions, newest first: admins all; services granted DISCORD those asked in guilds, and their own; members the questions they asked",
  })
  queryHistory(@Args() args: QueryHistoryArgs, @Ctx() ctx: Context): Promise<ConnectionShape<QueryRecord>> {
    return history.queryHistory(ctx, args);
  }

  @Query(() => KnowledgeStats, {
    description: "Questions, users, cache hit rate and response times over what queryHistory shows you in [from, to) (default: the last 24 hours), and the live answer cache",
  })
  knowledgeStats(@Args() args: KnowledgeStatsArgs, @Ctx() ctx: Context): Promise<KnowledgeStats> {
    return history.knowledgeStats(ctx, args);
  }

  @FieldResolver(() => User, { nullable: true, description: "Who asked (null once the user was deleted)" })
  async user(@Root() record: QueryRecord, @Ctx() ctx: Context): Promise<User | undefined> {
    return record.userId ? ctx.loaders.userById.load(record.userId) : undefined;
  }
}

@Resolver(() => KnowledgeTopUser)
export class KnowledgeTopUserResolver {
  @FieldResolver(() => User, { nullable: true, description: "Null once the user was deleted" })
  user(@Root() top: KnowledgeTopUser, @Ctx() ctx: Context): Promise<User | undefined> {
    return ctx.loaders.userById.load(top.userId);
  }
}
