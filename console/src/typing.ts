/** Search boxes that ask the server as the user types. */
import { useEffect } from "preact/hooks";

/** Typing pauses this long before a search is sent, so a word typed is one request, not one per letter. */
const TYPING_PAUSE_MS = 250;

/**
 * Runs `search` once `text` (trimmed) has stopped changing for TYPING_PAUSE_MS, and at once when it is empty (a
 * cleared box lists everything again without a wait). `isLive` turns false as soon as a later text replaces this
 * one, so a late answer is dropped rather than drawn over the newer one's.
 */
export function useTypedSearch(text: string, search: (isLive: () => boolean) => unknown, deps: unknown[] = []): void {
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => void search(() => live), text ? TYPING_PAUSE_MS : 0);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text, ...deps]);
}
