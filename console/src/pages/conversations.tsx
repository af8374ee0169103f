/**
 * The conversations section: the list beside the open chat (one pane at a time on a narrow screen).
 * The list pages forwards by cursor, narrows by origin and status, and is kept current by the inbox
 * subscription; the search box searches message text (searchMessages) instead.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { describeError } from "../api";
import { gql } from "../client";
import { ChatView } from "../components/chat";
import { onConversationChange, type ConversationChange } from "../inbox";
import { preview, shortDate } from "../format";
import {
  CONVERSATIONS,
  CREATE_CONVERSATION,
  SEARCH_MESSAGES,
  type Connection,
  type ConversationStatus,
  type ConversationSummary,
  type Origin,
} from "../queries";
import { Link, navigate, paths, type Route } from "../router";
import type { Viewer } from "../session";
import { Store, useStore } from "../store";

const PAGE_SIZE = 30;

interface Filters {
  origin: Origin | "";
  status: ConversationStatus | "";
}

/** Kept for the tab's life, so that coming back from a chat on a phone finds the list as it was left. */
const filters = new Store<Filters>({ origin: "", status: "" });
const searchText = new Store("");

export function ConversationsPage({ route, viewer }: { route: Route; viewer: Viewer }) {
  const openId = route.name === "conversation" ? route.id : null;
  useEffect(() => {
    if (!openId) document.title = "Conversations · Parley Console";
  }, [openId]);
  return (
    <div class={openId ? "workspace has-chat" : "workspace"}>
      <ConversationList selectedId={openId} />
      <section class="chat-pane" aria-label="Conversation">
        {openId ? (
          <ChatView key={openId} id={openId} viewer={viewer} />
        ) : (
          <div class="page-message subtle">
            <p>Choose a conversation.</p>
          </div>
        )}
      </section>
    </div>
  );
}

const ORIGINS: { value: Origin | ""; label: string }[] = [
  { value: "", label: "All origins" },
  { value: "WEB", label: "Web" },
  { value: "API", label: "API" },
  { value: "DISCORD", label: "Discord" },
];

const STATUSES: { value: ConversationStatus | ""; label: string }[] = [
  { value: "", label: "Any status" },
  { value: "ACTIVE", label: "Active" },
  { value: "ARCHIVED", label: "Archived" },
];

function matches(conversation: ConversationSummary, { origin, status }: Filters): boolean {
  return (!origin || conversation.origin === origin) && (!status || conversation.status === status);
}

/** The API's order: most recently active first. */
function newerFirst(a: ConversationSummary, b: ConversationSummary): number {
  return a.updatedAt === b.updatedAt ? (a.id < b.id ? 1 : -1) : a.updatedAt < b.updatedAt ? 1 : -1;
}

interface ListState {
  items: ConversationSummary[];
  cursor: string | null;
  hasMore: boolean;
  total: number | null;
  loading: boolean;
  error: string | null;
}

const EMPTY: ListState = { items: [], cursor: null, hasMore: false, total: null, loading: true, error: null };

function ConversationList({ selectedId }: { selectedId: string | null }) {
  const current = useStore(filters);
  const search = useStore(searchText);
  const [state, setState] = useState<ListState>(EMPTY);
  const [reloads, setReloads] = useState(0);
  const generation = useRef(0);

  const fetchPage = async (after: string | null) => {
    const mine = generation.current;
    const filter = { ...(current.origin && { origin: current.origin }), ...(current.status && { status: current.status }) };
    try {
      const { conversations } = await gql<{ conversations: Connection<ConversationSummary> }>(CONVERSATIONS, { first: PAGE_SIZE, after, filter });
      if (mine !== generation.current) return; // the filters changed meanwhile
      setState((previous) => {
        const known = new Set(previous.items.map((item) => item.id));
        const fresh = conversations.edges.map((edge) => edge.node).filter((node) => !known.has(node.id));
        return {
          items: after ? [...previous.items, ...fresh] : fresh,
          cursor: conversations.pageInfo.endCursor,
          hasMore: conversations.pageInfo.hasNextPage,
          total: conversations.totalCount ?? null,
          loading: false,
          error: null,
        };
      });
    } catch (error) {
      if (mine === generation.current) setState((previous) => ({ ...previous, loading: false, error: describeError(error) }));
    }
  };

  useEffect(() => {
    generation.current += 1;
    setState(EMPTY);
    void fetchPage(null);
  }, [current.origin, current.status, reloads]);

  useEffect(
    () =>
      onConversationChange({
        change: (change: ConversationChange) =>
          setState((previous) => {
            const rest = previous.items.filter((item) => item.id !== change.conversationId);
            const removed = rest.length !== previous.items.length;
            const conversation = change.conversation;
            const total = (count: number | null, delta: number) => (count === null ? null : Math.max(0, count + delta));
            if (change.deleted || !conversation || !matches(conversation, filters.value)) {
              return removed ? { ...previous, items: rest, total: total(previous.total, -1) } : previous;
            }
            // Beyond the pages loaded so far it comes with the next page, not here.
            const last = rest[rest.length - 1];
            if (!removed && previous.hasMore && last && newerFirst(conversation, last) > 0) return previous;
            return { ...previous, items: [...rest, conversation].sort(newerFirst), total: removed ? previous.total : total(previous.total, 1) };
          }),
        resync: () => setReloads((n) => n + 1),
      }),
    [],
  );

  const loadMore = () => {
    if (state.loading || !state.hasMore) return;
    setState((previous) => ({ ...previous, loading: true }));
    void fetchPage(state.cursor);
  };

  return (
    <aside class="list-pane" aria-label="Your conversations">
      <div class="list-tools">
        <div class="list-title-row">
          <h1 class="list-title">Conversations</h1>
          <NewConversationButton />
        </div>
        <input
          class="input"
          type="search"
          placeholder="Search messages"
          aria-label="Search messages"
          value={search}
          onInput={(event) => searchText.set(event.currentTarget.value)}
        />
        {!search.trim() && (
          <div class="filters">
            <select class="input" aria-label="Origin" value={current.origin} onChange={(event) => filters.set({ ...current, origin: event.currentTarget.value as Filters["origin"] })}>
              {ORIGINS.map((option) => (
                <option key={option.value} value={option.value}>{option.label}</option>
              ))}
            </select>
            <select class="input" aria-label="Status" value={current.status} onChange={(event) => filters.set({ ...current, status: event.currentTarget.value as Filters["status"] })}>
              {STATUSES.map((option) => (
                <option key={option.value} value={option.value}>{option.label}</option>
              ))}
            </select>
          </div>
        )}
      </div>
      {search.trim() ? (
        <SearchResults query={search.trim()} />
      ) : (
        <div class="list-scroll">
          {state.error && <p class="error" role="alert">{state.error}</p>}
          {!state.loading && !state.error && state.items.length === 0 && (
            <p class="empty">{current.origin || current.status ? "No conversations match these filters." : "No conversations yet."}</p>
          )}
          <ul class="conversation-list" data-testid="conversation-list" aria-busy={state.loading}>
            {state.items.map((conversation) => (
              <ConversationItem key={conversation.id} conversation={conversation} selected={conversation.id === selectedId} />
            ))}
          </ul>
          {state.loading && <p class="empty" role="status">Loading…</p>}
          {!state.loading && state.hasMore && (
            <button class="button subtle wide" type="button" onClick={loadMore}>
              Load more{state.total !== null ? ` (${state.items.length} of ${state.total})` : ""}
            </button>
          )}
        </div>
      )}
    </aside>
  );
}

