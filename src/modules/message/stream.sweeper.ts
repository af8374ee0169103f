/**
 * The stale-stream sweeper: fails STREAMING replies whose writer stopped sending chunks (failStaleStreams),
 * checked twice per STREAM_TIMEOUT_SECONDS, at most every minute.
 *
 * A writer cannot send chunks while the database is away, so an outage must not count against it: after the
 * database comes back (the LISTEN connection reconnected, or a sweep found it back after one found it away),
 * nothing is failed until a whole timeout has passed again, which gives every writer the full timeout of a
 * working database to go on.
 */
import type { Knex } from "knex";
import type { JobObserver } from "../jobs";
import type { Logger } from "pino";
import type { Config } from "../../config";
import { unavailableError } from "../../graphql/errors";
import { failStaleStreams } from "./stream.service";

export class StaleStreamSweeper {
  private timer: NodeJS.Timeout | undefined;
  /** No stream is failed before this time (ms): the database was away until recently. */
  private quietUntil = 0;
  /** The last sweep found the database away. */
  private down = false;

  constructor(
    private readonly knex: Knex,
    private readonly config: Pick<Config, "encryption" | "maxMessageLength" | "streamTimeoutSeconds">,
    private readonly log: Logger,
  ) {}

  /** Sweeps twice per timeout, at most every minute, until disposed. */
  start(): void {
    this.timer = setInterval(() => void this.sweep(), Math.min(60, this.config.streamTimeoutSeconds / 2) * 1000);
    this.timer.unref();
  }

  /** The database was away and is back: writers get a whole timeout from now. */
  databaseBack(): void {
    this.down = false;
    this.quietUntil = Date.now() + this.config.streamTimeoutSeconds * 1000;
  }

  /** Told of every sweep (metrics). */
  observe: JobObserver | undefined;

  /** One sweep; returns how many streams it failed. */
  async sweep(): Promise<number> {
    const started = performance.now();
    try {
      if (this.down) {
        await this.knex.raw("select 1"); // back? (the LISTEN connection may not have told yet)
        this.databaseBack();
      }
      if (Date.now() < this.quietUntil) return 0;
      const failed = await failStaleStreams(this.knex, this.config, this.config.streamTimeoutSeconds);
      this.observe?.("stale-stream-sweep", "ok", (performance.now() - started) / 1000);
      return failed;
    } catch (error) {
      this.down ||= !!unavailableError(error);
      this.log.warn({ err: error }, "stale stream sweep failed");
      this.observe?.("stale-stream-sweep", "failed", (performance.now() - started) / 1000);
      return 0;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}
