/**
 * CPU time of a process tree, read from /proc, for "CPU ms per request" of a server and of PostgreSQL.
 *
 * Method. /proc/PID/stat gives, in clock ticks (`getconf CLK_TCK`, normally 100 per second), a process's own
 * CPU (utime + stime, all its threads: node's worker threads, pino's transport, libuv's pool) and that of
 * its children it has already waited for (cutime + cstime). For a tree (a root and its descendants, found
 * through the ppid field of every /proc/<pid>/stat) we add up utime + stime + cutime + cstime over the
 * processes alive at the moment of reading. When a process of the tree exits, its parent reaps it and its
 * whole CPU moves into the parent's cutime/cstime; so the sum loses nothing and counts nothing twice, and
 * the CPU of the tree between two readings is the difference of the sums. That holds for PostgreSQL, whose
 * backends, background workers and autovacuum workers are all children of the postmaster, which reaps them
 * at once: backends (long-lived pool connections) alive at both readings count with their own difference,
 * backends started in between count whole, and backends that exited in between are in the postmaster's
 * cutime/cstime (minus what they had used at the first reading). A process that exits and is not yet reaped
 * (a zombie) still shows its utime/stime.
 *
 * Limits: one tick is 10 ms, so a reading is exact to about ±10 ms per process, negligible against a
 * measured run of seconds over thousands of requests; a process that exits between our reading of it and of
 * its parent is missed once (a few ticks at most).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

let ticksPerSecond: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`; 100 when getconf is missing). */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

/** One /proc/<pid>/stat, or undefined when the process is gone. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const field = (n: number) => Number(fields[n - 3]);
  return { pid, ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17) };
}

/** The CPU ticks of `root` and all its descendants alive now, their exited children included (see above). */
export function treeTicks(root: number): number {
  const stats: Stat[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  const children = new Map<number, Stat[]>();
  for (const stat of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat]);
  const rootStat = stats.find((stat) => stat.pid === root);
  if (!rootStat) throw new Error(`process ${root} is gone`);
  let total = 0;
  const queue = [rootStat];
  while (queue.length) {
    const stat = queue.pop()!;
    total += stat.ticks;
    queue.push(...(children.get(stat.pid) ?? []));
  }
  return total;
}

/** Milliseconds of CPU between two treeTicks readings. */
export const ticksToMs = (ticks: number) => (ticks * 1000) / clockTicks();

/** The postmaster's pid of a cluster's data directory (first line of postmaster.pid). */
export function postmasterPid(dataDir: string): number {
  return Number(fs.readFileSync(`${dataDir}/postmaster.pid`, "utf8").split("\n")[0]);
}