function ConversationItem({ conversation, selected }: { conversation: ConversationSummary; selected: boolean }) {
  const last = conversation.lastMessage;
  return (
    <li>
      <Link
        href={paths.conversation(conversation.id)}
        class={selected ? "conversation-item selected" : "conversation-item"}
        aria-current={selected ? "page" : undefined}
        data-conversation-id={conversation.id}
      >
        <span class="conversation-top">
          <span class="conversation-title">{conversation.title || "Untitled conversation"}</span>
          <time class="conversation-time" dateTime={conversation.updatedAt}>{shortDate(conversation.updatedAt)}</time>
        </span>
        <span class="conversation-preview">{last ? preview(last.content) || "(no text)" : "No messages yet"}</span>
        <span class="conversation-badges">
          <span class="badge">{conversation.origin.toLowerCase()}</span>
          {conversation.status === "ARCHIVED" && <span class="badge muted">archived</span>}
          <span class="conversation-count">{conversation.messageCount} msg</span>
        </span>
      </Link>
    </li>
  );
}

function NewConversationButton() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      const { createConversation } = await gql<{ createConversation: ConversationSummary }>(CREATE_CONVERSATION, { title: "" });
      navigate(paths.conversation(createConversation.id));
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button class="button small" type="button" onClick={create} disabled={busy}>
        New
      </button>
      {error && <p class="error" role="alert">{error}</p>}
    </>
  );
}

interface SearchHit {
  highlight: string;
  message: { id: string; seq: number; createdAt: string; conversation: { id: string; title: string } };
}

function SearchResults({ query }: { query: string }) {
  const [state, setState] = useState<{ hits: SearchHit[] | null; error: string | null }>({ hits: null, error: null });
  useEffect(() => {
    let live = true;
    setState({ hits: null, error: null });
    const timer = setTimeout(async () => {
      try {
        const { searchMessages } = await gql<{ searchMessages: SearchHit[] }>(SEARCH_MESSAGES, { query, first: 20 });
        if (live) setState({ hits: searchMessages, error: null });
      } catch (error) {
        if (live) setState({ hits: [], error: describeError(error) });
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query]);

  return (
    <div class="list-scroll" data-testid="search-results">
      {state.error && <p class="error" role="alert">{state.error}</p>}
      {state.hits === null && <p class="empty" role="status">Searching…</p>}
      {state.hits?.length === 0 && !state.error && <p class="empty">No messages match.</p>}
      <ul class="conversation-list">
        {state.hits?.map((hit) => (
          <li key={hit.message.id}>
            <Link href={paths.conversation(hit.message.conversation.id)} class="conversation-item">
              <span class="conversation-top">
                <span class="conversation-title">{hit.message.conversation.title || "Untitled conversation"}</span>
                <time class="conversation-time" dateTime={hit.message.createdAt}>{shortDate(hit.message.createdAt)}</time>
              </span>
              <span class="conversation-preview">
                <Highlight text={hit.highlight} />
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </div>
  );
}

const ENTITIES: Record<string, string> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };

/** searchMessages' highlight is escaped text with <b>…</b> around matches: drawn as text and <mark>, never as HTML. */
function Highlight({ text }: { text: string }) {
  const parts = text.split(/(<b>|<\/b>)/);
  let bold = false;
  const out = [];
  for (const [index, part] of parts.entries()) {
    if (part === "<b>") bold = true;
    else if (part === "</b>") bold = false;
    else if (part) {
      const plain = part.replace(/&(?:amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity]);
      out.push(bold ? <mark key={index}>{plain}</mark> : plain);
    }
  }
  return <>{out}</>;
}
