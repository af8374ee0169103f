/**
 * A real small disk for storage fault tests: a tmpfs of a given size mounted on a new folder, which a test
 * can fill (ENOSPC from the kernel, not a simulated error) and take away and bring back like a volume that
 * is unmounted. Mounting needs root (CI and the dev machines run tests as root); without it the suite fails
 * with a message saying so, instead of skipping.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface SmallDisk {
  /** Where the disk is mounted (empty while it is away). */
  dir: string;
  /** Unmounts it from `dir`, keeping its files (it stays mounted elsewhere). */
  takeAway(): void;
  /** Mounts it on `dir` again, files and all. */
  bringBack(): void;
  dispose(): void;
}

function mount(...args: string[]): void {
  execFileSync("mount", args, { stdio: "pipe" });
}
function unmount(dir: string): void {
  execFileSync("umount", [dir], { stdio: "pipe" });
}

export function mountSmallDisk(sizeKiB: number): SmallDisk {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "parley-small-disk-"));
  const dir = path.join(root, "disk");
  const aside = path.join(root, "aside");
  fs.mkdirSync(dir);
  fs.mkdirSync(aside);
  try {
    mount("-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0755`, "tmpfs", dir);
  } catch (error) {
    fs.rmSync(root, { recursive: true, force: true });
    const stderr = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    throw new Error(`The storage fault tests mount a ${sizeKiB} KiB tmpfs to fill a real disk, which needs root: mount said "${stderr}"`);
  }
  let mountedOn = dir;
  const move = (to: string) => {
    mount("--bind", mountedOn, to);
    unmount(mountedOn);
    mountedOn = to;
  };
  return {
    dir,
    takeAway: () => move(aside),
    bringBack: () => move(dir),
    dispose() {
      unmount(mountedOn);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Writes a file of zeros that leaves `freeKiB` of the disk free (tmpfs counts whole 4 KiB pages). */
export function fillDisk(dir: string, sizeKiB: number, freeKiB: number): string {
  const ballast = path.join(dir, "ballast");
  fs.writeFileSync(ballast, Buffer.alloc((sizeKiB - freeKiB) * 1024));
  return ballast;
}
