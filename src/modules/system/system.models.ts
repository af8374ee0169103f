/**
 * Operational tables. They have no GraphQL surface yet: the access issue adds admin queries for the
 * audit log and configs; backups write backup_logs.
 */
import { Model } from "objection";

export class SystemConfig extends Model {
  static override tableName = "system_configs";
  static override idColumn = "key";
  key: string;
  value: unknown;
  description: string | null;
  updatedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export class BackupLog extends Model {
  static override tableName = "backup_logs";
  id: string;
  backupType: string;
  status: "started" | "in_progress" | "completed" | "failed";
  startedAt: Date;
  completedAt: Date | null;
  filePath: string | null;
  fileSizeBytes: number | null;
  errorMessage: string | null;
}

export class AuditLog extends Model {
  static override tableName = "audit_logs";
  id: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  details: Record<string, unknown>;
  ip: string | null;
  requestId: string | null;
  createdAt: Date;
}
