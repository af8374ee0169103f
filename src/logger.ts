import pino, { type Logger } from "pino";
import type { Config } from "./config";

/** Structured JSON logs on stdout; every request logs through a child carrying its request id. */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({ level: config.logLevel, base: { service: "parley" } });
}
