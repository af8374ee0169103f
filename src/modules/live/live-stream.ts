/**
 * What every live subscription shares: how it ends with an error, how it rides out a database outage, and
 * the handle its transport uses to learn what the client has really received.
 *
 * While the database is away a stream's reads fail. A stream retries them (its position has not moved, so a
 * retry reads exactly what the failed read would have) for up to LIVE_RETRY_SECONDS, waking early when its
 * bell rings (an event or the LISTEN connection coming back both mean the database answers again). Past
 * that, it ends with SERVICE_UNAVAILABLE and `lastSeq`, the seq to resume after.
 *
 * An event can also fail after the stream yielded it: its fields (author, conversation, …) are resolved by
 * the transport's execution, which may meet the outage. The transport then must not send that event and go
 * on, which would leave a hole; it asks the handle (`LiveStream`, on the subscription's context) where the
 * client stands, sends the resume error instead, and stops the stream (see server/ws.ts).
 */
import type { ExecutionResult, FormattedExecutionResult, GraphQLError, GraphQLFormattedError } from "graphql";
import type { Actor } from "../actor";
import { ServiceUnavailableError, unavailableError } from "../../graphql/errors";
import type { Doorbell } from "./live.hub";

/**
 * How a stream ends with an error: the error is delivered as the stream's last event (the subscription's
 * field resolver throws it), then the stream completes, so the client gets the error as a result of its
 * own subscription rather than a closed socket.
 */
export class StreamError {
  constructor(readonly error: unknown) {}
}

/** What a subscription's field resolver returns for an event: the event, or the stream's final error thrown. */
export function eventOrThrow<T>(event: T | StreamError): T {
  if (event instanceof StreamError) throw event.error;
  return event;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 2_000;

/** A subscription's position and its way out, for the transport that sends its events. */
export class LiveStream {
  /** The seq the client has received through; null while unknown (a live-only stream before its first read). */
  private delivered: number | null;
  /** Where the event being sent would move `delivered` (a new message's seq; the same place for a delta). */
  pending: number | null;
  /** When the current run of failed reads began (ms); undefined while reads succeed. */
  private failingSince: number | undefined;
  private retryMs = FIRST_RETRY_MS;
  private stopper: (() => void) | undefined;

  /**
   * `reload`: for a stream that starts over rather than resuming after a seq (the inbox, alerts), how a client
   * reloads after subscribing again ("with alerts"); undefined for a conversation stream, which resumes with afterSeq.
   */
  constructor(
    position: number | null,
    private readonly retrySeconds: number,
    private readonly reload?: string,
  ) {
    this.delivered = this.pending = position;
  }

  /** The stream has read where it starts (a live-only stream: the conversation's last seq). */
  started(position: number): void {
    if (this.delivered === null) this.delivered = this.pending = position;
  }

  /** The event just sent reached the client whole. */
  confirm(): void {
    this.delivered = this.pending;
  }

  /** Ends the stream at once (it yields nothing more). */
  stop(): void {
    this.stopper?.();
  }

  /** The error that ends the stream because of `cause`, saying where to resume. */
  resumeError(cause: ServiceUnavailableError): ServiceUnavailableError {
    const { reason } = cause.extensions;
    if (this.reload) return new ServiceUnavailableError(`${cause.message}. Live delivery stopped: subscribe again, then reload ${this.reload}`, String(reason));
    const resume = this.delivered === null ? "subscribe again" : `subscribe again with afterSeq: ${this.delivered}`;
    return new ServiceUnavailableError(`${cause.message}. Live delivery stopped: ${resume}`, String(reason), { lastSeq: this.delivered });
  }

  /**
   * After a failed read: true once it is worth reading again (the database may be back), false when the
   * error is not an outage or the outage has outlasted LIVE_RETRY_SECONDS (the caller then ends the stream).
   */
  async retry(error: unknown, bell: Doorbell): Promise<boolean> {
    if (!unavailableError(error)) return false;
    const now = Date.now();
    this.failingSince ??= now;
    const left = this.failingSince + this.retrySeconds * 1000 - now;
    if (left <= 0) return false;
    const delay = Math.min(this.retryMs, left);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([bell.wait(), new Promise((resolve) => (timer = setTimeout(resolve, delay)))]);
    clearTimeout(timer);
    return !bell.closed;
  }

  /** A read succeeded: the next outage gets the whole retry budget again. */
  recovered(): void {
    this.failingSince = undefined;
    this.retryMs = FIRST_RETRY_MS;
  }

  /**
   * The iterator graphql-ws consumes. A generator waiting on its bell would take a return() only at its next
   * yield, so return() first wakes it (and stops watching) to end at once.
   */
  iterator<T>(events: AsyncGenerator<T>, bell: Doorbell, unwatch: () => void): AsyncIterableIterator<T> {
    const iterator: AsyncIterableIterator<T> = {
      next: () => events.next(),
      return: (value?: unknown) => {
        bell.close();
        unwatch();
        return events.return(value as never);
      },
      throw: (error?: unknown) => events.throw(error),
      [Symbol.asyncIterator]: () => iterator,
    };
    this.stopper = () => void iterator.return!();
    return iterator;
  }
}

/**
 * Creates a stream's handle and puts it on the subscription's context, where the transport finds it: one that
 * resumes after `position` (a seq; null: not known yet), or, with `reload`, one that starts over (see LiveStream).
 */
export function openLiveStream(ctx: Actor, start: { position: number | null } | { reload: string }): LiveStream {
  const stream = "reload" in start ? new LiveStream(null, ctx.config.liveRetrySeconds, start.reload) : new LiveStream(start.position, ctx.config.liveRetrySeconds);
  ctx.liveStream = stream;
  return stream;
}

/**
 * The error a failed event result should be replaced with, if it failed because the database was away (or
 * too slow): the stream's resume error, the stream stopped. Undefined otherwise (the result is sent as it is).
 */
function endForOutage(ctx: Actor | undefined, errors: readonly GraphQLError[]): ServiceUnavailableError | undefined {
  const stream = ctx?.liveStream;
  if (!stream) return undefined;
  for (const error of errors) {
    const cause = unavailableError(error.originalError ?? error);
    if (cause) {
      stream.stop();
      return stream.resumeError(cause);
    }
  }
  return undefined;
}

/**
 * A subscription's event result as it is sent, by every transport: its errors formatted, and the stream's
 * position confirmed. An event that failed because the database was away is not sent with a hole in it: the
 * stream stops and the result is its resume error instead.
 */
export function finishResult(
  ctx: Actor | undefined,
  result: ExecutionResult,
  format: (error: GraphQLError) => GraphQLFormattedError,
): FormattedExecutionResult {
  if (!result.errors) {
    ctx?.liveStream?.confirm();
    return result as FormattedExecutionResult;
  }
  const outage = endForOutage(ctx, result.errors);
  if (outage) return { errors: [format(outage)] };
  ctx?.liveStream?.confirm();
  return { ...result, errors: result.errors.map(format) };
}
