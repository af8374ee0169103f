/**
 * The model catalogue: models by provider and name, each with a price history. Every viewer reads it
 * (workers price their own calls); only admins change it, and every change is audited.
 *
 * Prices are history, not settings: a price applies from its effectiveFrom until the next one starts, and
 * once a price is in force it is never changed, so what a request cost stays what it cost. "In force" is
 * decided by the database's clock, the clock that stamps ledger rows.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { isAdmin, viewerOf, type Viewer } from "../user/viewer";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { trimmedText } from "../../graphql/json-input";
import { audit } from "../audit/audit.service";
import { AiModel, AiModelPrice } from "./ai-model.model";
import type { AiModelPriceInput, ModelsArgs, UpsertAiModelInput } from "./ai-model.input";

/** USD per million tokens: far above any real price, well inside numeric(20, 6). */
const MAX_PRICE = 1e9;
/** numeric(20, 6): more decimals are rounded away. */
const PRICE_DECIMALS = 6;

function catalogueAdmin(ctx: Actor): Viewer {
  const viewer = viewerOf(ctx);
  if (!isAdmin(viewer)) throw new ForbiddenError("The model catalogue is changed by admins");
  return viewer;
}

/** The models, by provider then name; retired ones only when asked for. */
export async function listModels(ctx: Actor, args: ModelsArgs): Promise<AiModel[]> {
  viewerOf(ctx);
  const query = AiModel.query(ctx.db.knex).orderBy("provider").orderBy("name");
  if (!args.includeRetired) query.where("isActive", true);
  if (args.provider != null) query.where("provider", args.provider.trim());
  return query;
}

/** The model's prices, newest effectiveFrom first (future ones included). */
export function priceHistory(ctx: Actor, model: AiModel): Promise<AiModelPrice[]> {
  return ctx.loaders.aiModelPricesByModelId.load(model.id);
}

/** The price in force now (the newest that has started), or undefined before the first one starts. */
export async function currentPrice(ctx: Actor, model: AiModel): Promise<AiModelPrice | undefined> {
  return (await priceHistory(ctx, model)).find((price) => price.inForce);
}

/** Trimmed, 1 to `max` characters (as PostgreSQL counts them: code points), no NUL. */
interface CheckedPrice {
  inputPerMillion: number;
  outputPerMillion: number;
  cachedInputPerMillion: number | null;
  effectiveFrom: Date | null;
}

function checkedAmount(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0 || value > MAX_PRICE) {
    throw new BadUserInputError(`${field} must be a number from 0 to ${MAX_PRICE} (USD per million tokens)`, { field });
  }
  return Number(value.toFixed(PRICE_DECIMALS));
}

function checkedPrice(price: AiModelPriceInput): CheckedPrice {
  return {
    inputPerMillion: checkedAmount(price.inputPerMillion, "price.inputPerMillion"),
    outputPerMillion: checkedAmount(price.outputPerMillion, "price.outputPerMillion"),
    cachedInputPerMillion: price.cachedInputPerMillion == null ? null : checkedAmount(price.cachedInputPerMillion, "price.cachedInputPerMillion"),
    effectiveFrom: price.effectiveFrom ?? null,
  };
}

const samePrice = (stored: AiModelPrice, price: CheckedPrice) =>
  stored.inputPerMillion === price.inputPerMillion &&
  stored.outputPerMillion === price.outputPerMillion &&
  stored.cachedInputPerMillion === price.cachedInputPerMillion;

/**
 * Creates the model or updates the fields given (provider and name identify it), and adds the price given
 * to its history; all or nothing.
 */
export async function upsertAiModel(ctx: Actor, input: UpsertAiModelInput): Promise<AiModel> {
  const viewer = catalogueAdmin(ctx);
  const provider = trimmedText(input.provider, "provider", 100);
  const name = trimmedText(input.name, "name", 200);
  if (input.contextWindow != null && input.contextWindow <= 0) {
    throw new BadUserInputError("contextWindow must be greater than 0", { field: "contextWindow" });
  }
  const price = input.price ? checkedPrice(input.price) : undefined;
  const changes = {
    ...(input.contextWindow != null ? { contextWindow: input.contextWindow } : {}),
    ...(input.isActive != null ? { isActive: input.isActive } : {}),
  };
  return ctx.db.knex.transaction(async (trx) => {
    const model = await lockedModel(trx, provider, name, changes);
    const priced = price ? await addPrice(trx, model.id, price, viewer.id) : undefined;
    await audit(ctx, { action: "ai_model.upsert", targetType: "ai_model", targetId: model.id, details: { provider, name, ...changes, price: priced } }, trx);
    return model;
  });
}

/**
 * The model, created or with `changes` applied, and locked until the transaction ends, so that concurrent
 * price changes of one model take turns (their rules read the history).
 */
async function lockedModel(trx: Knex.Transaction, provider: string, name: string, changes: Partial<AiModel>): Promise<AiModel> {
  // A concurrent insert of the same model makes this wait for it, then do nothing: the lookup below sees it.
  const [created] = await trx("ai_models").insert({ provider, name, ...changes }).onConflict(["provider", "name"]).ignore().returning("*");
  if (created) return AiModel.fromDatabaseJson(created);
  const model = (await AiModel.query(trx).where({ provider, name }).forUpdate().first())!;
  const changed = Object.entries(changes).some(([key, value]) => model[key as keyof AiModel] !== value);
  return changed ? model.$query(trx).patchAndFetch(changes) : model;
}

