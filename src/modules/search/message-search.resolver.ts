import { Arg, Ctx, Int, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { MessageSearchFilter } from "./message-search.input";
import { MessageSearchHit } from "./message-search.types";
import * as search from "./message-search.service";

@Resolver(() => MessageSearchHit)
export class MessageSearchResolver {
  @Query(() => [MessageSearchHit], {
    description:
      "Full-text search over the messages you can read, in SEARCH_LANGUAGE: words match their other forms (running finds runs), " +
      '"quoted phrases", OR, and -word to exclude. Most relevant first, then newest. Encrypted messages, and STREAMING replies ' +
      "until they end, are not searchable. BAD_USER_INPUT for a query without searchable words",
  })
  searchMessages(
    @Arg("query") query: string,
    @Arg("filter", () => MessageSearchFilter, { nullable: true }) filter: MessageSearchFilter | null,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20, description: "At most MAX_PAGE_SIZE" }) first: number | null,
    @Ctx() ctx: Context,
  ): Promise<MessageSearchHit[]> {
    return search.searchMessages(ctx, query, filter, first);
  }
}
