/**
 * History routing under /console (the server answers every route path with the page itself). Pages are
 * named here; the navigation in app.tsx lists the ones a role may open, so new sections slot in there.
 */
import type { AnchorHTMLAttributes, TargetedMouseEvent } from "preact";
import { Store } from "./store";

export const BASE = "/console";

export type Route =
  | { name: "conversations" }
  | { name: "conversation"; id: string }
  | { name: "usage" }
  | { name: "admin"; section: AdminSection }
  | { name: "not-found" };

export type AdminSection = "users" | "keys" | "grants" | "config" | "guilds" | "audit";
const ADMIN_SECTIONS: readonly AdminSection[] = ["users", "keys", "grants", "config", "guilds", "audit"];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseRoute(pathname: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length).replace(/\/+$/, "") : null;
  if (rest === null) return { name: "not-found" };
  if (rest === "" || rest === "/conversations") return { name: "conversations" };
  if (rest === "/usage") return { name: "usage" };
  if (rest === "/admin") return { name: "admin", section: "users" };
  const admin = /^\/admin\/([^/]+)$/.exec(rest);
  if (admin && (ADMIN_SECTIONS as readonly string[]).includes(admin[1])) return { name: "admin", section: admin[1] as AdminSection };
  const conversation = /^\/conversations\/([^/]+)$/.exec(rest);
  if (conversation && UUID.test(conversation[1])) return { name: "conversation", id: conversation[1].toLowerCase() };
  return { name: "not-found" };
}

export const paths = {
  conversations: () => `${BASE}/conversations`,
  conversation: (id: string) => `${BASE}/conversations/${id}`,
  usage: () => `${BASE}/usage`,
  admin: (section: AdminSection = "users") => `${BASE}/admin/${section}`,
};

export const location$ = new Store<string>(window.location.pathname);

window.addEventListener("popstate", () => location$.set(window.location.pathname));

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname) return;
  if (options.replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  location$.set(window.location.pathname);
}

type AnchorProps = AnchorHTMLAttributes<HTMLAnchorElement> & { href: string };

/** An <a> that navigates in the page; modified clicks (new tab, ...) are left to the browser. */
export function Link(props: AnchorProps) {
  const onClick = (event: TargetedMouseEvent<HTMLAnchorElement>) => {
    props.onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.href);
  };
  return <a {...props} onClick={onClick} />;
}
