/**
 * Operational tables. backup_logs has no GraphQL surface yet: backups write it.
 */
import { Model } from "objection";

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
