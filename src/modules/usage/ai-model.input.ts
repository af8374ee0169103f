// Checked in ai-model.service.ts rather than with class-validator, so that every refusal names its `field`.
import { ArgsType, Field, Float, InputType, Int } from "type-graphql";

@InputType({ description: "A price in US dollars per million tokens (at most 6 decimal places are kept)" })
export class AiModelPriceInput {
  @Field(() => Float)
  inputPerMillion: number;

  @Field(() => Float)
  outputPerMillion: number;

  @Field(() => Float, { nullable: true, description: "For cached input tokens; omit when the model has no separate price" })
  cachedInputPerMillion?: number | null;

  @Field(() => Date, {
    nullable: true,
    description: "When the price starts (default: now). Only a price not yet in force may be replaced, and only a model without a price in force may be given one that starts in the past",
  })
  effectiveFrom?: Date | null;
}

@InputType()
export class UpsertAiModelInput {
  @Field({ description: "Together with name, identifies the model (1 to 100 characters, trimmed)" })
  provider: string;

  @Field({ description: "1 to 200 characters, trimmed" })
  name: string;

  @Field(() => Int, { nullable: true, description: "Greater than 0; omitted: unchanged (unknown for a new model)" })
  contextWindow?: number | null;

  @Field(() => Boolean, { nullable: true, description: "Omitted: unchanged (true for a new model); true brings a retired model back" })
  isActive?: boolean | null;

  @Field(() => AiModelPriceInput, { nullable: true, description: "Added to the price history (omitted: prices unchanged)" })
  price?: AiModelPriceInput | null;
}

@ArgsType()
export class ModelsArgs {
  @Field(() => Boolean, { nullable: true, defaultValue: false, description: "Also list retired models" })
  includeRetired?: boolean | null;

  @Field(() => String, { nullable: true, description: "Only this provider's models" })
  provider?: string | null;
}
