/**
 * PGlite takes no lock on its data folder, and two processes writing one folder corrupt it. Every opener
 * (server, CLI, knex CLI through knexfile.ts) goes through this lock file so that a second one refuses
 * with a clear message instead.
 */
import fs from "node:fs";
import path from "node:path";

export class DatabaseInUseError extends Error {
  override name = "DatabaseInUseError";
}

interface LockInfo {
  pid: number;
  command: string;
  startedAt: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to someone else: still alive.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock on `dir` for this process. Returns the release function. */
export function lockPgliteDir(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "parley.lock");
  const info: LockInfo = { pid: process.pid, command: process.argv.slice(1).join(" "), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(info), { flag: "wx" });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off("exit", release);
        try {
          fs.unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
      process.on("exit", release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let holder: LockInfo | undefined;
      try {
        holder = JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
      } catch {
        holder = undefined; // unreadable or half-written: treat as stale
      }
      if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
        throw new DatabaseInUseError(
          `The embedded database in ${dir} is in use by process ${holder.pid} (${holder.command}, since ${holder.startedAt}). ` +
            "Stop that process first (the server applies migrations itself on start), or set DATABASE_URL to use a PostgreSQL server.",
        );
      }
      fs.rmSync(file, { force: true }); // stale lock of a dead process
    }
  }
  throw new DatabaseInUseError(`Could not take the lock on the embedded database in ${dir}`);
}
