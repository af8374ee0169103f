/**
 * The viewer's conversation changes (conversationsChanged), one subscription for the whole signed-in page:
 * the list and an open chat both listen here. After the stream fails (the database was away, say) it is
 * started again, and listeners are told to reload, since changes may have been missed meanwhile.
 */
import { subscribe } from "./client";
import { CONVERSATIONS_CHANGED, type ConversationSummary } from "./queries";

export interface ConversationChange {
  conversationId: string;
  deleted: boolean;
  conversation: ConversationSummary | null;
}

type Listener = { change(change: ConversationChange): void; resync?(): void };

const listeners = new Set<Listener>();

export function onConversationChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Runs while the signed-in page is shown; returns what stops it. */
export function startInbox(): () => void {
  let stop: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const start = (isRestart: boolean) => {
    stop = subscribe<{ conversationsChanged: ConversationChange }>(CONVERSATIONS_CHANGED, {}, {
      next: ({ conversationsChanged }) => {
        for (const listener of [...listeners]) listener.change(conversationsChanged);
      },
      error: (error) => {
        if (stopped || error.code === "UNAUTHENTICATED") return;
        timer = setTimeout(() => start(true), 2_000);
      },
    });
    if (isRestart) for (const listener of [...listeners]) listener.resync?.();
  };
  start(false);
  return () => {
    stopped = true;
    clearTimeout(timer);
    stop?.();
  };
}
