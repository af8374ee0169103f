/**
 * Whose knowledge is whose. A knowledge base belongs to one scope:
 * - GLOBAL: read by everyone signed in, written by admins;
 * - GUILD (a Discord guild): read and written by admins and services granted the DISCORD origin (the guild's bot);
 * - USER: read and written by that user, by admins, and by a service acting for a Discord member (the same rule
 *   as writing as that member, assertMayActForUser).
 * Documents, chunks, cached answers and the query history of a scope follow its knowledge base. Guild configs
 * use the guild rule too (assertGuildAccess).
 */
import type { Knex } from "knex";
import { Field, InputType, registerEnumType } from "type-graphql";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import type { Actor } from "../actor";
import { viewerOf, type Viewer } from "../user/viewer";
import { Role } from "../user/role.enum";
import { assertMayActForUser, mayActFor } from "../access/access.service";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { BadUserInputError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkDiscordId } from "../../graphql/json-input";

export enum KnowledgeScopeKind {
  GLOBAL = "global",
  GUILD = "guild",
  USER = "user",
}
registerEnumType(KnowledgeScopeKind, { name: "KnowledgeScope", description: "Whose documents: everyone's, one Discord guild's, or one user's" });

@InputType({ description: "A knowledge scope: GLOBAL; GUILD with guildId; USER with userId (members: their own when left out)" })
export class KnowledgeScopeInput {
  @Field(() => KnowledgeScopeKind)
  kind: KnowledgeScopeKind;

  @Field(() => String, { nullable: true, description: "The Discord guild (snowflake) of a GUILD scope" })
  guildId?: string;

  @Field(() => UUIDScalar, { nullable: true, description: "The user of a USER scope; the viewer when left out" })
  userId?: string;
}

/** A checked scope: exactly the subject its kind needs. */
export interface Scope {
  kind: KnowledgeScopeKind;
  guildId: string | null;
  userId: string | null;
}

/** The input as a Scope (the viewer filled in for USER), or BAD_USER_INPUT. */
export function scopeOf(viewer: Viewer, input: KnowledgeScopeInput): Scope {
  switch (input.kind) {
    case KnowledgeScopeKind.GLOBAL:
      if (input.guildId || input.userId) throw new BadUserInputError("A GLOBAL scope names no guild and no user", { field: "scope" });
      return { kind: input.kind, guildId: null, userId: null };
    case KnowledgeScopeKind.GUILD:
      if (!input.guildId || input.userId) throw new BadUserInputError("A GUILD scope names its guildId, and no user", { field: "scope.guildId" });
      checkDiscordId(input.guildId, "scope.guildId");
      return { kind: input.kind, guildId: input.guildId, userId: null };
    case KnowledgeScopeKind.USER:
      if (input.guildId) throw new BadUserInputError("A USER scope names no guild", { field: "scope.guildId" });
      return { kind: input.kind, guildId: null, userId: input.userId ?? viewer.id };
  }
}

/** May the viewer read and write Discord guilds' knowledge, configs and history? Admins, and DISCORD-granted services. */
export async function mayUseGuilds(actor: Actor): Promise<boolean> {
  const viewer = viewerOf(actor);
  return viewer.role === Role.ADMIN || (viewer.role === Role.SERVICE && (await mayActFor(actor, ConversationOrigin.DISCORD)));
}

export async function assertGuildAccess(actor: Actor): Promise<void> {
  if (!(await mayUseGuilds(actor))) throw new ForbiddenError("A guild's knowledge and settings are for admins and services granted the DISCORD origin");
}

