/**
 * How the read planner reads conversations (graphql/planner), and the two hot entry points it serves:
 * `conversation(id)` (the history view) and `conversations` (the inbox), each one statement with the
 * viewer's access rule in its WHERE clause.
 */
import type { GraphQLResolveInfo } from "graphql";
import { columnFields, columnsOf, decodeRow, plannedBatch, planRoot, runPlanned, rowSql, toOne, type Planned, type TypePlan } from "../../graphql/planner/plan";
import { mapTo } from "../loaders";
import { SqlText } from "../../graphql/planner/sql";
import { newestFirstAfter, newestFirstCursorOf, pageRequest, toConnection, type ConnectionShape } from "../../graphql/connection";
import { NotFoundError } from "../../graphql/errors";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { scopeCondition } from "../access/access.service";
import { userPlan } from "../user/user.plan";
import { messagePage, messagePlan, ofConversation } from "../message/message.plan";
import { ownerScope } from "./conversation.service";
import type { ConversationsArgs } from "./conversation.input";

const SCALARS = ["id", "title", "origin", "discordGuildId", "discordChannelId", "parameters", "status", "messageCount", "endedAt", "createdAt", "updatedAt"] as const;

export const conversationPlan: TypePlan = {
  name: "Conversation",
  table: "conversations",
  columns: columnsOf({
    id: "plain",
    ownerId: "plain",
    title: "plain",
    origin: "plain",
    discordGuildId: "plain",
    discordChannelId: "plain",
    parameters: "plain",
    status: "plain",
    lastSeq: "plain",
    messageCount: "plain",
    assistantVersionId: "plain",
    endedAt: "date",
    createdAt: "date",
    updatedAt: "date",
  }),
  fields: {
    ...columnFields(SCALARS),
    owner: { needs: ["ownerId"], relation: toOne(() => userPlan, (user, conversation) => `${user}.id = ${conversation}.owner_id`) },
    lastMessage: {
      needs: ["lastSeq"],
      relation: {
        ...toOne(() => messagePlan, (message, conversation) => `${message}.conversation_id = ${conversation}.id and ${message}.seq = ${conversation}.last_seq`),
        value: (message, _, conversation) => ofConversation(message as Planned | null, conversation),
      },
    },
    messages: { needs: ["messageCount"], relation: messagePage },
    transcripts: { needs: [] },
    artifacts: { needs: [] },
    assistant: { needs: ["assistantVersionId"] },
  },
  always: ["id"],
};

/**
 * `conversation(id)` planned: NOT_FOUND when it does not exist or the viewer may not read it; undefined when not
 * plannable. Root fields of the same shape (aliases asking for several conversations) share one statement.
 */
export async function plannedConversation(ctx: Actor, info: GraphQLResolveInfo, id: string): Promise<Planned | undefined> {
  viewerOf(ctx);
  const plan = planRoot(conversationPlan, info, ctx)?.plan;
  if (!plan) return undefined;
  const q = new SqlText();
  const alias = q.alias();
  q.text(`select ${alias}.id, `);
  rowSql(q, plan, alias);
  q.text(` as r from conversations ${alias} where ${alias}.id = any(`);
  const values = await plannedBatch<string, unknown[] | undefined>(ctx, q, async (ids) => {
    const scope = await scopeCondition(ctx, alias);
    q.bind([...ids], "::uuid[]").text(")");
    if (scope) q.append(` and ${scope.sql}`, scope.bindings);
    const rows = await runPlanned(ctx, q);
    return mapTo(ids, rows, (row) => row.id as string).map((row) => row?.r as unknown[] | undefined);
  }).load(id);
  if (!values) throw new NotFoundError("Conversation");
  return decodeRow(plan, values)!;
}

/** `conversations` planned (the inbox): the same filters, order and cursors as listConversations. */
export async function plannedConversations(ctx: Actor, info: GraphQLResolveInfo, args: ConversationsArgs): Promise<ConnectionShape<Planned> | undefined> {
  const ownerId = ownerScope(viewerOf(ctx), args.filter?.ownerId);
  const page = pageRequest(args, ctx.config);
  const q = new SqlText();
  const alias = q.alias();
  const after = newestFirstAfter(page, `${alias}.updated_at`, `${alias}.id`); // a bad cursor is refused before planning
  const root = planRoot(conversationPlan, info, ctx, ["updatedAt"]);
  if (!root) return undefined;
  const { plan } = root;
  const filters = (inner: string) => {
    q.text(`${inner}.owner_id = `).bind(ownerId, "::uuid");
    if (args.filter?.status) q.text(` and ${inner}.status = `).bind(args.filter.status);
    if (args.filter?.origin) q.text(` and ${inner}.origin = `).bind(args.filter.origin);
  };
  const order = page.direction === "forward" ? "desc" : "asc";
  q.text("select array_to_json(array(select ");
  rowSql(q, plan, alias);
  q.text(` from conversations ${alias} where `);
  filters(alias);
  if (after) q.append(` and ${after.sql}`, after.bindings);
  q.text(` order by ${alias}.updated_at ${order}, ${alias}.id ${order} limit `).bind(page.limit + 1).text(")) as r");
  const counted = root.selected.connectionFields?.has("totalCount");
  if (counted) {
    q.text(", (select count(*)::int from conversations c where ");
    filters("c");
    q.text(") as total");
  }
  const [row] = await runPlanned(ctx, q);
  const rows = (row.r as unknown[][]).map((values) => decodeRow(plan, values) as Planned & { id: string; updatedAt: Date });
  return toConnection(rows, page, newestFirstCursorOf("updatedAt"), () => row.total as number);
}
