/**
 * Recently authenticated API keys, per process, so that a client's requests do not each look their key up
 * again (one statement per request less on every hot path, measured in bench/results). Safe because every
 * change that can invalidate a key's viewer (revocation, deactivation, a role change) commits a
 * `parley_access` notification: every process clears its cache when it hears one, and when its LISTEN
 * connection has been lost (notifications may have been missed); the process that made the change clears
 * its own at once. A change made behind Parley's back (SQL by hand) is seen after at most the TTL.
 */
import type { Viewer } from "../user/viewer";
import { LruMap } from "../../lru";

/** Keys remembered at most; the least recently used go first. */
const MAX_ENTRIES = 10_000;

export interface CachedKey {
  viewer: Viewer;
  /** When last_used_at was last written (epoch ms), to keep writing it at most once a minute. */
  lastUsedAt: number;
  expires: number;
}

export class ApiKeyCache {
  private readonly entries = new LruMap<string, CachedKey>(MAX_ENTRIES);

  constructor(private readonly ttlMs: number) {}

  get(hash: string, now = Date.now()): CachedKey | undefined {
    const entry = this.entries.get(hash);
    if (!entry || entry.expires > now) return entry;
    this.entries.delete(hash);
    return undefined;
  }

  set(hash: string, viewer: Viewer, lastUsedAt: number, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    this.entries.set(hash, { viewer, lastUsedAt, expires: now + this.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
