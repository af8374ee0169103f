/**
 * Live events in one process. Writes send `NOTIFY parley_events` with ids only when they commit
 * (publish* below); this hub hears them on the process's one LISTEN connection and wakes the streams
 * watching that conversation. A woken stream reads what it has not delivered yet from the database with the
 * reader's own permissions, so a notification carries no data, and a missed or doubled one cannot lose or
 * repeat a message: the stream always continues after the last seq it delivered.
 *
 * A stream holds no queue: it reads the next rows only when its client has taken the previous ones, so a
 * slow client costs no memory, it only reads further back.
 *
 * Reads are shared: the streams of one conversation woken by the same event ask for the same rows (after the
 * same seq), so `shared()` runs each distinct read once and hands every stream the same result, until the
 * conversation's next event drops it. One message to N subscribers is then one query, not N.
 */
import type { Knex } from "knex";
import { ACCESS_CHANNEL, EVENTS_CHANNEL, notify, type NotificationListener } from "../../db/notifications";

/**
 * Payloads on parley_events; `o` (the owner) routes the event to inbox streams too. An alert names its id `a`
 * and `u`, the user it concerns (null: nobody's, only admins see it).
 */
export type LiveEvent =
  | { t: "message"; c: string; s: number; o: string }
  | { t: "updated"; c: string; s: number; i?: number }
  | { t: "conversation"; c: string; o: string }
  | { t: "deleted"; c: string; o: string }
  | { t: "alert"; a: string; u: string | null };

export function publishMessageAdded(trx: Knex.Transaction, conversationId: string, seq: number, ownerId: string): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "message", c: conversationId, s: seq, o: ownerId });
}

/**
 * publishMessageAdded as a SQL expression, for a write that is one statement: `row` names a relation with the
 * new message's conversation_id and seq, `conversation` one with its owner_id.
 */
export function messageAddedSql(row: string, conversation: string): string {
  return `pg_notify('${EVENTS_CHANNEL}', json_build_object('t', 'message', 'c', ${row}.conversation_id, 's', ${row}.seq, 'o', ${conversation}.owner_id)::text)`;
}

/** An alert was raised; inside a transaction it is announced when the transaction commits. */
export function publishAlertRaised(knex: Knex | Knex.Transaction, alertId: string, userId: string | null): Promise<void> {
  return notify(knex, EVENTS_CHANNEL, { t: "alert", a: alertId, u: userId } satisfies LiveEvent);
}

/**
 * publishAlertRaised as a SQL expression, for a statement that inserts alerts: `row` names a relation with
 * the new system_alerts row's id and user_id (e.g. the insert's alias in its RETURNING).
 */
export function alertRaisedSql(row: string): string {
  return `pg_notify('${EVENTS_CHANNEL}', json_build_object('t', 'alert', 'a', ${row}.id, 'u', ${row}.user_id)::text)`;
}

/** A conversation was created, renamed, re-parametrised or archived. */
export function publishConversationChanged(knex: Knex, conversationId: string, ownerId: string): Promise<void> {
  return notify(knex, EVENTS_CHANNEL, { t: "conversation", c: conversationId, o: ownerId });
}

/** A message changed: a chunk `i` appended, or it was completed or failed. */
export function publishMessageUpdated(trx: Knex.Transaction, conversationId: string, seq: number, chunk?: number): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "updated", c: conversationId, s: seq, ...(chunk === undefined ? {} : { i: chunk }) });
}

