/**
 * The model catalogue (issue 14): who may read and change it, the price history (a price applies from its
 * effectiveFrom and is never changed once in force), priceAt and its ambiguity rule, retiring, input checks,
 * and the statements of `models` with prices for few and many models.
 */
import { randomUUID } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { priceAt } from "../../src/modules/usage/ai-model.service";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { countStatements, type StatementCounter } from "../helpers/statements";

const PRICE = `effectiveFrom inputPerMillion outputPerMillion cachedInputPerMillion`;
const MODEL = `id provider name contextWindow isActive createdAt updatedAt currentPrice { ${PRICE} } prices { ${PRICE} }`;
const UPSERT = `mutation($input: UpsertAiModelInput!) { upsertAiModel(input: $input) { ${MODEL} } }`;
const RETIRE = `mutation($id: UUID!) { retireAiModel(id: $id) { ${MODEL} } }`;
const MODELS = `query($provider: String, $includeRetired: Boolean) { models(provider: $provider, includeRetired: $includeRetired) { ${MODEL} } }`;

interface Price {
  effectiveFrom: string;
  inputPerMillion: number;
  outputPerMillion: number;
  cachedInputPerMillion: number | null;
}
interface AiModel {
  id: string;
  provider: string;
  name: string;
  contextWindow: number | null;
  isActive: boolean;
  currentPrice: Price | null;
  prices: Price[];
}

let app: TestApp;
let counter: StatementCounter;
let admin: TestUser;
let member: TestUser;
let service: TestUser;

/** A provider nobody else in this file uses, so tests sharing the database do not see each other's models. */
const freshProvider = () => `provider-${randomUUID()}`;
const minutesFromNow = (minutes: number) => new Date(Date.now() + minutes * 60_000);
const DAY = 24 * 60;

async function upsert(input: Record<string, unknown>, token = admin.token): Promise<AiModel> {
  return (await app.ok<{ upsertAiModel: AiModel }>(UPSERT, { input }, token)).upsertAiModel;
}

async function models(variables: { provider?: string; includeRetired?: boolean }, token = member.token): Promise<AiModel[]> {
  return (await app.ok<{ models: AiModel[] }>(MODELS, variables, token)).models;
}

/** The one error of an upsert: its message and extensions. */
async function upsertError(input: Record<string, unknown>, token = admin.token) {
  const { body } = await app.gql(UPSERT, { input }, token);
  expect(body.errors).toHaveLength(1);
  return { message: body.errors![0].message, ...body.errors![0].extensions };
}

beforeAll(async () => {
  // No key cache, and no last_used_at write falling into a count (as in n-plus-one.test.ts).
  app = await createTestApp({ AUTH_CACHE_SECONDS: "0" });
  counter = countStatements(app);
  admin = await app.makeUser(Role.ADMIN);
  member = await app.makeUser(Role.MEMBER);
  service = await app.makeUser(Role.SERVICE);
  const knex = app.database.db.knex;
  await knex("api_keys").update({ lastUsedAt: knex.raw("now() + interval '1 day'") });
});
afterAll(() => app.dispose());

describe("access", () => {
  it("an admin creates a model with a price; members and services read it", async () => {
    const provider = freshProvider();
    const price = { inputPerMillion: 2.5, outputPerMillion: 10, cachedInputPerMillion: 1.25 };
    const created = await upsert({ provider, name: "gpt-test", contextWindow: 128_000, price });
    expect(created).toMatchObject({ provider, name: "gpt-test", contextWindow: 128_000, isActive: true, currentPrice: price, prices: [price] });

    for (const reader of [member, service, admin]) {
      expect(await models({ provider }, reader.token)).toEqual([created]);
    }
    const logged = await app.database.db.knex("audit_logs").where({ action: "ai_model.upsert", targetId: created.id });
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ actorId: admin.user.id, targetType: "ai_model" });
  });

  it("members and services are FORBIDDEN to change the catalogue; nothing is written", async () => {
    const provider = freshProvider();
    const { id } = await upsert({ provider, name: "m" });
    for (const user of [member, service]) {
      expect(await app.errorCode(UPSERT, { input: { provider, name: "other" } }, user.token)).toBe("FORBIDDEN");
      expect(await app.errorCode(RETIRE, { id }, user.token)).toBe("FORBIDDEN");
    }
    expect((await models({ provider })).map((model) => [model.name, model.isActive])).toEqual([["m", true]]);
  });

  it("UNAUTHENTICATED without a token", async () => {
    expect(await app.errorCode(`{ models { id } }`)).toBe("UNAUTHENTICATED");
    expect(await app.errorCode(UPSERT, { input: { provider: "p", name: "n" } })).toBe("UNAUTHENTICATED");
  });
});

