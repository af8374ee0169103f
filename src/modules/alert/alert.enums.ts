import { registerEnumType } from "type-graphql";

/** How urgent an alert is; stored in lower case (system_alerts.severity). */
export enum AlertSeverity {
  INFO = "info",
  WARNING = "warning",
  CRITICAL = "critical",
}
registerEnumType(AlertSeverity, { name: "AlertSeverity", description: "How urgent an alert is" });
