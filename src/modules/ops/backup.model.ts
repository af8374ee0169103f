/**
 * One backup run (backup_logs): STARTED when the row is written, IN_PROGRESS once the dump produces its first
 * bytes, then COMPLETED with the file's size and SHA-256, or FAILED with the error. The row is the log of the
 * run; pruning a scheduled backup removes its file and sets prunedAt, and the row stays.
 */
import { Field, Float, ObjectType, registerEnumType } from "type-graphql";
import { Model } from "objection";
import { UUIDScalar } from "../../graphql/scalars/uuid";

export enum BackupStatus {
  STARTED = "started",
  IN_PROGRESS = "in_progress",
  COMPLETED = "completed",
  FAILED = "failed",
}
registerEnumType(BackupStatus, { name: "BackupStatus" });

/** How the file was made, which says how it is restored. */
export enum BackupFormat {
  /** pg_dump's custom format (-Fc), restored with pg_restore. */
  PG_DUMP = "pg_dump",
  /** The embedded database's data folder as a tar.gz (PGlite's dumpDataDir). */
  PGLITE = "pglite",
}
registerEnumType(BackupFormat, { name: "BackupFormat" });

export enum BackupTrigger {
  MANUAL = "manual",
  SCHEDULED = "scheduled",
}
registerEnumType(BackupTrigger, { name: "BackupTrigger" });

export type BackupStorageKind = "disk" | "s3";

@ObjectType("Backup", { description: "A backup run (admins only)" })
export class BackupLog extends Model {
  static override tableName = "backup_logs";

  @Field(() => UUIDScalar)
  id: string;

  @Field(() => BackupFormat, { name: "format" })
  backupType: BackupFormat;

  @Field(() => BackupStatus)
  status: BackupStatus;

  @Field(() => BackupTrigger)
  trigger: BackupTrigger;

  @Field()
  startedAt: Date;

  @Field(() => Date, { nullable: true })
  completedAt: Date | null;

  @Field(() => String, { nullable: true, description: "disk or s3" })
  storage: BackupStorageKind | null;

  /** The key in its storage (disk: relative to BACKUP_DIR; S3: in the bucket). */
  storageKey: string | null;

  @Field(() => String, { nullable: true, description: "What to pass to `npm run cli -- restore`: a path, or s3://bucket/key" })
  filePath: string | null;

  @Field(() => Float, { nullable: true })
  fileSizeBytes: number | null;

  @Field(() => String, { nullable: true, description: "Hex SHA-256 of the file, also stored beside it as <file>.sha256" })
  sha256: string | null;

  @Field(() => String, { nullable: true })
  errorMessage: string | null;

  @Field(() => Date, { nullable: true, description: "When BACKUP_KEEP removed the file" })
  prunedAt: Date | null;
}