describe("upsertAiModel", () => {
  it("updates the fields given, keeps the others, and lists models by provider then name", async () => {
    const provider = freshProvider();
    await upsert({ provider, name: "b-model", contextWindow: 8000 });
    await upsert({ provider, name: "a-model" });
    const updated = await upsert({ provider: `  ${provider} `, name: "b-model ", isActive: true });
    expect(updated).toMatchObject({ provider, name: "b-model", contextWindow: 8000, prices: [], currentPrice: null });
    expect((await models({ provider })).map((model) => model.name)).toEqual(["a-model", "b-model"]);
    expect(await app.database.db.knex("ai_models").where({ provider })).toHaveLength(2);
  });

  it("rounds prices to 6 decimal places, stored as numeric", async () => {
    const provider = freshProvider();
    const model = await upsert({ provider, name: "m", price: { inputPerMillion: 1.23456789, outputPerMillion: 0.0000004 } });
    expect(model.currentPrice).toMatchObject({ inputPerMillion: 1.234568, outputPerMillion: 0, cachedInputPerMillion: null });
    const [row] = await app.database.db.knex("ai_model_prices").where({ modelId: model.id });
    expect([row.inputPerMillion, row.outputPerMillion]).toEqual(["1.234568", "0.000000"]);
  });

  it.each([
    ["provider", { provider: "   " }],
    ["provider", { provider: "p".repeat(101) }],
    ["provider", { provider: "a\u0000b" }],
    ["name", { name: "" }],
    ["name", { name: "n".repeat(201) }],
    ["contextWindow", { contextWindow: 0 }],
    ["contextWindow", { contextWindow: -5 }],
    ["price.inputPerMillion", { price: { inputPerMillion: -0.01, outputPerMillion: 1 } }],
    ["price.outputPerMillion", { price: { inputPerMillion: 1, outputPerMillion: 1e12 } }],
    ["price.cachedInputPerMillion", { price: { inputPerMillion: 1, outputPerMillion: 1, cachedInputPerMillion: -1 } }],
  ])("BAD_USER_INPUT naming %s", async (field, bad) => {
    const provider = freshProvider();
    const error = await upsertError({ provider, name: "m", ...bad });
    expect(error).toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(error.message).toContain(field);
    expect(await app.database.db.knex("ai_models").where({ provider })).toHaveLength(0);
  });

  it("counts characters, not UTF-16 units, as the database does", async () => {
    const model = await upsert({ provider: freshProvider(), name: "🙂".repeat(200) });
    expect([...model.name]).toHaveLength(200);
  });
});

