import { Args, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../../graphql/context";
import { ConnectionArgs, ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { BackupLog } from "./backup.model";
import { listBackups } from "./backup.service";

export const BackupConnection = ConnectionType(BackupLog, "Backup");

@Resolver(() => BackupLog)
export class BackupResolver {
  @Query(() => BackupConnection, { description: "Admins only: backup runs (npm run cli -- backup, and the schedule), newest first" })
  backups(@Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<BackupLog>> {
    return listBackups(ctx, args);
  }
}
