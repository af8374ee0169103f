/**
 * Admin pages (admins only: the navigation shows them to admins, and anyone else who types the address is
 * told so without a request being sent). Users (role, deactivate and reactivate), API keys (create, the
 * secret shown once with a copy button, revoke), service grants (to a service picked by name), system and
 * guild settings as JSON checked before it is sent, and the audit log with filters (the actor picked by name).
 * People are shown by name, with their email when they have one. The tables are DataTables: cards on a phone.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { describeError } from "../api";
import { gql } from "../client";
import { DataTable } from "../components/data-table";
import { UserPicker } from "../components/user-picker";
import { fullDate } from "../format";
import { useTypedSearch } from "../typing";
import {
  API_KEYS,
  AUDIT_LOGS,
  GRANT_SERVICE,
  GUILD_CONFIG,
  REVOKE_SERVICE_GRANT,
  SERVICE_GRANTS,
  SET_GUILD_CONFIG,
  type AuditRow,
  type GuildConfigRow,
  type ServiceGrantRow,
  CREATE_API_KEY,
  DEACTIVATE_USER,
  REACTIVATE_USER,
  REVOKE_API_KEY,
  SET_SYSTEM_CONFIG,
  SET_USER_ROLE,
  SYSTEM_CONFIGS,
  USERS,
  type ApiKeyRow,
  type Connection,
  type PersonRef,
  type SystemConfigRow,
  type UserRow,
} from "../queries";
import { Link, paths, type AdminSection } from "../router";
import type { Role, Viewer } from "../session";

const SECTIONS: { name: AdminSection; label: string }[] = [
  { name: "users", label: "Users" },
  { name: "keys", label: "API keys" },
  { name: "grants", label: "Service grants" },
  { name: "config", label: "System settings" },
  { name: "guilds", label: "Guild settings" },
  { name: "audit", label: "Audit log" },
];

export function AdminPage({ section, viewer }: { section: AdminSection; viewer: Viewer }) {
  useEffect(() => {
    document.title = `Admin · Parley Console`;
  }, []);
  if (viewer.role !== "ADMIN") {
    return (
      <div class="page-message" data-testid="admins-only">
        <h1>Admins only</h1>
        <p>The admin pages are for Parley's administrators. You are signed in as a {viewer.role.toLowerCase()}.</p>
        <p>
          <Link href={paths.conversations()}>Go to your conversations</Link>
        </p>
      </div>
    );
  }
  return (
    <div class="page" data-testid="admin-page">
      <header class="page-head">
        <h1>Admin</h1>
        <nav class="tabs" aria-label="Admin sections">
          {SECTIONS.map((item) => (
            <Link key={item.name} href={paths.admin(item.name)} class={item.name === section ? "tab active" : "tab"} aria-current={item.name === section ? "page" : undefined}>
              {item.label}
            </Link>
          ))}
        </nav>
      </header>
      {section === "users" && <UsersSection viewer={viewer} />}
      {section === "keys" && <KeysSection viewer={viewer} />}
      {section === "grants" && <GrantsSection />}
      {section === "config" && <ConfigSection />}
      {section === "guilds" && <GuildSection />}
      {section === "audit" && <AuditSection />}
    </div>
  );
}

const ROLES: Role[] = ["ADMIN", "MEMBER", "SERVICE"];

function UsersSection({ viewer }: { viewer: Viewer }) {
  const [users, setUsers] = useState<UserRow[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [error, attempt] = useAttempt();
  const text = search.trim();
  /** A page of `text`'s matches; `isLive` says whether the search is still the one typed (a later one replaces it). */
  const load = async (after: string | null, isLive = () => true) => {
    await attempt(async () => {
      const filter = text ? { search: text } : {};
      const { users: page } = await gql<{ users: Connection<UserRow> }>(USERS, { first: 50, after, filter });
      if (!isLive()) return;
      setUsers((current) => [...(after ? current : []), ...page.edges.map((edge) => edge.node)]);
      setNext(page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null);
    });
  };
  useTypedSearch(text, (isLive) => load(null, isLive));

  const change = async (query: string, variables: Record<string, unknown>) => {
    await attempt(async () => {
      const data = await gql<Record<string, UserRow>>(query, variables);
      const updated = Object.values(data)[0];
      setUsers((current) => current.map((user) => (user.id === updated.id ? updated : user)));
    });
  };

  return (
    <section aria-label="Users">
      <input class="input section-search" type="search" aria-label="Search users" placeholder="Search by name or email" value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      {error && <p class="error" role="alert">{error}</p>}
      {text && !users.length && !error && <p class="empty">No user's name or email holds “{text}”.</p>}
      <DataTable
        testId="users-table"
        rows={users}
        rowKey={(user) => user.id}
        rowData={(user) => ({ "data-user-id": user.id })}
        columns={[
          { label: "Name", cell: (user) => <PersonName person={user} /> },
          {
            label: "Role",
            cell: (user) => (
              <select
                class="input"
                aria-label={`Role of ${user.displayName}`}
                value={user.role}
                disabled={user.id === viewer.id}
                onChange={(event) => void change(SET_USER_ROLE, { id: user.id, role: event.currentTarget.value })}
              >
                {ROLES.map((role) => (
                  <option key={role} value={role}>{role.toLowerCase()}</option>
                ))}
              </select>
            ),
          },
          { label: "Status", cell: (user) => (user.isActive ? <span class="badge">active</span> : <span class="badge danger">deactivated</span>) },
          {
            label: "Actions",
            actions: true,
            cell: (user) =>
              user.id !== viewer.id &&
              (user.isActive ? (
                <button class="button small subtle" type="button" onClick={() => void change(DEACTIVATE_USER, { id: user.id })}>Deactivate</button>
              ) : (
                <button class="button small subtle" type="button" onClick={() => void change(REACTIVATE_USER, { id: user.id })}>Reactivate</button>
              )),
          },
        ]}
      />
      {next && (
        <button class="button subtle" type="button" onClick={() => void load(next)}>More users</button>
      )}
    </section>
  );
}

