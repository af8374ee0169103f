/** Figures the benchmarks read the same way: a server process's memory, and percentiles of latencies. */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

/**
 * Wall-clock milliseconds with sub-millisecond resolution: the process's start time plus its monotonic clock,
 * so it does not jump with clock adjustments during a run and is comparable between processes of one machine
 * (up to a small offset, which bench/fanout.ts measures).
 */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();

/** A process's resident set now and its peak (VmRSS, VmHWM), in MiB. */
export function processMemoryMiB(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** The p-th percentile of ascending `sorted` (the value at index floor(p% of n)). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Prints `lines` and writes them to bench/results/<prefix><YYYY-MM-DD>[-BENCH_LABEL].md, the file the README
 * quotes.
 */
export function writeResults(prefix: string, lines: string[]): void {
  const text = lines.join("\n");
  console.log(text);
  const label = process.env.BENCH_LABEL ? `-${process.env.BENCH_LABEL}` : "";
  const out = path.join(__dirname, "results", `${prefix}${new Date().toISOString().slice(0, 10)}${label}.md`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
  console.error(`written to ${out}`);
}