export function publishConversationDeleted(trx: Knex.Transaction, conversationId: string, ownerId: string): Promise<void> {
  return notify(trx, EVENTS_CHANNEL, { t: "deleted", c: conversationId, o: ownerId });
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

/** An inbox stream's doorbell: which of the owner's conversations changed (or went) since it last read. */
export class InboxBell extends Doorbell {
  changed = new Map<string, boolean>(); // conversation id → deleted

  note(conversationId: string, deleted: boolean): void {
    this.changed.set(conversationId, deleted || (this.changed.get(conversationId) ?? false));
    this.ring();
  }
}

/** The key of the alert streams that see every alert (admins'). */
export const ALL_ALERTS = Symbol("all alerts");

/** An alert stream's doorbell: the alerts raised since it last read. */
export class AlertBell extends Doorbell {
  raised = new Set<string>();

  note(alertId: string): void {
    this.raised.add(alertId);
    this.ring();
  }
}

export class LiveHub {
  private readonly watchers = new Map<string, Set<Doorbell>>();
  /** Per watched conversation: reads (by key) made since its last event, each a promise of its rows. */
  private readonly reads = new Map<string, Map<string, Promise<unknown>>>();
  /** Per watched conversation: when its last event was heard (performance.now()), for the delivery-lag metric. */
  private readonly heard = new Map<string, number>();
  private readonly inboxes = new Map<string, Set<InboxBell>>();
  /** Alert streams by the user whose alerts they show; ALL_ALERTS: admins', which show every alert. */
  private readonly alerts = new Map<string | typeof ALL_ALERTS, Set<AlertBell>>();
  private readonly stops: (() => void)[];

  constructor(listener: NotificationListener) {
    this.stops = [
      listener.on(EVENTS_CHANNEL, (event) => {
        const { t, c, o, a, u } = event as Partial<{ t: string; c: string; o: string; a: string; u: string | null }>;
        if (t === "alert" && typeof a === "string") {
          for (const bell of this.alerts.get(ALL_ALERTS) ?? []) bell.note(a);
          if (typeof u === "string") for (const bell of this.alerts.get(u) ?? []) bell.note(a);
          return;
        }
        if (typeof c !== "string") return;
        this.reads.delete(c); // before ringing: every stream woken by this event reads afresh
        if (this.watchers.has(c)) this.heard.set(c, performance.now());
        for (const bell of this.watchers.get(c) ?? []) bell.ring(t === "deleted");
        if (typeof o === "string") for (const bell of this.inboxes.get(o) ?? []) bell.note(c, t === "deleted");
      }),
      // Grants revoked, users deactivated: rare, so every conversation stream re-checks rather than working out
      // whose. Inbox streams show only the viewer's own conversations, which no grant change affects.
      listener.on(ACCESS_CHANNEL, () => {
        this.reads.clear();
        for (const set of this.watchers.values()) for (const bell of set) bell.ring(true);
      }),
      // Notifications may have been missed while the LISTEN connection was down: everyone reads and re-checks.
      listener.onReconnect(() => this.ringAll(true)),
    ];
  }

  /** Rings `bell` on every event of the conversation until the returned function is called. */
  watch(conversationId: string, bell: Doorbell): () => void {
    const leave = join(this.watchers, conversationId, bell);
    return () => {
      leave();
      if (!this.watchers.has(conversationId)) {
        this.reads.delete(conversationId);
        this.heard.delete(conversationId);
      }
    };
  }

  /**
   * `read()`, or the promise of the same read (same conversation and key) made since the conversation's last
   * event. Only for reads whose result depends on nothing but the key (not on the viewer): access is checked
   * per stream, before it reads. A caller must not change what it gets: other streams hold the same objects.
   */
  shared<T>(conversationId: string, key: string, read: () => Promise<T>): Promise<T> {
    if (!this.watchers.has(conversationId)) return read();
    let reads = this.reads.get(conversationId);
    if (!reads) this.reads.set(conversationId, (reads = new Map()));
    const known = reads.get(key) as Promise<T> | undefined;
    if (known) return known;
    const promise = read();
    reads.set(key, promise);
    promise.catch(() => {
      if (reads.get(key) === promise) reads.delete(key); // a failed read is not handed to anyone else
    });
    return promise;
  }

  /** When the conversation's last event was heard (performance.now()), while it is watched. */
  heardAt(conversationId: string): number | undefined {
    return this.heard.get(conversationId);
  }

  /** Tells `bell` of every change to the conversations `ownerId` owns until the returned function is called. */
  watchInbox(ownerId: string, bell: InboxBell): () => void {
    return join(this.inboxes, ownerId, bell);
  }

  /**
   * Tells `bell` of every alert raised about `userId` (ALL_ALERTS: every alert, for admins) until the returned
   * function is called. Who may see which alert is decided here, before any read: the stream then reads the
   * ids it is told of, and nothing else.
   */
  watchAlerts(userId: string | typeof ALL_ALERTS, bell: AlertBell): () => void {
    return join(this.alerts, userId, bell);
  }

  /** Streams open in this process (for metrics and tests). */
  get size(): number {
    return [...this.bells()].length;
  }

  private *bells(): Iterable<Doorbell> {
    for (const map of [this.watchers, this.inboxes, this.alerts]) for (const set of map.values()) yield* set;
  }

  private ringAll(recheck: boolean): void {
    this.reads.clear();
    for (const bell of this.bells()) bell.ring(recheck);
  }

  dispose(): void {
    for (const stop of this.stops) stop();
    for (const bell of this.bells()) bell.close();
    this.watchers.clear();
    this.reads.clear();
    this.heard.clear();
    this.inboxes.clear();
    this.alerts.clear();
  }
}

function join<K, B>(map: Map<K, Set<B>>, key: K, bell: B): () => void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(bell);
  return () => {
    set.delete(bell);
    if (set.size === 0 && map.get(key) === set) map.delete(key);
  };
}
