import { Field, Float, Int, ObjectType } from "type-graphql";
import { Model } from "objection";
import { BaseModel } from "../../db/base.model";
import { UUIDScalar } from "../../graphql/scalars/uuid";

/**
 * A model of the catalogue (ai_models), keyed by provider and name. Retired models (isActive false) keep
 * their price history: requests of the past, and late reports of them, are still priced from it.
 */
@ObjectType({ description: "A model of the catalogue, with its price history" })
export class AiModel extends BaseModel {
  static override tableName = "ai_models";

  @Field({ description: "Who serves the model (openai, anthropic, ...)" })
  provider: string;

  @Field({ description: "The model's name as requests name it" })
  name: string;

  @Field(() => Int, { nullable: true, description: "Tokens the model reads at most; null when unknown" })
  contextWindow: number | null;

  @Field({ description: "False once retired: hidden from `models` unless asked for, still priced from its history" })
  isActive: boolean;
}

/** numeric columns come back as strings from both drivers: numbers here (prices fit a double exactly enough). */
function numeric(value: unknown): unknown {
  return typeof value === "string" ? Number(value) : value;
}

/**
 * A price of a model from `effectiveFrom` on, until the next one starts (ai_model_prices). Prices are in US
 * dollars per million tokens, stored as numeric(20, 6). A price in force is never changed, so a cost computed
 * from it stays true.
 */
@ObjectType({ description: "A model's price from effectiveFrom until the next price starts; USD per million tokens" })
export class AiModelPrice extends Model {
  static override tableName = "ai_model_prices";

  modelId: string;
  createdBy: string | null;
  /**
   * Set by the prices loader: in force at the request's time by the database's clock (the clock that stamps
   * ledger rows and decides, in upsertAiModel, which prices may still change).
   */
  inForce?: boolean;

  @Field(() => UUIDScalar)
  id: string;

  @Field()
  effectiveFrom: Date;

  @Field(() => Float)
  inputPerMillion: number;

  @Field(() => Float)
  outputPerMillion: number;

  @Field(() => Float, { nullable: true, description: "For cached input tokens; null when the model has no separate cached-input price" })
  cachedInputPerMillion: number | null;

  @Field()
  createdAt: Date;

  override $parseDatabaseJson(json: Record<string, unknown>) {
    const parsed = super.$parseDatabaseJson(json);
    parsed.inputPerMillion = numeric(parsed.inputPerMillion);
    parsed.outputPerMillion = numeric(parsed.outputPerMillion);
    parsed.cachedInputPerMillion = numeric(parsed.cachedInputPerMillion);
    return parsed;
  }
}
