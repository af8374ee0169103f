/**
 * Progress of a long operator command (reencrypt, export) on stderr: a cli-progress bar on a terminal;
 * otherwise (a log file, CI) one plain line per 10 % so that logs stay readable.
 */
import { SingleBar } from "cli-progress";

export interface Progress {
  done: number;
  total: number;
}

/** `label` starts every line ("reencrypt"), `unit` names what is counted ("messages"). */
export function progressDisplay(label: string, unit: string, stream: NodeJS.WriteStream = process.stderr) {
  let bar: SingleBar | undefined;
  let nextTenth = 1;
  return {
    update(progress: Progress): void {
      if (stream.isTTY) {
        if (!bar) {
          bar = new SingleBar({ stream, format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}` });
          bar.start(progress.total, 0);
        }
        bar.setTotal(progress.total);
        bar.update(progress.done);
        return;
      }
      const tenth = progress.total === 0 ? 10 : Math.floor((progress.done * 10) / progress.total);
      if (tenth < nextTenth) return;
      nextTenth = tenth + 1;
      stream.write(`${label}: ${progress.done}/${progress.total} ${unit} (${Math.round((progress.done * 100) / Math.max(progress.total, 1))}%)\n`);
    },
    stop(): void {
      bar?.stop();
    },
  };
}
