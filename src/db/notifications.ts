/**
 * PostgreSQL notifications between Parley processes. A write sends NOTIFY inside its transaction, so it is
 * delivered only if (and when) the write commits; every process holds one LISTEN connection and hands the
 * payloads to its local handlers. Payloads carry ids only: readers load rows through their own permissions.
 *
 * On PostgreSQL the LISTEN connection is a pg client of its own, outside knex's pool (a pooled connection
 * goes back to the pool and would lose its LISTEN). If it drops, it reconnects with backoff; notifications
 * sent meanwhile are gone, so reconnect handlers are told and re-check what they hold. On PGlite there is
 * one in-process instance: its listen() never drops.
 */
import type { Knex } from "knex";
import type { Logger } from "pino";
import pg from "pg";
import type { Database } from "./database";

/** Access changes (key revoked, user deactivated or re-roled, grant revoked): sockets close, streams re-check. */
export const ACCESS_CHANNEL = "parley_access";
/** Live data changes (a message added, a conversation deleted), for subscriptions; ids only, never content. */
export const EVENTS_CHANNEL = "parley_events";
const CHANNELS = [ACCESS_CHANNEL, EVENTS_CHANNEL] as const;
export type Channel = (typeof CHANNELS)[number];

/** application_name of the LISTEN connection, so operators (and tests) can find it in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = "parley-listener";
const RETRY_MIN_MS = 100;
/** Backoff cap between reconnects: after a long outage live delivery resumes within this of the database. */
const RETRY_MAX_MS = 2_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** Sends a notification; inside a transaction it is delivered when the transaction commits. */
export async function notify(knex: Knex | Knex.Transaction, channel: Channel, payload: Record<string, unknown>): Promise<void> {
  await knex.raw("select pg_notify(?, ?)", [channel, JSON.stringify(payload)]);
}

export type NotificationHandler = (payload: Record<string, unknown>) => void;

export interface NotificationListener {
  /** Calls `handler` with every payload on `channel`; returns the unsubscribe function. */
  on(channel: Channel, handler: NotificationHandler): () => void;
  /** Calls `handler` after the LISTEN connection was lost and is back (notifications may have been missed). */
  onReconnect(handler: () => void): () => void;
  dispose(): Promise<void>;
}

export async function createNotificationListener(db: Database, databaseUrl: string | undefined, log: Logger): Promise<NotificationListener> {
  const handlers = new Map<string, Set<NotificationHandler>>(CHANNELS.map((channel) => [channel, new Set()]));
  const reconnectHandlers = new Set<() => void>();

  const dispatch = (channel: string, raw: string | undefined) => {
    let payload: unknown;
    try {
      payload = JSON.parse(raw ?? "");
    } catch {
      log.warn({ channel }, "ignored a notification that is not JSON");
      return;
    }
    if (typeof payload !== "object" || payload === null) return;
    for (const handler of handlers.get(channel) ?? []) {
      try {
        handler(payload as Record<string, unknown>);
      } catch (error) {
        log.error({ err: error, channel }, "notification handler failed");
      }
    }
  };

  const stop = db.pglite ? await listenPglite(db, dispatch) : await listenPostgres(databaseUrl!, dispatch, reconnectHandlers, log);

  const subscribe = <T>(set: Set<T>, item: T) => {
    set.add(item);
    return () => void set.delete(item);
  };
  return {
    on: (channel, handler) => subscribe(handlers.get(channel)!, handler),
    onReconnect: (handler) => subscribe(reconnectHandlers, handler),
    dispose: stop,
  };
}

type Dispatch = (channel: string, payload: string | undefined) => void;

async function listenPglite(db: Database, dispatch: Dispatch): Promise<() => Promise<void>> {
  const unlisten = await Promise.all(CHANNELS.map((channel) => db.pglite!.listen(channel, (payload) => dispatch(channel, payload))));
  return async () => {
    // After the database is closed there is nothing left to unlisten.
    if (!db.pglite!.closed) await Promise.all(unlisten.map((stop) => stop()));
  };
}

async function listenPostgres(url: string, dispatch: Dispatch, reconnectHandlers: Set<() => void>, log: Logger) {
  let client: pg.Client | undefined;
  let stopped = false;
  let retryMs = RETRY_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({
      connectionString: url,
      application_name: LISTENER_APPLICATION_NAME,
      // A connect that gets no answer (a host gone from the network) fails instead of hanging the retries, and
      // TCP keepalives notice a connection that died without a word, which would otherwise wait forever.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    next.on("notification", (message) => dispatch(message.channel, message.payload));
    // 'error' comes with 'end' when the connection is lost; reconnecting on 'end' alone avoids doing it twice.
    next.on("error", (error) => log.warn({ err: error }, "notification connection error"));
    next.on("end", () => {
      if (client !== next || stopped) return;
      client = undefined;
      log.warn("notification connection lost; reconnecting");
      scheduleReconnect();
    });
    try {
      await next.connect();
      for (const channel of CHANNELS) await next.query(`listen ${channel}`);
    } catch (error) {
      next.removeAllListeners("end");
      await next.end().catch(() => undefined);
      throw error;
    }
    client = next;
  };

  const scheduleReconnect = () => {
    retryTimer = setTimeout(async () => {
      if (stopped) return;
      try {
        await connect();
      } catch (error) {
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        log.warn({ err: error, retryMs }, "notification connection failed; retrying");
        return scheduleReconnect();
      }
      if (stopped) return void (await client?.end().catch(() => undefined));
      retryMs = RETRY_MIN_MS;
      log.info("notification connection restored");
      for (const handler of reconnectHandlers) handler();
    }, retryMs);
  };

  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retryTimer);
    const last = client;
    client = undefined;
    await last?.end().catch(() => undefined);
  };
}
