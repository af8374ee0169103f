/**
 * Runs a task at most once per interval, coalescing the requests made meanwhile into the next run: a streamed
 * reply edits its Discord message with whatever arrived since the last edit, not once per chunk. A request
 * marked `now` (the reply is complete) runs as soon as the run in progress, if any, is done.
 */
export class CoalescingThrottle {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private urgent = false;
  private lastRun = Number.NEGATIVE_INFINITY;
  private idleWaiters: (() => void)[] = [];
  private disposed = false;

  /** `run` must not reject: it handles its own errors (and may request another run). */
  constructor(
    private readonly intervalMs: number,
    private readonly run: () => Promise<void>,
  ) {}

  request(now = false): void {
    if (this.disposed) return;
    this.pending = true;
    this.urgent ||= now;
    this.arm();
  }

  /** Resolves once nothing is pending or running. */
  idle(): Promise<void> {
    if (!this.pending && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels a pending run (a running one finishes); idle() waiters are released. */
  dispose(): void {
    this.disposed = true;
    this.pending = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.running) this.release();
  }

  private arm(): void {
    if (this.running || !this.pending) return;
    const wait = this.urgent ? 0 : Math.max(0, this.lastRun + this.intervalMs - Date.now());
    if (this.timer && wait > 0) return; // already due at the right time
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = undefined;
    this.pending = false;
    this.urgent = false;
    this.lastRun = Date.now();
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.pending && !this.disposed) this.arm();
      else this.release();
    });
  }

  private release(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
