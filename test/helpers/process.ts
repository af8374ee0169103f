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

export interface ProcessOptions {
  /** The node executable to run the entry with (the benchmark's second Node version); default process.execPath. */
  execPath?: string;
}

/**
 * Starts the server with `env` (PORT 0: any free port) and resolves once it listens. `nodeArgs` go to node
 * itself (the benchmarks' --cpu-prof, which NODE_OPTIONS does not accept).
 */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000, nodeArgs: string[] = [], options: ProcessOptions = {}): Promise<ServerProcess> {
  // pino writes one JSON object per line; the start line carries the URL.
  const started = await startProcess("src/index.ts", env, /"url":"(http:\/\/[^"]+)\/graphql"[^\n]*"msg":"Parley is listening"/, timeoutMs, nodeArgs, options);
  return { url: started.match[1], child: started.child, stop: async () => void (await started.stop()) };
}

export interface StartedProcess {
  child: ChildProcess;
  /** The match of `ready` in the output. */
  match: RegExpExecArray;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs a TypeScript entry of the project (as the npm scripts do, through swc-node) with `env` on top of a
 * clean environment, and resolves once its output matches `ready`.
 */
export function startProcess(
  entry: string,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
  nodeArgs: string[] = [],
  options: ProcessOptions = {},
): Promise<StartedProcess> {
  const child = spawn(options.execPath ?? process.execPath, [...nodeArgs, "-r", "@swc-node/register", path.join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...cleanEnv(), HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${entry} was not ready within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      void stop().then(() => reject(error));
    };
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => output, stop });
      }
    };
    child.stderr!.on("data", onOutput);
    child.stdout!.on("data", onOutput);
    void exited.then((code) => fail(new Error(`${entry} exited with ${code}:\n${output}`)));
  });
}

/** POSTs an operation to a server process with `token`; its data, or its errors thrown. */
export async function postOperation(server: ServerProcess, token: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
