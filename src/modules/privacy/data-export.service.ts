/**
 * Data portability: a user's archive of everything Parley holds of them (data-export.archive.ts), written in
 * the background by the export jobs (transcript.jobs.ts) into the transcripts' storage backend, polled with
 * dataExport(id) and downloaded from GET /exports/:id/download.
 *
 * An export is its user's alone: anyone else, admins included, gets NOT_FOUND for it, exactly as for an
 * unknown id. Admins read a user's data through the API's own queries, not through their private archive.
 *
 * Idempotency is the transcripts' (transcript.service.ts): a requestId names one request and its answer is
 * final, FAILED included; a new request (no requestId, or a new one) is the retry. While one export of the
 * user is PENDING a new one is refused (CONFLICT, reason DATA_EXPORT_PENDING, with the pending one's id):
 * the archive reads all of the user's data, and a second one at the same time would only double that.
 */
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, mapDatabaseError, NotFoundError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionArgs, type ConnectionShape } from "../../graphql/connection";
import type { TranscriptJobs } from "../transcript/transcript.jobs";
import type { StoredFile } from "../transcript/transcript.storage";
import { DataExport } from "./data-export.model";
import { dataExportJob } from "./data-export.job";
import { DataExportStatus } from "./privacy.enums";
import { audit } from "../audit/audit.service";

function jobsOf(ctx: Actor): TranscriptJobs {
  if (!ctx.transcripts) throw new Error("data exports need a running server (its export jobs)");
  return ctx.transcripts;
}

class DataExportPendingError extends ConflictError {
  constructor(pending: DataExport) {
    super("An export of your data is already being written; wait for it (dataExport) before asking for another");
    this.extensions.reason = "DATA_EXPORT_PENDING";
    this.extensions.dataExportId = pending.id;
  }
}

class DataExportNotReadyError extends ConflictError {
  constructor(status: DataExportStatus) {
    super(`The data export is ${status.toUpperCase()}: only READY exports can be downloaded`);
    this.extensions.reason = "DATA_EXPORT_NOT_READY";
  }
}

/** The viewer's own export, else NOT_FOUND (also for admins: an archive is its user's alone). */
export async function getDataExport(ctx: Actor, id: string): Promise<DataExport> {
  const viewer = viewerOf(ctx);
  const row = await DataExport.query(ctx.db.knex).findOne({ id, userId: viewer.id });
  if (!row) throw new NotFoundError("Data export");
  return row;
}

/** The viewer's exports, newest first. */
export function listDataExports(ctx: Actor, args: ConnectionArgs): Promise<ConnectionShape<DataExport>> {
  const viewer = viewerOf(ctx);
  return newestFirstPage(() => DataExport.query(ctx.db.knex).where("userId", viewer.id), pageRequest(args, ctx.config), "createdAt", "created_at");
}

/** Starts an export of the viewer's data (PENDING; poll dataExport(id)), or answers the earlier one with this requestId. */
export async function exportMyData(ctx: Actor, requestId: string | null | undefined): Promise<DataExport> {
  const viewer = viewerOf(ctx);
  if (requestId != null) {
    if (requestId.length < 1 || requestId.length > 200) throw new BadUserInputError("requestId must be 1 to 200 characters", { field: "requestId" });
    checkText(requestId, "requestId");
  }
  const jobs = jobsOf(ctx);
  const knex = ctx.db.knex;
  const earlier = () => (requestId == null ? undefined : DataExport.query(knex).findOne({ userId: viewer.id, requestId }));
  const retried = await earlier();
  if (retried) return retried;
  let row: DataExport;
  try {
    // Audited: an archive of everything is what a stolen key would ask for first.
    row = await knex.transaction(async (trx) => {
      const created = await DataExport.query(trx).insertAndFetch({
        userId: viewer.id,
        requestId: requestId ?? null,
        status: DataExportStatus.PENDING,
        // The lease of this process: the export starts here at once.
        attempts: 1,
        heartbeatAt: new Date(),
      });
      await audit(ctx, { action: "data_export.create", targetType: "data_export", targetId: created.id }, trx);
      return created;
    });
  } catch (error) {
    if (!(mapDatabaseError(error) instanceof ConflictError)) throw error;
    // Lost a race with a retry of the same request (answer as the retry would have been), or one is pending.
    const raced = await earlier();
    if (raced) return raced;
    const pending = await DataExport.query(knex).findOne({ userId: viewer.id, status: DataExportStatus.PENDING });
    if (pending) throw new DataExportPendingError(pending);
    throw error;
  }
  jobs.runJobInBackground(dataExportJob, row);
  return row;
}

/** Deletes one of the viewer's exports and, after that commit, its file. A PENDING one stops and removes what it wrote. */
export async function deleteDataExport(ctx: Actor, id: string): Promise<boolean> {
  const current = await getDataExport(ctx, id);
  const deleted = await ctx.db.knex.transaction(async (trx) => {
    const [row] = (await DataExport.query(trx).delete().where({ id: current.id, userId: current.userId }).returning("*")) as unknown as DataExport[];
    if (!row) throw new NotFoundError("Data export");
    await audit(ctx, { action: "data_export.delete", targetType: "data_export", targetId: row.id }, trx);
    return row;
  });
  if (deleted.storageKey) await jobsOf(ctx).removeFiles([deleted.storageKey]);
  return true;
}

/** The export's file, for GET /exports/:id/download. */
export async function openDataExportFile(ctx: Actor, id: string): Promise<{ dataExport: DataExport; file: StoredFile }> {
  const dataExport = await getDataExport(ctx, id);
  if (dataExport.status !== DataExportStatus.READY) throw new DataExportNotReadyError(dataExport.status);
  return { dataExport, file: await jobsOf(ctx).storage.get(dataExport.storageKey!) };
}
