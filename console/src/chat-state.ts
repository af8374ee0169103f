/**
 * The messages a chat view holds, by seq, and how live events change them. Objects are replaced, never
 * mutated, so a message whose object is unchanged need not be drawn again.
 *
 * Events may repeat (a reconnected subscription replays from where it first started), so merging is
 * idempotent: a STREAMING message is replaced by any copy that knows as many chunks or has ended; an ended
 * message only by another ended copy. A delta applies when its index is the next chunk, is ignored when
 * already held, and asks for the message to be read again when chunks were missed.
 */
import type { ChatMessage } from "./queries";

export class MessageList {
  private bySeq = new Map<number, ChatMessage>();
  private ordered: ChatMessage[] | undefined = [];

  get messages(): ChatMessage[] {
    this.ordered ??= [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.ordered;
  }

  get size(): number {
    return this.bySeq.size;
  }

  /** The highest seq held; 0 when none. */
  get lastSeq(): number {
    let last = 0;
    for (const seq of this.bySeq.keys()) last = Math.max(last, seq);
    return last;
  }

  get streamingSeqs(): number[] {
    return this.messages.filter((m) => m.status === "STREAMING").map((m) => m.seq);
  }

  has(seq: number): boolean {
    return this.bySeq.has(seq);
  }

  /** Returns whether anything changed. */
  upsert(message: ChatMessage): boolean {
    const held = this.bySeq.get(message.seq);
    if (held) {
      const newer =
        held.status === "STREAMING"
          ? message.status !== "STREAMING" || message.chunkCount > held.chunkCount
          : message.status !== "STREAMING" && (message.content !== held.content || message.status !== held.status);
      if (!newer) return false;
    }
    this.bySeq.set(message.seq, message);
    this.ordered = undefined;
    return true;
  }

  upsertAll(messages: ChatMessage[]): boolean {
    let changed = false;
    for (const message of messages) changed = this.upsert(message) || changed;
    return changed;
  }

  /** "applied", "held" (nothing to do), or "missing" (read the message again). */
  applyDelta(delta: { seq: number; index: number; text: string }): "applied" | "held" | "missing" {
    const held = this.bySeq.get(delta.seq);
    if (!held) return "missing";
    if (held.status !== "STREAMING" || delta.index < held.chunkCount) return "held";
    if (delta.index > held.chunkCount) return "missing";
    this.bySeq.set(delta.seq, { ...held, content: held.content + delta.text, chunkCount: held.chunkCount + 1 });
    this.ordered = undefined;
    return "applied";
  }
}
