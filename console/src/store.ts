/**
 * The smallest observable value that fits here: components read it with useStore and re-render when it is
 * set. State that outlives a page (the session, the list filters) lives in one of these, not in a component.
 */
import { useEffect, useState } from "preact/hooks";

export class Store<T> {
  private listeners = new Set<(value: T) => void>();

  constructor(private current: T) {}

  get value(): T {
    return this.current;
  }

  set(value: T): void {
    if (Object.is(value, this.current)) return;
    this.current = value;
    for (const listener of [...this.listeners]) listener(value);
  }

  subscribe(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function useStore<T>(store: Store<T>): T {
  const [value, setValue] = useState(store.value);
  useEffect(() => {
    setValue(store.value); // it may have changed between the render and this effect
    return store.subscribe(setValue);
  }, [store]);
  return value;
}
