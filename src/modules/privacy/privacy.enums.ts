import { registerEnumType } from "type-graphql";

/** The values are the job statuses every export table stores (transcript.jobs.ts settles both kinds). */
export enum DataExportStatus {
  PENDING = "pending",
  READY = "ready",
  FAILED = "failed",
}
registerEnumType(DataExportStatus, { name: "DataExportStatus", description: "PENDING while the archive is written, then READY or FAILED" });

export enum DeleteUserMode {
  ANONYMIZE = "anonymize",
  DELETE = "delete",
}
registerEnumType(DeleteUserMode, {
  name: "DeleteUserMode",
  description:
    "ANONYMIZE: the user's personal content goes and a tombstone user (\"Deleted user\", no email or external ids, inactive) stays, so the " +
    "usage ledger and cost roll-ups keep their user for accounting. DELETE: the same content goes and the user row too; ledger rows " +
    "keep no user, roll-ups and budgets go",
  valuesConfig: {
    ANONYMIZE: { description: "Remove the personal content, keep an inactive tombstone user for the usage ledger and roll-ups" },
    DELETE: { description: "Remove the personal content and the user; ledger rows stay without a user" },
  },
});
