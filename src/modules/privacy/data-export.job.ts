/**
 * Data exports as a kind of file job (transcript.jobs.ts runs it like a transcript: lease, takeover after a
 * crash, timeouts, clean-up). The file goes under `exports/<userId>/<id>-<attempt>.json`: per attempt, like a
 * transcript's, so a late write of a run that was taken over never replaces the file of the run that won.
 */
import type { FileJob } from "../transcript/transcript.jobs";
import { DataExport } from "./data-export.model";
import { DATA_EXPORT_CONTENT_TYPE, writeArchive } from "./data-export.archive";

export function exportKeyOf(row: DataExport): string {
  return `exports/${row.userId}/${row.id}-${row.attempts}.json`;
}

export const dataExportJob: FileJob<DataExport> = {
  metric: "data-export",
  noun: "data export",
  logKey: "dataExportId",
  model: DataExport,
  keyOf: exportKeyOf,
  async write(row, run) {
    const result = await writeArchive(
      run.knex,
      run.encryption,
      { id: row.id, userId: row.userId, createdAt: row.createdAt },
      (body) => run.put(body, DATA_EXPORT_CONTENT_TYPE),
      () => run.checkpoint(),
    );
    return result && { fileSizeBytes: result.fileSizeBytes, sha256: result.sha256, counts: result.counts };
  },
};
