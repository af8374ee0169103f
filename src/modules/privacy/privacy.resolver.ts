import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { ConnectionArgs, ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { DataExport } from "./data-export.model";
import { DataExportStatus, DeleteUserMode } from "./privacy.enums";
import { UserDeletion } from "./user-deletion.types";
import * as dataExports from "./data-export.service";
import { deleteUser } from "./user-deletion.service";

export const DataExportConnection = ConnectionType(DataExport);

@Resolver(() => DataExport)
export class DataExportResolver {
  @Mutation(() => DataExport, {
    description:
      "Starts an archive (JSON) of all your data: your profile, the conversations you own with all their messages, the messages you " +
      "wrote in other conversations (only yours), your feedback and the usage billed to you. Comes back PENDING: poll dataExport(id) " +
      "until READY, then GET its downloadPath. Idempotent on requestId; CONFLICT (reason DATA_EXPORT_PENDING) while another is PENDING",
  })
  exportMyData(@Arg("requestId", () => String, { nullable: true, description: "Idempotency key (1-200 characters)" }) requestId: string | null, @Ctx() ctx: Context): Promise<DataExport> {
    return dataExports.exportMyData(ctx, requestId);
  }

  @Query(() => DataExport, { description: "One of your data exports; NOT_FOUND for anyone else's (admins included)" })
  dataExport(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<DataExport> {
    return dataExports.getDataExport(ctx, id);
  }

  @Query(() => DataExportConnection, { description: "Your data exports, newest first" })
  myDataExports(@Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<DataExport>> {
    return dataExports.listDataExports(ctx, args);
  }

  @Mutation(() => Boolean, { description: "Deletes one of your data exports and its file (a PENDING one stops)" })
  deleteDataExport(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return dataExports.deleteDataExport(ctx, id);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "Where to GET the file (relative to the server, with the same Authorization header); null until READY",
  })
  downloadPath(@Root() dataExport: DataExport): string | null {
    return dataExport.status === DataExportStatus.READY ? `/exports/${dataExport.id}/download` : null;
  }
}

@Resolver(() => UserDeletion)
export class UserDeletionResolver {
  @Mutation(() => UserDeletion, {
    description:
      "Admins only, not on themselves. Removes the user's personal content: the conversations they own (with all messages, transcripts, " +
      "artifacts and files), their USER messages in others' conversations (emptied in place, seq kept), their feedback, data exports, " +
      "assistants, own documents, query history, grants and transcripts they asked for; their keys and sessions stop at once. ANONYMIZE " +
      "keeps an inactive tombstone user (\"Deleted user\") holding the usage ledger and cost roll-ups; DELETE removes the user row too " +
      "(ledger rows stay without a user). Audited as user.anonymize or user.delete",
  })
  deleteUser(@Arg("id", () => UUIDScalar) id: string, @Arg("mode", () => DeleteUserMode) mode: DeleteUserMode, @Ctx() ctx: Context): Promise<UserDeletion> {
    return deleteUser(ctx, id, mode);
  }
}
