/** Dates and numbers as people read them, in the browser's locale and time zone. */

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** 14:03 today, "Dec 2" this year, the date otherwise. */
export function shortDate(iso: string, now = new Date()): string {
  const date = new Date(iso);
  if (date.toDateString() === now.toDateString()) return time.format(date);
  if (date.getFullYear() === now.getFullYear()) return day.format(date);
  return date.toLocaleDateString();
}

export function fullDate(iso: string): string {
  return full.format(new Date(iso));
}

export function usd(value: number | null | undefined): string {
  if (value == null) return "—";
  return `$${value < 0.01 && value > 0 ? value.toPrecision(2) : value.toFixed(4).replace(/0{1,2}$/, "")}`;
}

export function count(value: number | null | undefined): string {
  return value == null ? "—" : value.toLocaleString();
}

/** The first line of a text, cut to `max` characters (list previews). */
export function preview(text: string, max = 120): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** A requestId for an idempotent write. crypto.randomUUID needs a secure context; getRandomValues does not. */
export function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
