/**
 * The page: the sign-in form until a token works, then the shell (top bar, sections) around the page the
 * route names. Sections are listed in NAV with the roles that may open them (Admin: admins only; its pages
 * say "Admins only" to anyone else who types their address).
 */
import { useEffect } from "preact/hooks";
import { liveStatus } from "./client";
import { startInbox } from "./inbox";
import { AdminPage } from "./pages/admin";
import { ConversationsPage } from "./pages/conversations";
import { SignInPage } from "./pages/sign-in";
import { UsagePage } from "./pages/usage";
import { Link, location$, navigate, parseRoute, paths, type Route } from "./router";
import { restoreSession, session, signOut, type Role, type Viewer } from "./session";
import { useStore } from "./store";

interface NavItem {
  label: string;
  href: string;
  roles: readonly Role[];
  active(route: Route): boolean;
}

const NAV: readonly NavItem[] = [
  {
    label: "Conversations",
    href: paths.conversations(),
    roles: ["ADMIN", "MEMBER", "SERVICE"],
    active: (route) => route.name === "conversations" || route.name === "conversation",
  },
  {
    label: "Usage",
    href: paths.usage(),
    roles: ["ADMIN", "MEMBER", "SERVICE"],
    active: (route) => route.name === "usage",
  },
  {
    label: "Admin",
    href: paths.admin(),
    roles: ["ADMIN"],
    active: (route) => route.name === "admin",
  },
];

export function App() {
  const current = useStore(session);
  useEffect(() => {
    void restoreSession();
  }, []);
  switch (current.status) {
    case "checking":
      return <div class="splash" role="status">Checking your session…</div>;
    case "unreachable":
      return (
        <div class="splash">
          <div class="card">
            <h1>Parley is not answering</h1>
            <p class="error" role="alert">{current.message}</p>
            <div class="row">
              <button class="button" type="button" onClick={() => void restoreSession()}>Try again</button>
              <button class="button subtle" type="button" onClick={() => signOut()}>Sign out</button>
            </div>
          </div>
        </div>
      );
    case "signed-out":
      return <SignInPage notice={current.notice} />;
    case "signed-in":
      return <Shell viewer={current.viewer} />;
  }
}

function Shell({ viewer }: { viewer: Viewer }) {
  const pathname = useStore(location$);
  const route = parseRoute(pathname);
  useEffect(() => startInbox(), []);
  useEffect(() => {
    // /console and /console/ show the first section, under its own address.
    if (pathname === "/console" || pathname === "/console/") navigate(paths.conversations(), { replace: true });
  }, [pathname]);
  useEffect(() => {
    if (route.name === "not-found") document.title = "Not found · Parley Console";
  }, [route.name]);

  return (
    <div class="app">
      <a class="skip-link" href="#main" onClick={skipToContent}>
        Skip to content
      </a>
      <header class="topbar">
        <Link class="brand" href={paths.conversations()}>
          Parley <span class="brand-sub">Console</span>
        </Link>
        <nav class="nav" aria-label="Sections">
          {NAV.filter((item) => item.roles.includes(viewer.role)).map((item) => (
            <Link key={item.href} href={item.href} class={item.active(route) ? "nav-item active" : "nav-item"} aria-current={item.active(route) ? "page" : undefined}>
              {item.label}
            </Link>
          ))}
        </nav>
        <LiveIndicator />
        <div class="whoami" title={`Signed in as ${viewer.displayName} (${viewer.role.toLowerCase()})`}>
          <span class="whoami-name" data-testid="viewer-name">{viewer.displayName}</span>
          <span class="badge" data-testid="viewer-role">{viewer.role.toLowerCase()}</span>
        </div>
        <button class="button subtle" type="button" onClick={() => signOut()}>Sign out</button>
      </header>
      <main class="main" id="main" tabIndex={-1}>
        {route.name === "not-found" ? (
          <div class="page-message">
            <h1>Page not found</h1>
            <p>
              <Link href={paths.conversations()}>Go to your conversations</Link>
            </p>
          </div>
        ) : route.name === "usage" ? (
          <UsagePage viewer={viewer} />
        ) : route.name === "admin" ? (
          <AdminPage section={route.section} viewer={viewer} />
        ) : (
          <ConversationsPage route={route} viewer={viewer} />
        )}
      </main>
    </div>
  );
}

/** Focuses the page's content rather than following #main, which would add a history entry that Back merely undoes. */
function skipToContent(event: Event) {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

function LiveIndicator() {
  const status = useStore(liveStatus);
  const label = { idle: "Live updates idle", connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…" }[status];
  return (
    <span class={`live live-${status}`} role="status" title={label} data-testid="live-status" data-status={status}>
      <span class="live-dot" aria-hidden="true" />
      <span class="live-label">{label}</span>
    </span>
  );
}