/** Throws FORBIDDEN (or NOT_FOUND for an unknown user) unless the viewer may `mode` the scope. */
export async function assertScopeAccess(actor: Actor, scope: Scope, mode: "read" | "write"): Promise<void> {
  const viewer = viewerOf(actor);
  if (viewer.role === Role.ADMIN) return;
  switch (scope.kind) {
    case KnowledgeScopeKind.GLOBAL:
      if (mode === "write") throw new ForbiddenError("Global knowledge is written by admins");
      return;
    case KnowledgeScopeKind.GUILD:
      return assertGuildAccess(actor);
    case KnowledgeScopeKind.USER: {
      if (scope.userId === viewer.id) return;
      if (viewer.role !== Role.SERVICE) throw new ForbiddenError("You reach your own knowledge only");
      const user = await actor.loaders.userById.load(scope.userId!);
      if (!user) throw new NotFoundError("User");
      await assertMayActForUser(actor, ConversationOrigin.DISCORD, user);
      return;
    }
  }
}

/**
 * A WHERE on knowledge_bases (as `alias`) keeping the ones the viewer may read: the SQL form of
 * assertScopeAccess(…, "read"). Built before any transaction opens (it may load the viewer's grants).
 */
export async function readableBases(actor: Actor, alias = "knowledge_bases"): Promise<(query: Knex.QueryBuilder) => void> {
  const viewer = viewerOf(actor);
  if (viewer.role === Role.ADMIN) return () => undefined;
  const guilds = await mayUseGuilds(actor);
  return (query) =>
    void query.where((q) => {
      q.where(`${alias}.scope`, "global").orWhere((own) => own.where(`${alias}.scope`, "user").andWhere(`${alias}.user_id`, viewer.id));
      if (guilds) {
        q.orWhere(`${alias}.scope`, "guild");
        // Discord members' own knowledge, as the service may act for them.
        q.orWhere((members) =>
          members
            .where(`${alias}.scope`, "user")
            .whereExists((u) => u.from("users").whereRaw(`users.id = ${alias}.user_id`).where("users.role", Role.MEMBER).whereNotNull("users.discord_id")),
        );
      }
    });
}

export interface KnowledgeBaseRow {
  id: string;
  scope: KnowledgeScopeKind;
  guildId: string | null;
  userId: string | null;
  embeddingModel: string | null;
  dimensions: number | null;
}

const BASE_COLUMNS = ["id", "scope", "guild_id", "user_id", "embedding_model", "dimensions"];

function whereScope(query: Knex.QueryBuilder, scope: Scope): Knex.QueryBuilder {
  query.where("scope", scope.kind);
  if (scope.kind === KnowledgeScopeKind.GUILD) query.where("guild_id", scope.guildId);
  if (scope.kind === KnowledgeScopeKind.USER) query.where("user_id", scope.userId);
  return query;
}

/** The scope's knowledge base, or undefined when nothing was ever stored in it. */
export async function findKnowledgeBase(knex: Knex, scope: Scope): Promise<KnowledgeBaseRow | undefined> {
  return whereScope(knex("knowledge_bases").first(BASE_COLUMNS), scope);
}

/**
 * The scope's knowledge base, created on first use. Concurrent first uses meet on the partial unique indexes:
 * one insert wins, the others read its row.
 */
export async function ensureKnowledgeBase(knex: Knex, scope: Scope): Promise<KnowledgeBaseRow> {
  const target = { global: "((true)) where scope = 'global'", guild: "(guild_id) where scope = 'guild'", user: "(user_id) where scope = 'user'" }[scope.kind];
  const { rows } = await knex.raw(
    `insert into knowledge_bases (scope, guild_id, user_id) values (?, ?, ?) on conflict ${target} do nothing
     returning id, scope, guild_id as "guildId", user_id as "userId", embedding_model as "embeddingModel", dimensions`,
    [scope.kind, scope.guildId, scope.userId],
  );
  return (rows[0] as KnowledgeBaseRow | undefined) ?? (await findKnowledgeBase(knex, scope))!;
}

/** What a knowledge base's scope is, for answers and access checks of rows that hang off it. */
export function scopeOfBase(base: Pick<KnowledgeBaseRow, "scope" | "guildId" | "userId">): Scope {
  return { kind: base.scope, guildId: base.guildId, userId: base.userId };
}
