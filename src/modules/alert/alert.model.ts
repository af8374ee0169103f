import { Field, ObjectType } from "type-graphql";
import { JSONResolver } from "graphql-scalars";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { AlertSeverity } from "./alert.enums";

/**
 * Something an operator should know of (system_alerts): raised by a service or an admin, or by the ledger when
 * a budget threshold is crossed (then budgetId is set and dedupeKey makes it one per threshold and period).
 * Admins acknowledge it (someone is on it) and resolve it (it is over); both are kept with who and when.
 */
@ObjectType({ description: "An alert for operators (budget thresholds crossed, service problems)" })
export class SystemAlert extends Model {
  static override tableName = "system_alerts";

  /** Not in the API: the ledger's key (budget, period, threshold) that makes a budget alert one of a kind. */
  dedupeKey: string | null;
  updatedAt: Date;

  @Field(() => UUIDScalar)
  id: string;

  @Field({ description: "What raised it, e.g. budget, or a service's own name" })
  source: string;

  @Field(() => AlertSeverity)
  severity: AlertSeverity;

  @Field()
  message: string;

  @Field(() => JSONResolver, { description: "A JSON object with whatever the source adds" })
  details: Record<string, unknown>;

  @Field(() => UUIDScalar, { nullable: true, description: "The user it concerns (who may then see it); null: only admins see it" })
  userId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The budget whose threshold was crossed, for budget alerts" })
  budgetId: string | null;

  @Field(() => UUIDScalar, { nullable: true, description: "The user (service or admin) who raised it; null for the ledger's budget alerts" })
  raisedBy: string | null;

  @Field(() => Date, { nullable: true })
  acknowledgedAt: Date | null;

  @Field(() => UUIDScalar, { nullable: true })
  acknowledgedBy: string | null;

  @Field(() => Date, { nullable: true })
  resolvedAt: Date | null;

  @Field(() => UUIDScalar, { nullable: true })
  resolvedBy: string | null;

  @Field()
  createdAt: Date;
}
