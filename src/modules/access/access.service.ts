/**
 * Who may reach which conversation. Admins: all. Members: their own. Services: their own, plus what
 * admins granted them (single conversations, or every conversation of an origin such as DISCORD).
 * Every read path checks a loaded conversation with canAccessConversation; write paths that lock the row
 * in SQL use scopeToViewer, which states the same rule as a WHERE clause.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { ForbiddenError } from "../../graphql/errors";
import { Role } from "../user/role.enum";
import type { Viewer } from "../user/viewer";
import type { ConversationOrigin } from "../conversation/conversation.enums";
import type { GrantSet } from "./grant.model";

const NO_GRANTS: GrantSet = { origins: new Set(), conversationIds: new Set() };

/** The batch function of the per-request grants loader (keyed by service id). */
export async function loadGrantSets(knex: Knex, serviceIds: readonly string[]): Promise<GrantSet[]> {
  const rows: { serviceId: string; conversationId: string | null; origin: string | null }[] = await knex("service_grants")
    .whereIn("service_id", serviceIds as string[])
    .select("service_id", "conversation_id", "origin");
  return serviceIds.map((id) => {
    const mine = rows.filter((row) => row.serviceId === id);
    return {
      origins: new Set(mine.flatMap((row) => (row.origin ? [row.origin] : []))),
      conversationIds: new Set(mine.flatMap((row) => (row.conversationId ? [row.conversationId] : []))),
    };
  });
}

async function grantsOf(ctx: Actor, viewer: Viewer): Promise<GrantSet> {
  return viewer.role === Role.SERVICE ? ctx.loaders.grantsByServiceId.load(viewer.id) : NO_GRANTS;
}

export async function canAccessConversation(ctx: Actor, conversation: { id: string; ownerId: string; origin: string }): Promise<boolean> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.ADMIN || conversation.ownerId === viewer.id) return true;
  const grants = await grantsOf(ctx, viewer);
  return grants.origins.has(conversation.origin) || grants.conversationIds.has(conversation.id);
}

/**
 * A filter narrowing a query on `conversations` to the rows the viewer may reach: the SQL form of
 * canAccessConversation. It is built (grants loaded) before the caller opens a transaction: on PGlite's
 * single connection a query outside the transaction would wait for it forever.
 */
export async function viewerScope(ctx: Actor): Promise<(query: Knex.QueryBuilder) => void> {
  const scope = await scopeCondition(ctx, "conversations");
  return scope ? (query) => void query.whereRaw(scope.sql, scope.bindings) : () => undefined;
}

/**
 * The same rule as SQL text over the conversations row `alias` (knex `?` placeholders), or undefined for
 * admins, who reach every conversation. Arrays, not IN lists: the text stays the same however many grants
 * (see db/prepared.ts).
 */
export async function scopeCondition(ctx: Actor, alias: string): Promise<{ sql: string; bindings: Knex.RawBinding[] } | undefined> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.ADMIN) return undefined;
  const grants = await grantsOf(ctx, viewer);
  let sql = `${alias}.owner_id = ?`;
  const bindings: Knex.RawBinding[] = [viewer.id];
  if (grants.origins.size) {
    sql += ` or ${alias}.origin = any(?::text[])`;
    bindings.push([...grants.origins]);
  }
  if (grants.conversationIds.size) {
    sql += ` or ${alias}.id = any(?::uuid[])`;
    bindings.push([...grants.conversationIds]);
  }
  return { sql: `(${sql})`, bindings };
}

/**
 * May the viewer act for other users in conversations of `origin` (create them for a user, write as the
 * user)? Admins may; services need a grant on the whole origin.
 */
export async function mayActFor(ctx: Actor, origin: ConversationOrigin | string): Promise<boolean> {
  const viewer = viewerOf(ctx);
  if (viewer.role === Role.ADMIN) return true;
  return viewer.role === Role.SERVICE && (await grantsOf(ctx, viewer)).origins.has(origin);
}

export async function assertMayActFor(ctx: Actor, origin: ConversationOrigin | string): Promise<void> {
  if (await mayActFor(ctx, origin)) return;
  throw new ForbiddenError(`Acting for another user needs an admin, or a service granted the ${String(origin).toUpperCase()} origin`);
}

/**
 * assertMayActFor, for one user. A DISCORD grant covers Discord's people, not the web's: there a service acts
 * only for members known by a Discord id (upsertDiscordUser), so the Discord adapter cannot write as an admin
 * or put a conversation into a web member's inbox.
 */
export async function assertMayActForUser(ctx: Actor, origin: ConversationOrigin | string, user: { role: Role; discordId: string | null }): Promise<void> {
  await assertMayActFor(ctx, origin);
  if (viewerOf(ctx).role === Role.SERVICE && origin === "discord" && (user.role !== Role.MEMBER || !user.discordId)) {
    throw new ForbiddenError("In DISCORD conversations a service acts only for members known by their Discord id");
  }
}