/**
 * Adds `price` to the model's history, under the rule that a price in force is never changed:
 * - the same price as the one in force at effectiveFrom is nothing new (so retries and syncs add no rows);
 * - a price with the effectiveFrom of an existing one replaces it while that moment is still to come, and is
 *   CONFLICT once it has come;
 * - a price that starts in the past is CONFLICT once the model has a price in force: it would change what
 *   past requests cost. A model without one may be priced from the past (its past requests had no price).
 */
async function addPrice(trx: Knex.Transaction, modelId: string, price: CheckedPrice, createdBy: string) {
  // Milliseconds, as stored: a price starting "now" must be in force for the next statement already.
  const [{ now }] = (await trx.select(trx.raw("date_trunc('milliseconds', now()) as now"))) as { now: Date }[];
  const history = await AiModelPrice.query(trx).where({ modelId }).orderBy("effectiveFrom", "desc");
  const effectiveFrom = price.effectiveFrom ?? now;
  const { effectiveFrom: _, ...amounts } = price;
  const details = { ...amounts, effectiveFrom: effectiveFrom.toISOString() };

  const inForceThen = history.find((stored) => stored.effectiveFrom <= effectiveFrom);
  if (inForceThen && samePrice(inForceThen, price)) return { ...details, outcome: "unchanged" };

  const sameStart = history.find((stored) => stored.effectiveFrom.getTime() === effectiveFrom.getTime());
  if (sameStart) {
    if (sameStart.effectiveFrom <= now) {
      throw new ConflictError(
        `The price from ${effectiveFrom.toISOString()} is already in force and is never changed (costs already computed from it would no longer match); ` +
          "add a new price with a later effectiveFrom, or omit effectiveFrom to start it now",
      );
    }
    await AiModelPrice.query(trx).findById(sameStart.id).patch({ ...amounts, createdBy });
    return { ...details, outcome: "replaced" };
  }
  if (effectiveFrom < now && history.some((stored) => stored.effectiveFrom <= now)) {
    throw new ConflictError(
      `effectiveFrom ${effectiveFrom.toISOString()} is in the past and the model already has a price in force: past prices are never rewritten; ` +
        "give a later effectiveFrom, or omit it to start the price now",
    );
  }
  await AiModelPrice.query(trx).insert({ modelId, ...amounts, effectiveFrom, createdBy });
  return { ...details, outcome: "added" };
}

/** Marks the model retired (idempotent). Its price history stays: requests are still priced from it. */
export async function retireAiModel(ctx: Actor, id: string): Promise<AiModel> {
  catalogueAdmin(ctx);
  return ctx.db.knex.transaction(async (trx) => {
    const model = await AiModel.query(trx).findById(id).forUpdate();
    if (!model) throw new NotFoundError("AI model");
    if (!model.isActive) return model;
    const retired = await model.$query(trx).patchAndFetch({ isActive: false });
    await audit(ctx, { action: "ai_model.retire", targetType: "ai_model", targetId: id, details: { provider: model.provider, name: model.name } }, trx);
    return retired;
  });
}

/**
 * The price in force at `atExpr` of the model named `modelExpr`, as a parenthesised subquery of at most one
 * row (the ai_model_prices row: id, model_id, effective_from, input_per_million, output_per_million,
 * cached_input_per_million, created_by, created_at), for the ledger to join in its one statement:
 *
 *   select … from ai_requests r left join lateral ${priceInForceSql(knex, knex.raw("r.model"), knex.raw("r.provider"), knex.raw("r.occurred_at"))} as price on true
 *
 * Each argument is an SQL expression (a column, or knex.raw("?", [value])). With a provider the model is
 * (provider, name); without one (a null providerExpr), the name must belong to a single model of the
 * catalogue, or there is no row: the name alone is ambiguous. Retired models are priced like active ones.
 * The lookup is one probe of ai_models_name_index (or the provider-name key) and one of the prices' (model_id,
 * effective_from) key.
 */
export function priceInForceSql(knex: Knex, modelExpr: Knex.Raw, providerExpr: Knex.Raw, atExpr: Knex.Raw): Knex.Raw {
  // Aliases unlikely to shadow the caller's tables, which the expressions may name.
  return knex.raw(
    `(select catalogue_price.*
        from ai_models catalogue_model
        join lateral (
          select * from ai_model_prices
           where ai_model_prices.model_id = catalogue_model.id and ai_model_prices.effective_from <= (?)::timestamptz
           order by ai_model_prices.effective_from desc
           limit 1) catalogue_price on true
       where catalogue_model.name = (?)::text
         and case when (?)::text is null
                then not exists (select 1 from ai_models catalogue_other
                                  where catalogue_other.name = catalogue_model.name and catalogue_other.id <> catalogue_model.id)
                else catalogue_model.provider = (?)::text
             end)`,
    [atExpr, modelExpr, providerExpr, providerExpr],
  );
}

/** The price in force at `at` of a model, by priceInForceSql's rules (no provider: the name must be unambiguous). */
export async function priceAt(knex: Knex, model: { provider?: string | null; name: string }, at: Date): Promise<AiModelPrice | undefined> {
  const inForce = priceInForceSql(knex, knex.raw("?", [model.name]), knex.raw("?", [model.provider ?? null]), knex.raw("?", [at]));
  const row = await knex.select("*").from(knex.raw("? as price", [inForce])).first();
  return row ? AiModelPrice.fromDatabaseJson(row) : undefined;
}
