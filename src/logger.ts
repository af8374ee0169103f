import pino, { type Logger } from "pino";
import type { Config } from "./config";

/** Structured JSON logs on stdout; every request logs through a child carrying its request id. */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({ level: config.logLevel, base: { service: "parley" } });
}

/**
 * The shutdown path of a long-running entry (`npm start`, `npm run discord`): the first SIGTERM or SIGINT runs
 * `stop` and exits 0 (1 if it fails); a second signal exits at once.
 */
export function stopOnSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, "shutting down");
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}
