/**
 * The stale-stream sweeper: fails STREAMING replies whose writer stopped sending chunks (failStaleStreams),
 * checked twice per STREAM_TIMEOUT_SECONDS, at most every minute.
 *
 * A writer cannot send chunks while the database is away, so an outage must not count against it: after the
 * database comes back (the LISTEN connection reconnected, or a sweep of this process failed because the
 * database was away), nothing is failed until a whole timeout has passed again, which gives every writer the
 * full timeout of a working database to go on.
 */
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { Config } from "../../config";
import { unavailableError } from "../../graphql/errors";
import { failStaleStreams } from "./stream.service";

export class StaleStreamSweeper {
  private readonly timer: NodeJS.Timeout;
  /** No stream is failed before this time (ms): the database was away until recently. */
  private quietUntil = 0;

  constructor(
    private readonly knex: Knex,
    private readonly config: Pick<Config, "encryption" | "maxMessageLength" | "streamTimeoutSeconds">,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.sweep(), Math.min(60, config.streamTimeoutSeconds / 2) * 1000);
    this.timer.unref();
  }

  private get timeoutMs(): number {
    return this.config.streamTimeoutSeconds * 1000;
  }

  /** The database was away and is back (or may be): writers get a whole timeout from now. */
  databaseBack(): void {
    this.quietUntil = Date.now() + this.timeoutMs;
  }

  /** One sweep; returns how many streams it failed. */
  async sweep(): Promise<number> {
    if (Date.now() < this.quietUntil) return 0;
    try {
      return await failStaleStreams(this.knex, this.config, this.config.streamTimeoutSeconds);
    } catch (error) {
      if (unavailableError(error)) this.databaseBack();
      this.log.warn({ err: error }, "stale stream sweep failed");
      return 0;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}