describe("price history", () => {
  it("a later price is listed first and becomes current only once it is in force", async () => {
    const provider = freshProvider();
    const old = { inputPerMillion: 3, outputPerMillion: 15, cachedInputPerMillion: null };
    await upsert({ provider, name: "m", price: { ...old, effectiveFrom: minutesFromNow(-DAY) } });
    const soon = new Date(Date.now() + 1500);
    const next = { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 };
    const model = await upsert({ provider, name: "m", price: { ...next, effectiveFrom: soon } });

    expect(model.prices).toMatchObject([{ ...next, effectiveFrom: soon.toISOString() }, old]);
    expect(model.currentPrice).toMatchObject(old);
    await new Promise((resolve) => setTimeout(resolve, soon.getTime() - Date.now() + 100));
    const [later] = await models({ provider });
    expect(later.currentPrice).toMatchObject({ ...next, effectiveFrom: soon.toISOString() });
  });

  it("priceAt gives the price in force at a time: the old one before a change, the new one after", async () => {
    const provider = freshProvider();
    const start = minutesFromNow(-2 * DAY);
    const change = minutesFromNow(60);
    await upsert({ provider, name: "m", price: { inputPerMillion: 3, outputPerMillion: 15, effectiveFrom: start } });
    await upsert({ provider, name: "m", price: { inputPerMillion: 1, outputPerMillion: 4, effectiveFrom: change } });
    const knex = app.database.db.knex;

    expect(await priceAt(knex, { provider, name: "m" }, new Date(start.getTime() - 1))).toBeUndefined();
    expect(await priceAt(knex, { provider, name: "m" }, start)).toMatchObject({ inputPerMillion: 3, outputPerMillion: 15 });
    expect(await priceAt(knex, { provider, name: "m" }, new Date(change.getTime() - 1))).toMatchObject({ inputPerMillion: 3 });
    expect(await priceAt(knex, { provider, name: "m" }, change)).toMatchObject({ inputPerMillion: 1, outputPerMillion: 4 });
    expect(await priceAt(knex, { provider, name: "m" }, minutesFromNow(10 * DAY))).toMatchObject({ inputPerMillion: 1 });
    expect(await priceAt(knex, { provider, name: "other" }, change)).toBeUndefined();
  });

  it("priceAt by name alone: found when one provider has the name, undefined when several do", async () => {
    const name = `model-${randomUUID()}`;
    const [first, second] = [freshProvider(), freshProvider()];
    const knex = app.database.db.knex;
    await upsert({ provider: first, name, price: { inputPerMillion: 1, outputPerMillion: 2 } });
    expect(await priceAt(knex, { name }, new Date())).toMatchObject({ inputPerMillion: 1 });
    expect(await priceAt(knex, { provider: null, name }, new Date())).toMatchObject({ inputPerMillion: 1 });

    await upsert({ provider: second, name, price: { inputPerMillion: 5, outputPerMillion: 6 } });
    expect(await priceAt(knex, { name }, new Date())).toBeUndefined();
    expect(await priceAt(knex, { provider: second, name }, new Date())).toMatchObject({ inputPerMillion: 5 });
  });

  it("a price already in force is never changed: CONFLICT, saying so", async () => {
    const provider = freshProvider();
    const effectiveFrom = minutesFromNow(-DAY);
    await upsert({ provider, name: "m", price: { inputPerMillion: 3, outputPerMillion: 15, effectiveFrom } });

    const error = await upsertError({ provider, name: "m", price: { inputPerMillion: 1, outputPerMillion: 15, effectiveFrom } });
    expect(error).toMatchObject({ code: "CONFLICT" });
    expect(error.message).toMatch(/already in force and is never changed/);

    // Nor may a new price start in the past once one is in force: it would reprice past requests.
    const backdated = await upsertError({ provider, name: "m", price: { inputPerMillion: 1, outputPerMillion: 15, effectiveFrom: minutesFromNow(-60) } });
    expect(backdated).toMatchObject({ code: "CONFLICT" });
    expect(backdated.message).toMatch(/past prices are never rewritten/);

    const [model] = await models({ provider });
    expect(model.prices).toMatchObject([{ inputPerMillion: 3, effectiveFrom: effectiveFrom.toISOString() }]);
  });

  it("a price not yet in force is replaced by one with the same effectiveFrom", async () => {
    const provider = freshProvider();
    const effectiveFrom = minutesFromNow(DAY);
    await upsert({ provider, name: "m", price: { inputPerMillion: 3, outputPerMillion: 15, effectiveFrom } });
    const model = await upsert({ provider, name: "m", price: { inputPerMillion: 2, outputPerMillion: 9, effectiveFrom } });
    expect(model.prices).toEqual([{ effectiveFrom: effectiveFrom.toISOString(), inputPerMillion: 2, outputPerMillion: 9, cachedInputPerMillion: null }]);
    expect(model.currentPrice).toBeNull();
  });

  it("a price without effectiveFrom starts now; the same price again adds nothing", async () => {
    const provider = freshProvider();
    const price = { inputPerMillion: 0.15, outputPerMillion: 0.6 };
    const before = Date.now();
    const model = await upsert({ provider, name: "m", price });
    const started = Date.parse(model.currentPrice!.effectiveFrom);
    expect(started).toBeGreaterThanOrEqual(before - 1000); // the database's clock, not the test's
    expect(started).toBeLessThanOrEqual(Date.now() + 1000);

    expect((await upsert({ provider, name: "m", price })).prices).toHaveLength(1);
    expect((await upsert({ provider, name: "m", price: { ...price, effectiveFrom: model.currentPrice!.effectiveFrom } })).prices).toHaveLength(1);
    expect((await upsert({ provider, name: "m", price: { ...price, inputPerMillion: 0.1 } })).prices).toHaveLength(2);
  });
});

