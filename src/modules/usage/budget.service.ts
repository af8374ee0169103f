/**
 * Budgets: admins set them (for a user or a Discord guild), members read their own status, and a service granted
 * the DISCORD origin reads guilds' and Discord users'. A budget's spend of its current period is kept by the ledger (budget.sql.ts);
 * setting a budget counts what the ledger already holds for the current period, so one set mid-month starts
 * where the spend stands, not at 0.
 */
import type { Knex } from "knex";
import { snakeCaseMappers } from "objection";
import type { Actor } from "../actor";
import { isAdmin, viewerOf } from "../user/viewer";
import { Role } from "../user/role.enum";
import { BadUserInputError, BudgetExceededError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { mayActFor } from "../access/access.service";
import { checkDiscordId } from "../../graphql/json-input";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { audit } from "../audit/audit.service";
import { Budget, BudgetStatus } from "./budget.model";
import type { SetBudgetInput } from "./budget.input";
import { BudgetEnforcement } from "./budget.enums";
import { exhausted, periodEnd, periodStartAt } from "./budget.sql";
import { mapNodes, newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";

const fromColumns = snakeCaseMappers().parse;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function checked(input: SetBudgetInput) {
  if (!input.userId === !input.guildId) throw new BadUserInputError("Give userId or guildId, one of the two", { field: "userId" });
  if (input.guildId) checkDiscordId(input.guildId, "guildId");
  const timeZone = input.timeZone ?? "UTC";
  if (!isTimeZone(timeZone)) throw new BadUserInputError(`Unknown time zone "${timeZone.slice(0, 64)}": use an IANA name such as Europe/Lisbon`, { field: "timeZone" });
  if (!(Number.isFinite(input.limitUsd) && input.limitUsd > 0 && input.limitUsd < 1e12)) throw new BadUserInputError("limitUsd must be more than 0", { field: "limitUsd" });
  const thresholds = [...new Set(input.thresholds ?? [50, 80, 100])].sort((a, b) => a - b);
  if (thresholds.length < 1 || thresholds.length > 10 || thresholds.some((t) => t < 1 || t > 100)) {
    throw new BadUserInputError("thresholds must be 1 to 10 percentages, each from 1 to 100", { field: "thresholds" });
  }
  return { userId: input.userId ?? null, guildId: input.guildId ?? null, period: input.period, timeZone, limitUsd: input.limitUsd, thresholds, enforcement: input.enforcement ?? BudgetEnforcement.SOFT };
}

/** Admins: creates or replaces the budget of a user or guild; its spend so far this period comes from the ledger. */
export async function setBudget(ctx: Actor, input: SetBudgetInput): Promise<Budget> {
  const viewer = viewerOf(ctx);
  if (!isAdmin(viewer)) throw new ForbiddenError("Only admins set budgets");
  const budget = checked(input);
  if (budget.userId && !(await ctx.loaders.userById.load(budget.userId))) throw new NotFoundError("User");
  return ctx.db.knex.transaction(async (trx) => {
    const target = budget.userId ? "(user_id) where user_id is not null" : "(guild_id) where guild_id is not null";
    const [{ id }] = (
      await trx.raw(
        `insert into user_budgets (user_id, guild_id, period, time_zone, limit_usd, thresholds, enforcement, created_by)
         values (?, ?, ?, ?, ?, ?::int[], ?, ?)
         on conflict ${target} do update set period = excluded.period, time_zone = excluded.time_zone, limit_usd = excluded.limit_usd,
           thresholds = excluded.thresholds, enforcement = excluded.enforcement
         returning id`,
        [budget.userId, budget.guildId, budget.period, budget.timeZone, budget.limitUsd, budget.thresholds, budget.enforcement, viewer.id],
      )
    ).rows as { id: string }[];
    // Under the row lock the upsert took: ledger inserts committed before are counted here, later ones add on top.
    const [row] = (
      await trx.raw(
        `update user_budgets b set period_start = ${periodStartAt("b", "now()")},
           spent_usd = coalesce((select sum(r.cost_usd) from ai_requests r
             where (r.user_id = b.user_id or r.guild_id = b.guild_id) and r.occurred_at >= ${periodStartAt("b", "now()")}), 0)
         where b.id = ? returning *`,
        [id],
      )
    ).rows;
    await audit(ctx, { action: "budget.set", targetType: budget.userId ? "user" : "guild", targetId: budget.userId ?? budget.guildId!, details: { ...budget } }, trx);
    return Budget.fromDatabaseJson(fromColumns(row)); // a raw result keeps the column names
  });
}

/** Admins: removes a budget (nothing is refused or alerted for it from then on). */
export async function deleteBudget(ctx: Actor, id: string): Promise<boolean> {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("Only admins delete budgets");
  const deleted = await ctx.db.knex("user_budgets").where({ id }).delete();
  if (!deleted) throw new NotFoundError("Budget");
  await audit(ctx, { action: "budget.delete", targetType: "budget", targetId: id, details: {} });
  return true;
}

/** The columns of a budget's standing now: its spend this period (0 when the stored one is of an earlier period). */
const STANDING = `b.*, ${periodStartAt("b", "now()")} as current_start, ${periodEnd("b")} as resets_at,
  case when b.period_start = ${periodStartAt("b", "now()")} then b.spent_usd else 0 end as spent_now`;

function status(row: Record<string, unknown>): BudgetStatus {
  const budget = Budget.fromDatabaseJson(row);
  const spent = Number(row.spentNow);
  return Object.assign(new BudgetStatus(), {
    budget,
    periodStart: row.currentStart as Date,
    resetsAt: row.resetsAt as Date,
    spentUsd: spent,
    remainingUsd: Math.max(0, budget.limitUsd - spent),
    percent: Math.round((spent / budget.limitUsd) * 10000) / 100,
    exceeded: spent >= budget.limitUsd,
  });
}

/**
 * Where a budget stands: a user's (members: their own, the default) or a guild's (admins, and services granted the
 * DISCORD origin). Null when there is no budget.
 */
export async function budgetStatus(ctx: Actor, subject: { userId?: string | null; guildId?: string | null }): Promise<BudgetStatus | null> {
  const viewer = viewerOf(ctx);
  if (subject.userId && subject.guildId) throw new BadUserInputError("Give userId or guildId, not both", { field: "guildId" });
  if (subject.guildId) {
    checkDiscordId(subject.guildId, "guildId");
    if (!isAdmin(viewer) && !(viewer.role === Role.SERVICE && (await mayActFor(ctx, ConversationOrigin.DISCORD)))) {
      throw new ForbiddenError("A guild's budget is for admins and services granted the DISCORD origin");
    }
  }
  const userId = subject.guildId ? null : (subject.userId ?? viewer.id);
  if (userId && userId !== viewer.id && !isAdmin(viewer)) {
    // The Discord adapter answers /parley usage for the Discord user who asks: a service that may act for Discord users.
    const user = viewer.role === Role.SERVICE ? await ctx.loaders.userById.load(userId) : undefined;
    if (!user?.discordId || !(await mayActFor(ctx, ConversationOrigin.DISCORD))) throw new ForbiddenError("You see your own budget only");
  }
  const row = await ctx.db.knex("user_budgets as b")
    .where(userId ? { "b.userId": userId } : { "b.guildId": subject.guildId })
    .first(ctx.db.knex.raw(STANDING));
  return row ? status(row) : null;
}

/** Admins: every budget where it stands, newest first (what the console's gauges show). */
export async function listBudgets(ctx: Actor, args: ConnectionArgs): Promise<ConnectionShape<BudgetStatus>> {
  if (!isAdmin(viewerOf(ctx))) throw new ForbiddenError("Only admins list budgets");
  const page = await newestFirstPage(
    () => Budget.query(ctx.db.knex).alias("b").select(ctx.db.knex.raw(STANDING)),
    pageRequest(args, ctx.config),
    "createdAt",
    "created_at",
    { table: "b", counted: () => Budget.query(ctx.db.knex).alias("b") },
  );
  // The page's rows carry the standing columns beside the budget's own (STANDING), read as the status of each.
  return mapNodes(page, (row) => status(row as unknown as Record<string, unknown>));
}

/** Throws BUDGET_EXCEEDED when a HARD budget of the conversation's owner or guild is spent for this period. */
export async function assertWithinBudget(knex: Knex, conversation: { ownerId: string; discordGuildId: string | null }): Promise<void> {
  const row = await knex("user_budgets as b")
    .where((q) => {
      q.where("b.userId", conversation.ownerId);
      if (conversation.discordGuildId) q.orWhere("b.guildId", conversation.discordGuildId);
    })
    .whereRaw(exhausted("b"))
    .first(knex.raw(STANDING));
  if (!row) return;
  const { budget, spentUsd, resetsAt } = status(row);
  throw new BudgetExceededError({ limitUsd: budget.limitUsd, spentUsd, resetsAt, period: budget.period, subject: budget.userId ? "user" : "guild" });
}
