import type { Knex } from "knex";
import type { Model, ModelClass } from "objection";
import { cursorNumber, pageRequest, type ConnectionArgs, type PageLimits, type PageRequest } from "../../graphql/connection";
import { embeddedColumns, plainColumns, rowSplitter } from "../../db/embed";
import { prepared } from "../../db/prepared";
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

/** The page a `messages(first/after/last/before)` field asks for, and its loader key; BAD_USER_INPUT for bad arguments. */
export function messagePageKey(conversationId: string, args: ConnectionArgs, limits: PageLimits): { page: PageRequest; key: MessagePageKey } {
  const page = pageRequest(args, limits);
  const cursorSeq = page.cursor ? cursorNumber(page.cursor[0]) : undefined;
  // One row more than the page: it tells whether there is another page.
  return { page, key: { conversationId, direction: page.direction, limit: page.limit + 1, cursorSeq } };
}

export interface PageBatchOptions {
  /** Receives the author of each message, read in the same statement. */
  authors: (user: User) => void;
  /**
   * Also read the conversations' own rows in that statement (`model` is the Conversation class, passed in
   * because the conversation module imports this one), narrowed by `scope` to those the viewer may reach.
   */
  conversations?: { model: ModelClass<Model>; scope: (query: Knex.QueryBuilder) => void; take: (row: Record<string, unknown>) => void };
}

/**
 * Loads pages of messages for many conversations. Keys with the same page shape share one statement: a
 * LATERAL join that walks the (conversation_id, seq) index of each conversation and stops at the limit,
 * so the cost is the page size, not the conversation's length. Rows come back in page order.
 *
 * The messages' authors come in the same statement (a page is nearly always shown with who wrote it, and a
 * join on users' primary key for at most a page of rows costs far less than the round trip it saves), and
 * with `conversations` the conversations too (the history view: a conversation with its newest messages).
 */
export async function messagePageBatch(knex: Knex, keys: readonly MessagePageKey[], options: PageBatchOptions): Promise<Message[][]> {
  const groups = new Map<string, MessagePageKey[]>();
  for (const key of keys) {
    const group = groups.get(shapeOf(key));
    if (group) group.push(key);
    else groups.set(shapeOf(key), [key]);
  }
  const pages = new Map<string, Message[]>(); // `${shape}|${conversationId}` → rows
  const columns = [
    ...(await plainColumns(knex, Message, "p")),
    ...(await embeddedColumns(knex, User, "u", "author", "p.author_id")),
    ...(options.conversations ? await embeddedColumns(knex, options.conversations.model, "conversations", "conversation", "conversations.id") : []),
  ];
  await Promise.all(
    [...groups].map(async ([shape, group]) => {
      const { direction, limit, cursorSeq } = group[0];
      const ids = [...new Set(group.map((key) => key.conversationId))];
      const rows: Record<string, unknown>[] = await prepared(knex.select(...columns))
        .from("conversations")
        .joinRaw("left join lateral (?) p on true", [
          knex("messages as m")
            .whereRaw("m.conversation_id = conversations.id")
            .modify((q) => {
              if (cursorSeq !== undefined) q.where("m.seq", direction === "forward" ? ">" : "<", cursorSeq);
            })
            .orderBy("m.seq", direction === "forward" ? "asc" : "desc")
            .limit(limit) as unknown as Knex.Raw, // knex inlines a builder binding as a subquery
        ])
        .leftJoin("users as u", "u.id", "p.authorId")
        .whereRaw("conversations.id = any(?::uuid[])", [ids])
        .modify((q) => options.conversations?.scope(q))
        .orderBy("p.seq", direction === "forward" ? "asc" : "desc"); // the joins may reorder the lateral's rows
      const split = rowSplitter(rows.length ? Object.keys(rows[0]) : []);
      for (const row of rows) {
        const { base, embedded } = split(row);
        // Each author and each conversation comes filled in on one row of the result only (oncePer above).
        const author = embedded.get("author");
        if (author) options.authors(User.fromDatabaseJson(author));
        const conversation = embedded.get("conversation");
        if (conversation) options.conversations?.take(conversation);
        if (base.id == null) continue; // a conversation without messages (the left join's empty side)
        const message = Message.fromDatabaseJson(base);
        const pageKey = `${shape}|${message.conversationId}`;
        const page = pages.get(pageKey);
        if (page) page.push(message);
        else pages.set(pageKey, [message]);
      }
    }),
  );
  return keys.map((key) => pages.get(`${shapeOf(key)}|${key.conversationId}`) ?? []);
}