describe("retireAiModel", () => {
  it("hides the model from models unless includeRetired; idempotent; audited once; prices still apply", async () => {
    const provider = freshProvider();
    const effectiveFrom = minutesFromNow(-DAY);
    const { id } = await upsert({ provider, name: "old", price: { inputPerMillion: 1, outputPerMillion: 2, effectiveFrom } });
    await upsert({ provider, name: "new" });

    for (let i = 0; i < 2; i++) {
      const retired = (await app.ok<{ retireAiModel: AiModel }>(RETIRE, { id }, admin.token)).retireAiModel;
      expect(retired).toMatchObject({ id, isActive: false, currentPrice: { inputPerMillion: 1 } });
    }
    expect((await models({ provider })).map((model) => model.name)).toEqual(["new"]);
    expect((await models({ provider, includeRetired: true })).map((model) => [model.name, model.isActive])).toEqual([
      ["new", true],
      ["old", false],
    ]);
    expect(await priceAt(app.database.db.knex, { provider, name: "old" }, new Date())).toMatchObject({ inputPerMillion: 1 });
    expect(await app.database.db.knex("audit_logs").where({ action: "ai_model.retire", targetId: id })).toHaveLength(1);

    // upsert brings it back
    expect(await upsert({ provider, name: "old", isActive: true })).toMatchObject({ id, isActive: true });
  });

  it("NOT_FOUND for an unknown id", async () => {
    expect(await app.errorCode(RETIRE, { id: randomUUID() }, admin.token)).toBe("NOT_FOUND");
  });
});

describe("statements", () => {
  it("models with prices and currentPrice: the same statements for 1 and for 10 models", async () => {
    const counts: Record<number, number> = {};
    for (const n of [1, 10]) {
      const provider = freshProvider();
      for (let i = 0; i < n; i++) {
        await upsert({ provider, name: `m${i}`, price: { inputPerMillion: i, outputPerMillion: i, effectiveFrom: minutesFromNow(-DAY) } });
        await upsert({ provider, name: `m${i}`, price: { inputPerMillion: i + 1, outputPerMillion: i + 1, effectiveFrom: minutesFromNow(DAY) } });
      }
      const { data, statements } = await counter.run<{ models: AiModel[] }>(MODELS, { provider }, member.token);
      expect(data.models.map((model) => [model.currentPrice!.inputPerMillion, model.prices.length])).toEqual(
        Array.from({ length: n }, (_, i) => [i, 2]),
      );
      counts[n] = statements.length;
    }
    // the token, the models, their prices
    expect(counts).toEqual({ 1: 3, 10: 3 });
  });
});