function KeysSection({ viewer }: { viewer: Viewer }) {
  const [keys, setKeys] = useState<ApiKeyRow[]>([]);
  const [name, setName] = useState("");
  const [role, setRole] = useState("");
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, attempt, setError] = useAttempt();
  const [busy, setBusy] = useState(false);

  const load = async () => {
    await attempt(async () => {
      setKeys((await gql<{ apiKeys: ApiKeyRow[] }>(API_KEYS, {})).apiKeys);
    });
  };
  useEffect(() => void load(), []);

  const create = async () => {
    if (!name.trim() || busy) return;
    setBusy(true);
    setCopied(false);
    await attempt(async () => {
      const { createApiKey } = await gql<{ createApiKey: ApiKeyRow & { key: string } }>(CREATE_API_KEY, { name: name.trim(), role: role || null });
      const { key, ...row } = createApiKey;
      setCreated({ name: row.name, key });
      setKeys((current) => [row, ...current]);
      setName("");
    });
    setBusy(false); // attempt never throws: it shows the failure
  };

  const revoke = async (key: ApiKeyRow) => {
    if (!window.confirm(`Revoke the key "${key.name}"? Whatever uses it stops working at once.`)) return;
    await attempt(async () => {
      const { revokeApiKey } = await gql<{ revokeApiKey: ApiKeyRow }>(REVOKE_API_KEY, { id: key.id });
      setKeys((current) => current.map((row) => (row.id === key.id ? revokeApiKey : row)));
    });
  };

  const copy = async () => {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied(true);
    } catch {
      setError("The browser did not allow copying: select the key and copy it by hand.");
    }
  };

  return (
    <section aria-label="API keys">
      <p class="subtle">Your keys ({viewer.displayName}). A key works as you, or with a lower role when one is chosen.</p>
      <InlineForm onSubmit={() => create()}>
        <label class="field">
          <span>Name</span>
          <input class="input" value={name} maxLength={100} onInput={(event) => setName(event.currentTarget.value)} />
        </label>
        <label class="field">
          <span>Role</span>
          <select class="input" aria-label="Role" value={role} onChange={(event) => setRole(event.currentTarget.value)}>
            <option value="">as me</option>
            <option value="MEMBER">member</option>
            <option value="SERVICE">service</option>
          </select>
        </label>
        <button class="button primary" type="submit" disabled={busy || !name.trim()}>Create key</button>
      </InlineForm>
      {error && <p class="error" role="alert">{error}</p>}
      {created && (
        <div class="notice secret" data-testid="new-key">
          <p>
            The key <strong>{created.name}</strong>. Copy it now: it is not shown again.
          </p>
          <div class="row">
            <code class="secret-value" data-testid="new-key-secret">{created.key}</code>
            <button class="button small" type="button" onClick={() => void copy()}>{copied ? "Copied" : "Copy"}</button>
            <button class="button small subtle" type="button" onClick={() => setCreated(null)}>Done</button>
          </div>
        </div>
      )}
      <DataTable
        testId="keys-table"
        rows={keys}
        rowKey={(key) => key.id}
        rowData={(key) => ({ "data-key-id": key.id, "data-key-name": key.name })}
        columns={[
          { label: "Name", cell: (key) => key.name },
          { label: "Prefix", cell: (key) => <code>{key.prefix}…</code> },
          { label: "Role", cell: (key) => key.role?.toLowerCase() ?? "as owner" },
          { label: "Created", cell: (key) => fullDate(key.createdAt) },
          { label: "Last used", cell: (key) => (key.lastUsedAt ? fullDate(key.lastUsedAt) : "never") },
          {
            label: "Actions",
            actions: true,
            cell: (key) =>
              key.revokedAt ? (
                <span class="badge danger">revoked</span>
              ) : (
                <button class="button small subtle" type="button" onClick={() => void revoke(key)}>Revoke</button>
              ),
          },
        ]}
      />
    </section>
  );
}

