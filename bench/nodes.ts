/**
 * The Node versions the benchmark runs the systems on (BENCH_NODES, default "20,24"): the Node running the
 * benchmark itself (process.execPath) for its own major version, and Node 24 installed by scripts/node24.sh
 * into .cache/node24 (from the npm registry) when it is not the running one. A version that cannot be had is
 * left out with the reason, which the results file states.
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";

export interface NodeVersion {
  /** The major version as BENCH_NODES names it ("20", "24"). */
  label: string;
  /** The node executable. */
  execPath: string;
  /** `node --version` of that executable, e.g. "v24.11.1". */
  version: string;
}

const ROOT = path.resolve(__dirname, "..");

function versionOf(execPath: string): string {
  return execFileSync(execPath, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** scripts/node24.sh: installs Node 24 when missing, prints its path on the last line. */
function installNode24(): string {
  const result = spawnSync("bash", [path.join(ROOT, "scripts/node24.sh")], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 });
  if (result.stderr) process.stderr.write(result.stderr);
  if (result.error) throw result.error;
  if (result.status !== 0) {
    // npm's error code (ECONNREFUSED, E404, ...) and the script's own last word.
    const lines = result.stderr.trim().split("\n");
    const reason = [lines.find((line) => /^npm error code /.test(line)), lines.pop()].filter(Boolean).join("; ");
    throw new Error(`scripts/node24.sh failed: ${reason || `exit code ${result.status ?? result.signal}`}`);
  }
  return result.stdout.trim().split("\n").pop()!.trim();
}

/** The requested versions that could be had, and a sentence per version that could not. */
export function resolveNodes(requested: string[]): { nodes: NodeVersion[]; problems: string[] } {
  const nodes: NodeVersion[] = [];
  const problems: string[] = [];
  const current = process.versions.node.split(".")[0];
  for (const label of requested.map((s) => s.trim().replace(/^v/, "")).filter(Boolean)) {
    if (nodes.some((node) => node.label === label)) continue;
    try {
      let execPath: string;
      if (label === current) execPath = process.execPath;
      else if (label === "24") execPath = installNode24();
      else throw new Error(`this benchmark runs the Node that runs it (${current}) and Node 24 (scripts/node24.sh), not Node ${label}`);
      const version = versionOf(execPath);
      if (version.split(".")[0] !== `v${label}`) throw new Error(`${execPath} is ${version}, not Node ${label}`);
      nodes.push({ label, execPath, version });
    } catch (error) {
      const reason = (error as Error).message.split("\n")[0];
      problems.push(`Node ${label} ${label === "24" ? "could not be installed" : "is not available"}: ${reason}.`);
      console.error(`Node ${label}: ${reason}`);
    }
  }
  nodes.sort((a, b) => Number(a.label) - Number(b.label));
  return { nodes, problems };
}
