/**
 * A Parley server as a real child process (`src/index.ts`, as `npm run dev` runs it), for tests that need
 * separate processes: fan-out between servers, signals. It inherits no database settings of the test runner.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { ROOT, cleanEnv } from "./cli";

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts the server with `env` (PORT 0: any free port) and resolves once it listens. `nodeArgs` go to node
 * itself (the benchmarks' --cpu-prof, which NODE_OPTIONS does not accept).
 */
export function startServerProcess(env: Record<string, string>, timeoutMs = 60_000, nodeArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, "-r", "@swc-node/register", path.join(ROOT, "src/index.ts")], {
    cwd: ROOT,
    env: { ...cleanEnv(), HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error(`the server did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      void stop().then(() => reject(error));
    };
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      // pino writes one JSON object per line; the start line carries the URL.
      const match = /"url":"(http:\/\/[^"]+)\/graphql"[^\n]*"msg":"Parley is listening"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1], child, stop });
      }
    });
    child.once("exit", (code) => fail(new Error(`the server exited with ${code}:\n${output}`)));
  });
}
