import type { Knex } from "knex";
import { embeddedColumns, takeEmbedded } from "../../db/embed";
import { User } from "../user/user.model";
import { Message } from "./message.model";

export interface MessagePageKey {
  conversationId: string;
  direction: "forward" | "backward";
  /** Rows to fetch (the page size plus one, which tells whether there is more). */
  limit: number;
  /** Exclusive bound: after it when forward, before it when backward; none means from the start/end. */
  cursorSeq: number | undefined;
}

const shapeOf = (key: MessagePageKey) => `${key.direction}:${key.limit}:${key.cursorSeq ?? ""}`;

/**
 * Loads pages of messages for many conversations. Keys with the same page shape share one statement: a
 * LATERAL join that walks the (conversation_id, seq) index of each conversation and stops at the limit,
 * so the cost is the page size, not the conversation's length. Rows come back in page order.
 *
 * The messages' authors come in the same statement (a page is nearly always shown with who wrote it, and a
 * join on users' primary key for at most a page of rows costs far less than the round trip it saves); they
 * are handed to `authors` for the request's userById loader.
 */
export async function messagePageBatch(knex: Knex, keys: readonly MessagePageKey[], authors: (user: User) => void): Promise<Message[][]> {
  const groups = new Map<string, MessagePageKey[]>();
  for (const key of keys) {
    const group = groups.get(shapeOf(key));
    if (group) group.push(key);
    else groups.set(shapeOf(key), [key]);
  }
  const pages = new Map<string, Message[]>(); // `${shape}|${conversationId}` → rows
  const authorColumns = await embeddedColumns(knex, User, "u", "author");
  await Promise.all(
    [...groups].map(async ([shape, group]) => {
      const { direction, limit, cursorSeq } = group[0];
      const ids = [...new Set(group.map((key) => key.conversationId))];
      const rows: Record<string, unknown>[] = await knex
        .select("p.*", ...authorColumns)
        .from(knex.raw("unnest(?::uuid[]) as c(id)", [ids]))
        .joinRaw("cross join lateral (?) p", [
          knex("messages as m")
            .whereRaw("m.conversation_id = c.id")
            .modify((q) => {
              if (cursorSeq !== undefined) q.where("m.seq", direction === "forward" ? ">" : "<", cursorSeq);
            })
            .orderBy("m.seq", direction === "forward" ? "asc" : "desc")
            .limit(limit) as unknown as Knex.Raw, // knex inlines a builder binding as a subquery
        ])
        .leftJoin("users as u", "u.id", "p.authorId")
        .orderBy("p.seq", direction === "forward" ? "asc" : "desc"); // the join may reorder the lateral's rows
      for (const row of rows) {
        const author = takeEmbedded(row, "author");
        if (author) authors(User.fromDatabaseJson(author));
        const message = Message.fromDatabaseJson(row);
        const pageKey = `${shape}|${message.conversationId}`;
        const page = pages.get(pageKey);
        if (page) page.push(message);
        else pages.set(pageKey, [message]);
      }
    }),
  );
  return keys.map((key) => pages.get(`${shapeOf(key)}|${key.conversationId}`) ?? []);
}