/** Parses an editor's text; the error says where, as the browser's JSON.parse reports it. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: `Not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function ConfigSection() {
  const [configs, setConfigs] = useState<SystemConfigRow[] | null>(null);
  const [error, attempt] = useAttempt();
  const [newKey, setNewKey] = useState("");
  useEffect(() => {
    void attempt(async () => setConfigs((await gql<{ systemConfigs: SystemConfigRow[] }>(SYSTEM_CONFIGS)).systemConfigs));
  }, []);
  const saveConfig = (key: string) => async (value: unknown) => {
    const { setSystemConfig } = await gql<{ setSystemConfig: SystemConfigRow }>(SET_SYSTEM_CONFIG, { key, value });
    setConfigs((current) => [...(current ?? []).filter((row) => row.key !== key), setSystemConfig]);
    return setSystemConfig.updatedAt;
  };
  const key = newKey.trim();
  return (
    <section aria-label="System settings">
      {error && <p class="error" role="alert">{error}</p>}
      {configs?.map((config) => (
        <JsonEditor key={config.key} name={config.key} description={config.description} initial={config.value} save={saveConfig(config.key)} />
      ))}
      <div class="json-editor new-setting">
        <label class="field">
          <span>New setting's key</span>
          <input class="input" value={newKey} onInput={(event) => setNewKey(event.currentTarget.value)} data-testid="new-setting-key" />
        </label>
        {key && !configs?.some((config) => config.key === key) && <JsonEditor key={key} name={key} initial={{}} save={saveConfig(key)} />}
      </div>
    </section>
  );
}

function GuildSection() {
  const [guildId, setGuildId] = useState("");
  const [loaded, setLoaded] = useState<{ guildId: string; settings: unknown } | null>(null);
  const [error, attempt] = useAttempt();
  const load = async () => {
    const id = guildId.trim();
    if (!id) return;
    await attempt(async () => {
      const { guildConfig } = await gql<{ guildConfig: GuildConfigRow | null }>(GUILD_CONFIG, { guildId: id });
      setLoaded({ guildId: id, settings: guildConfig?.settings ?? {} });
    });
  };
  return (
    <section aria-label="Guild settings">
      <InlineForm onSubmit={() => load()}>
        <label class="field">
          <span>Discord guild id</span>
          <input class="input" value={guildId} inputMode="numeric" onInput={(event) => setGuildId(event.currentTarget.value)} />
        </label>
        <button class="button" type="submit" disabled={!guildId.trim()}>Open</button>
      </InlineForm>
      {error && <p class="error" role="alert">{error}</p>}
      {loaded && (
        <JsonEditor
          key={loaded.guildId}
          name={`Guild ${loaded.guildId}`}
          description="model, systemPrompt, rag { enabled topK }, allowedChannels, answerCache { enabled ttlSeconds }, language; each optional"
          initial={loaded.settings}
          save={async (settings) => {
            const { setGuildConfig } = await gql<{ setGuildConfig: GuildConfigRow }>(SET_GUILD_CONFIG, { guildId: loaded.guildId, settings });
            return setGuildConfig.updatedAt;
          }}
        />
      )}
    </section>
  );
}

/** A JSON value in a textarea: parse errors are shown as you type and nothing is sent; the server's refusal below. */
function JsonEditor({ name, description, initial, save }: { name: string; description?: string | null; initial: unknown; save(value: unknown): Promise<string> }) {
  const [text, setText] = useState(JSON.stringify(initial, null, 2));
  const [saved, setSaved] = useState<string | null>(null);
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const parsed = parseJson(text);
  const id = `json-${name.replace(/\W+/g, "-")}`;

  const submit = async () => {
    if (!parsed.ok || busy) return;
    setBusy(true);
    setServerError(null);
    setSaved(null);
    try {
      setSaved(`Saved ${fullDate(await save(parsed.value))}.`);
    } catch (failure) {
      setServerError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="json-editor"
      data-testid={`config-editor-${name}`}
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <label class="field-label" for={id}>
        {name}
      </label>
      {description && <p class="subtle">{description}</p>}
      <textarea
        id={id}
        class="input code"
        rows={Math.min(16, Math.max(3, text.split("\n").length))}
        spellcheck={false}
        value={text}
        aria-invalid={!parsed.ok}
        onInput={(event) => {
          setText(event.currentTarget.value);
          setSaved(null);
          setServerError(null);
        }}
      />
      {!parsed.ok && <p class="error" role="alert" data-testid="json-error">{parsed.message}</p>}
      {serverError && <p class="error" role="alert" data-testid="server-error">{serverError}</p>}
      {saved && <p class="subtle" role="status">{saved}</p>}
      <button class="button small primary" type="submit" disabled={!parsed.ok || busy}>{busy ? "Saving…" : "Save"}</button>
    </form>
  );
}

function GrantsSection() {
  const [grants, setGrants] = useState<ServiceGrantRow[]>([]);
  const [serviceId, setServiceId] = useState("");
  const [scope, setScope] = useState<"origin" | "conversation">("origin");
  const [origin, setOrigin] = useState("DISCORD");
  const [conversationId, setConversationId] = useState("");
  const [error, attempt] = useAttempt();
  useEffect(() => {
    void attempt(async () => {
      const { serviceGrants } = await gql<{ serviceGrants: ServiceGrantRow[] }>(SERVICE_GRANTS);
      setGrants(serviceGrants);
    });
  }, []);

  const create = async () => {
    await attempt(async () => {
      const input = scope === "origin" ? { serviceId, origin } : { serviceId, conversationId: conversationId.trim() };
      const { grantService } = await gql<{ grantService: ServiceGrantRow }>(GRANT_SERVICE, { input });
      setGrants((current) => [grantService, ...current.filter((grant) => grant.id !== grantService.id)]);
    });
  };
  const revoke = async (grant: ServiceGrantRow) => {
    if (!window.confirm("Revoke this grant? The service loses that access at once.")) return;
    await attempt(async () => {
      await gql(REVOKE_SERVICE_GRANT, { id: grant.id });
      setGrants((current) => current.filter((row) => row.id !== grant.id));
    });
  };

  return (
    <section aria-label="Service grants">
      <InlineForm onSubmit={() => create()}>
        <UserPicker label="Service" role="SERVICE" value={serviceId} onChange={setServiceId} />
        <label class="field">
          <span>Reach</span>
          <select class="input" aria-label="Reach" value={scope} onChange={(event) => setScope(event.currentTarget.value as "origin" | "conversation")}>
            <option value="origin">every conversation of an origin</option>
            <option value="conversation">one conversation</option>
          </select>
        </label>
        {scope === "origin" ? (
          <label class="field">
            <span>Origin</span>
            <select class="input" aria-label="Origin" value={origin} onChange={(event) => setOrigin(event.currentTarget.value)}>
              <option value="DISCORD">discord</option>
              <option value="WEB">web</option>
              <option value="API">api</option>
            </select>
          </label>
        ) : (
          <label class="field">
            <span>Conversation id</span>
            <input class="input" value={conversationId} onInput={(event) => setConversationId(event.currentTarget.value)} />
          </label>
        )}
        <button class="button primary" type="submit" disabled={!serviceId || (scope === "conversation" && !conversationId.trim())}>Grant</button>
      </InlineForm>
      {error && <p class="error" role="alert">{error}</p>}
      <DataTable
        testId="grants-table"
        rows={grants}
        rowKey={(grant) => grant.id}
        rowData={(grant) => ({ "data-grant-id": grant.id })}
        columns={[
          { label: "Service", cell: (grant) => (grant.service ? <PersonName person={grant.service} /> : <code>{grant.serviceId}</code>) },
          { label: "Reaches", cell: (grant) => (grant.origin ? `every ${grant.origin.toLowerCase()} conversation` : <code>{grant.conversationId}</code>) },
          { label: "Since", cell: (grant) => fullDate(grant.createdAt) },
          {
            label: "Actions",
            actions: true,
            cell: (grant) => <button class="button small subtle" type="button" onClick={() => void revoke(grant)}>Revoke</button>,
          },
        ]}
      />
    </section>
  );
}

const AUDIT_PAGE = 50;

function AuditSection() {
  const [filter, setFilter] = useState({ action: "", actorId: "", targetId: "", from: "", to: "" });
  const [applied, setApplied] = useState(filter);
  const [rows, setRows] = useState<AuditRow[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, attempt] = useAttempt();

  const variables = (after: string | null) => {
    const value: Record<string, string> = {};
    if (applied.action.trim()) value.action = applied.action.trim();
    if (applied.actorId) value.actorId = applied.actorId;
    if (applied.targetId.trim()) value.targetId = applied.targetId.trim();
    // datetime-local is the browser's local time: sent as the instant it names.
    if (applied.from) value.from = new Date(applied.from).toISOString();
    if (applied.to) value.to = new Date(applied.to).toISOString();
    return { first: AUDIT_PAGE, after, filter: value };
  };
  const load = async (after: string | null) => {
    await attempt(async () => {
      const { auditLogs } = await gql<{ auditLogs: Connection<AuditRow> & { totalCount: number } }>(AUDIT_LOGS, variables(after));
      setRows((current) => [...(after ? current : []), ...auditLogs.edges.map((edge) => edge.node)]);
      setTotal(auditLogs.totalCount);
      setNext(auditLogs.pageInfo.hasNextPage ? auditLogs.pageInfo.endCursor : null);
    });
  };
  useEffect(() => void load(null), [applied]);
  const field = (name: "action" | "targetId" | "from" | "to", label: string, time = false) => {
    const onInput = (event: { currentTarget: HTMLInputElement }) => setFilter({ ...filter, [name]: event.currentTarget.value });
    return (
      <label class="field">
        <span>{label}</span>
        {time ? <input class="input" type="datetime-local" value={filter[name]} onInput={onInput} /> : <input class="input" type="text" value={filter[name]} onInput={onInput} />}
      </label>
    );
  };

  return (
    <section aria-label="Audit log">
      <InlineForm onSubmit={() => setApplied({ ...filter })}>
        {field("action", "Action")}
        <UserPicker label="Actor" none="anyone" value={filter.actorId} onChange={(actorId) => setFilter((current) => ({ ...current, actorId }))} />
        {field("targetId", "Target id")}
        {field("from", "From", true)}
        {field("to", "Before", true)}
        <button class="button" type="submit">Filter</button>
      </InlineForm>
      {error && <p class="error" role="alert">{error}</p>}
      {total !== null && <p class="subtle" data-testid="audit-total">{total === 1 ? "1 entry" : `${total} entries`}</p>}
      <DataTable
        testId="audit-table"
        rows={rows}
        rowKey={(row) => row.id}
        rowData={(row) => ({ "data-action": row.action })}
        columns={[
          { label: "When", cell: (row) => fullDate(row.createdAt) },
          { label: "Action", cell: (row) => <code>{row.action}</code> },
          { label: "Actor", name: "actor", cell: (row) => <AuditActor row={row} /> },
          { label: "Target", cell: (row) => <>{row.targetType ? `${row.targetType} ` : ""}<code>{row.targetId ?? ""}</code></> },
          { label: "Details", cell: (row) => <code class="details">{JSON.stringify(row.details)}</code> },
        ]}
      />
      {next && <button class="button subtle" type="button" onClick={() => void load(next)}>Older entries</button>}
    </section>
  );
}

/**
 * An entry's actor by name (its id if the user could not be read). No actor is Parley itself (a job, the CLI) or
 * an account deleted since: the log keeps no id of a deleted actor, so the two look alike.
 */
function AuditActor({ row }: { row: AuditRow }) {
  if (row.actor) return <PersonName person={row.actor} />;
  if (row.actorId) return <code>{row.actorId}</code>;
  return <span class="subtle">system or deleted account</span>;
}

/** A user by name, with the email beside it when there is one (names need not be unique). */
function PersonName({ person }: { person: PersonRef }) {
  return (
    <span title={person.id}>
      {person.displayName}
      {person.email && <span class="person-email">{person.email}</span>}
    </span>
  );
}

/**
 * A section's error line: `attempt` clears it, runs an action and shows the action's failure there (the API's
 * message, see describeError), so every button of the section reports the same way.
 */
function useAttempt(): [string | null, (action: () => Promise<void>) => Promise<void>, (error: string | null) => void] {
  const [error, setError] = useState<string | null>(null);
  const attempt = async (action: () => Promise<void>) => {
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return [error, attempt, setError];
}

/** A one-line form: Enter or its button runs `onSubmit`, without the browser's page load. */
function InlineForm({ onSubmit, children }: { onSubmit: () => unknown; children: ComponentChildren }) {
  return (
    <form
      class="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        void onSubmit();
      }}
    >
      {children}
    </form>
  );
}
