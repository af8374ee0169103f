/**
 * Live events in one process. Writes send `NOTIFY parley_events` with ids only when they commit
 * (publish* below); this hub hears them on the process's one LISTEN connection and wakes the streams
 * watching that conversation. A woken stream reads what it has not delivered yet from the database with the
 * reader's own permissions, so a notification carries no data, and a missed or doubled one cannot lose or
 * repeat a message: the stream always continues after the last seq it delivered.
 *
 * A stream holds no queue: it reads the next rows only when its client has taken the previous ones, so a
 * slow client costs no memory, it only reads further back.
 */
import type { Knex } from "knex";
import { ACCESS_CHANNEL, EVENTS_CHANNEL, notify, type NotificationListener } from "../../db/notifications";

/** Payloads on parley_events. */
export type LiveEvent =
  | { t: "message"; c: string; s: number }
  | { t: "updated"; c: string; s: number; i?: number }
  | { t: "deleted"; c: string };

export function publishMessageAdded(trx: Knex.Transaction, conversationId: string, seq: number): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "message", c: conversationId, s: seq });
}

/** A message changed: a chunk `i` appended, or it was completed or failed. */
export function publishMessageUpdated(trx: Knex.Transaction, conversationId: string, seq: number, chunk?: number): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "updated", c: conversationId, s: seq, ...(chunk === undefined ? {} : { i: chunk }) });
}

export function publishConversationDeleted(trx: Knex.Transaction, conversationId: string): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "deleted", c: conversationId });
}

/**
 * A stream's doorbell. `clear()` before reading, then `wait()`: a ring that came while reading makes
 * wait() return at once, so nothing committed during a read is slept through.
 */
export class Doorbell {
  private rung = false;
  private waiter: (() => void) | undefined;
  /** Set when something may have changed who can read the conversation. */
  recheck = false;
  closed = false;

  ring(recheck = false): void {
    this.rung = true;
    this.recheck ||= recheck;
    this.waiter?.();
  }

  close(): void {
    this.closed = true;
    this.ring();
  }

  clear(): void {
    this.rung = false;
  }

  wait(): Promise<void> {
    if (this.rung || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = () => {
        this.waiter = undefined;
        resolve();
      };
    });
  }
}

export class LiveHub {
  private readonly watchers = new Map<string, Set<Doorbell>>();
  private readonly stops: (() => void)[];

  constructor(listener: NotificationListener) {
    this.stops = [
      listener.on(EVENTS_CHANNEL, (event) => {
        const { t, c } = event as LiveEvent;
        if (typeof c === "string") for (const bell of this.watchers.get(c) ?? []) bell.ring(t === "deleted");
      }),
      // Grants revoked, users deactivated: rare, so every stream re-checks rather than working out whose.
      listener.on(ACCESS_CHANNEL, () => this.ringAll(true)),
      // Notifications may have been missed while the LISTEN connection was down: everyone reads and re-checks.
      listener.onReconnect(() => this.ringAll(true)),
    ];
  }

  /** Rings `bell` on every event of the conversation until the returned function is called. */
  watch(conversationId: string, bell: Doorbell): () => void {
    let set = this.watchers.get(conversationId);
    if (!set) this.watchers.set(conversationId, (set = new Set()));
    set.add(bell);
    return () => {
      set.delete(bell);
      if (set.size === 0 && this.watchers.get(conversationId) === set) this.watchers.delete(conversationId);
    };
  }

  /** Streams open in this process (for metrics and tests). */
  get size(): number {
    let count = 0;
    for (const set of this.watchers.values()) count += set.size;
    return count;
  }

  private ringAll(recheck: boolean): void {
    for (const set of this.watchers.values()) for (const bell of set) bell.ring(recheck);
  }

  dispose(): void {
    for (const stop of this.stops) stop();
    for (const set of this.watchers.values()) for (const bell of set) bell.close();
    this.watchers.clear();
  }
}
