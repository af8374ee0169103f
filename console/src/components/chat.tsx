/**
 * One conversation: its newest page of messages, older pages as the reader scrolls up (by cursor, each page
 * once), and everything new from conversationEvents: messages, streamed replies chunk by chunk, their end.
 */
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import { ApiError, describeError } from "../api";
import { fetchFile, gql, subscribe } from "../client";
import { MessageList } from "../chat-state";
import { onConversationChange } from "../inbox";
import { newRequestId } from "../format";
import {
  ADD_MESSAGE,
  ARCHIVE_CONVERSATION,
  CONVERSATION,
  CREATE_TRANSCRIPT,
  RENAME_CONVERSATION,
  TRANSCRIPT,
  CONVERSATION_EVENTS,
  MESSAGE,
  OLDER_MESSAGES,
  type ChatMessage,
  type Connection,
  type ConversationEvent,
  type ConversationSummary,
  type TranscriptFile,
  type TranscriptFormat,
} from "../queries";
import { Link, paths } from "../router";
import type { Viewer } from "../session";
import { MessageView } from "./message";

const PAGE_SIZE = 40;
/** How close to the top (px) the reader must scroll for the next older page to load. */
const LOAD_OLDER_WITHIN = 300;
/** How close to the bottom (px) counts as reading the newest messages, which then stay in view. */
const STICK_WITHIN = 80;

type Phase = { name: "loading" } | { name: "ready" } | { name: "not-found" } | { name: "error"; message: string };

interface Older {
  cursor: string | null;
  hasMore: boolean;
  loading: boolean;
}

export function ChatView({ id, viewer }: { id: string; viewer: Viewer }) {
  const [phase, setPhase] = useState<Phase>({ name: "loading" });
  const [conversation, setConversation] = useState<ConversationSummary | null>(null);
  const [olderError, setOlderError] = useState<string | null>(null);
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  /** Live events draw at most once a frame: a fast stream of chunks re-renders its Markdown 60 times a second, not 500. */
  const redrawSoon = useMemo(() => {
    let pending = false;
    return () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        redraw(0);
      });
    };
  }, []);
  const list = useRef(new MessageList());
  const older = useRef<Older>({ cursor: null, hasMore: false, loading: false });
  const scroller = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  /** Set before older messages are drawn above: where the reader was, to keep them there. */
  const keepPosition = useRef<{ height: number; top: number } | null>(null);

  useEffect(() => {
    let active = true;
    let stop: (() => void) | undefined;

    const resync = async (messageId: string) => {
      try {
        const { message } = await gql<{ message: ChatMessage }>(MESSAGE, { id: messageId });
        if (active && list.current.upsert(message)) redraw(0);
      } catch {
        // the next event or a reload brings it
      }
    };

    const onEvent = (event: ConversationEvent) => {
      if (event.__typename === "MessageDeltaEvent") {
        const outcome = list.current.applyDelta(event);
        if (outcome === "applied") redrawSoon();
        else if (outcome === "missing") void resync(event.messageId);
      } else if (list.current.upsert(event.message)) {
        redrawSoon();
      }
    };

    (async () => {
      try {
        const data = await gql<{ conversation: ConversationSummary & { messages: Connection<ChatMessage> } }>(CONVERSATION, { id, last: PAGE_SIZE });
        if (!active) return;
        const { messages, ...summary } = data.conversation;
        list.current.upsertAll(messages.edges.map((edge) => edge.node));
        older.current = { cursor: messages.pageInfo.startCursor, hasMore: messages.pageInfo.hasPreviousPage, loading: false };
        setConversation(summary);
        setPhase({ name: "ready" });
        // Gap-free from the newest seq held; the replies still streaming are sent again as they are now.
        stop = subscribe<{ conversationEvents: ConversationEvent }>(
          CONVERSATION_EVENTS,
          { id, after: list.current.lastSeq, streaming: list.current.streamingSeqs.slice(0, 100) },
          {
            next: ({ conversationEvents }) => active && onEvent(conversationEvents),
            error: (error) => {
              if (!active) return;
              if (error.code === "NOT_FOUND") setPhase({ name: "not-found" });
              else if (error.code !== "UNAUTHENTICATED") setPhase({ name: "error", message: `Live updates stopped: ${describeError(error)} Reload the page to resume.` });
            },
          },
        );
      } catch (error) {
        if (!active) return;
        if (error instanceof ApiError && (error.code === "NOT_FOUND" || error.code === "BAD_USER_INPUT")) setPhase({ name: "not-found" });
        else setPhase({ name: "error", message: describeError(error) });
      }
    })();

    const stopChanges = onConversationChange({
      change: (change) => {
        if (change.conversationId !== id) return;
        if (change.deleted || !change.conversation) setPhase({ name: "not-found" });
        else setConversation(change.conversation);
      },
    });

    return () => {
      active = false;
      stop?.();
      stopChanges();
    };
  }, [id]);

  const loadOlder = async () => {
    const state = older.current;
    if (state.loading || !state.hasMore || !state.cursor) return;
    state.loading = true;
    setOlderError(null);
    redraw(0);
    try {
      const data = await gql<{ conversation: { messages: Connection<ChatMessage> } }>(OLDER_MESSAGES, { id, last: PAGE_SIZE, before: state.cursor });
      const { edges, pageInfo } = data.conversation.messages;
      const box = scroller.current;
      if (box) keepPosition.current = { height: box.scrollHeight, top: box.scrollTop };
      list.current.upsertAll(edges.map((edge) => edge.node));
      older.current = { cursor: pageInfo.startCursor, hasMore: pageInfo.hasPreviousPage, loading: false };
    } catch (error) {
      older.current = { ...state, loading: false };
      setOlderError(describeError(error));
    }
    redraw(0);
  };

  // After each drawing: keep the reader where they were (older page above), or at the newest message, then
  // fetch the next older page if the top is still in sight (a short page, a tall screen).
  useLayoutEffect(() => {
    const box = scroller.current;
    if (!box) return; // drawn only once the conversation is loaded (ready, or live updates failed)
    if (keepPosition.current) {
      box.scrollTop = keepPosition.current.top + (box.scrollHeight - keepPosition.current.height);
      keepPosition.current = null;
    } else if (stickToBottom.current) {
      box.scrollTop = box.scrollHeight;
    }
    if (box.scrollTop < LOAD_OLDER_WITHIN && !older.current.loading && older.current.hasMore && !olderError) void loadOlder();
  });

  useEffect(() => {
    if (conversation) document.title = `${conversation.title || "Untitled conversation"} · Parley Console`;
  }, [conversation?.title]);

  const onScroll = () => {
    const box = scroller.current;
    if (!box) return;
    stickToBottom.current = box.scrollHeight - box.scrollTop - box.clientHeight < STICK_WITHIN;
    if (box.scrollTop < LOAD_OLDER_WITHIN) void loadOlder();
  };

  if (phase.name === "loading") return <div class="page-message subtle" role="status">Loading the conversation…</div>;
  if (phase.name === "not-found") {
    return (
      <div class="page-message" data-testid="chat-not-found">
        <h2>Conversation not found</h2>
        <p>It does not exist, was deleted, or is not yours to read.</p>
        <p>
          <Link href={paths.conversations()}>Back to your conversations</Link>
        </p>
      </div>
    );
  }
  if (phase.name === "error" && !conversation) return <div class="page-message"><p class="error" role="alert">{phase.message}</p></div>;

  const messages = list.current.messages;
  const state = older.current;
  const canManage = !!conversation && (conversation.owner.id === viewer.id || viewer.role === "ADMIN");
  const canWrite = canManage && conversation!.status === "ACTIVE";

  return (
    <div class="chat" data-testid="chat" data-conversation-id={id}>
      <header class="chat-head">
        <Link class="back" href={paths.conversations()} aria-label="Back to conversations">
          ←
        </Link>
        <div class="chat-heading">
          <h2 class="chat-title" data-testid="chat-title">{conversation?.title || "Untitled conversation"}</h2>
          <p class="chat-meta">
            <span class="badge">{conversation?.origin.toLowerCase()}</span>
            {conversation?.status === "ARCHIVED" && <span class="badge muted">archived</span>}
            {conversation && conversation.owner.id !== viewer.id && <span>owner: {conversation.owner.displayName}</span>}
            <span>{conversation?.messageCount ?? messages.length} messages</span>
          </p>
        </div>
        {conversation && <ChatActions conversation={conversation} canManage={canManage} onChange={setConversation} />}
      </header>
      {phase.name === "error" && <p class="error banner" role="alert">{phase.message}</p>}
      <div class="messages" ref={scroller} onScroll={onScroll} data-testid="messages">
        <div class="history-edge" data-testid="history-edge">
          {state.loading ? "Loading older messages…" : olderError ? (
            <>
              <span class="error">{olderError}</span>{" "}
              <button class="button small subtle" type="button" onClick={() => { setOlderError(null); void loadOlder(); }}>Retry</button>
            </>
          ) : state.hasMore ? "" : messages.length ? "Start of the conversation" : "No messages yet"}
        </div>
        {messages.map((message) => (
          <MessageView key={message.id} message={message} />
        ))}
      </div>
      {conversation && (canWrite ? (
        <Composer
          conversationId={id}
          onSent={(message) => {
            stickToBottom.current = true;
            if (list.current.upsert(message)) redraw(0);
          }}
        />
      ) : (
        <p class="composer-note">
          {conversation.status === "ARCHIVED" ? "This conversation is archived: it can be read, not written." : "Only its owner writes in this conversation."}
        </p>
      ))}
    </div>
  );
}

function Composer({ conversationId, onSent }: { conversationId: string; onSent(message: ChatMessage): void }) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** One id per draft: resending after a failure cannot store the message twice. */
  const requestId = useRef<string | null>(null);

  const send = async () => {
    const content = text.trim();
    if (!content || busy) return;
    requestId.current ??= newRequestId();
    setBusy(true);
    setError(null);
    try {
      const { addMessage } = await gql<{ addMessage: ChatMessage }>(ADD_MESSAGE, {
        input: { conversationId, content, role: "USER", requestId: requestId.current },
      });
      requestId.current = null;
      setText("");
      onSent(addMessage);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <label class="visually-hidden" for="composer-text">
        Message
      </label>
      <textarea
        id="composer-text"
        class="input composer-text"
        rows={2}
        placeholder="Write a message (Enter sends, Shift+Enter adds a line)"
        value={text}
        onInput={(event) => {
          setText(event.currentTarget.value);
          requestId.current = null; // another text is another message
        }}
        onKeyDown={(event) => {
          if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            void send();
          }
        }}
      />
      <button class="button primary" type="submit" disabled={busy || !text.trim()}>
        {busy ? "Sending…" : "Send"}
      </button>
      {error && (
        <p class="error composer-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

type Panel = "none" | "rename" | "export";

/** Rename and archive (owner and admins), and export a transcript (anyone who reads it). */
function ChatActions({ conversation, canManage, onChange }: { conversation: ConversationSummary; canManage: boolean; onChange(next: ConversationSummary): void }) {
  const [panel, setPanel] = useState<Panel>("none");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const toggles = { rename: useRef<HTMLButtonElement>(null), export: useRef<HTMLButtonElement>(null) };
  const toggle = (next: Panel) => {
    setError(null);
    setPanel(panel === next ? "none" : next);
  };
  /** Closes the open panel, and gives focus back to the button that opened it (it would fall to the page otherwise). */
  const close = () => {
    if (panel === "none") return;
    toggles[panel].current?.focus();
    setPanel("none");
  };

  const archive = async () => {
    if (!window.confirm("Archive this conversation? It stays readable, and nobody can write in it any more.")) return;
    setBusy(true);
    setError(null);
    try {
      const { archiveConversation } = await gql<{ archiveConversation: ConversationSummary }>(ARCHIVE_CONVERSATION, { id: conversation.id });
      onChange(archiveConversation);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div
      class="chat-actions"
      onKeyDown={(event) => {
        if (event.key === "Escape" && panel !== "none") {
          event.preventDefault();
          close();
        }
      }}
    >
      <div class="row">
        {canManage && (
          <button class="button small subtle" type="button" ref={toggles.rename} aria-expanded={panel === "rename"} onClick={() => toggle("rename")}>Rename</button>
        )}
        {canManage && conversation.status === "ACTIVE" && (
          <button class="button small subtle" type="button" disabled={busy} onClick={() => void archive()}>Archive</button>
        )}
        <button class="button small subtle" type="button" ref={toggles.export} aria-expanded={panel === "export"} onClick={() => toggle("export")}>Export</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {panel === "rename" && (
        <RenameForm
          conversation={conversation}
          onDone={(next) => {
            if (next) onChange(next);
            close();
          }}
        />
      )}
      {panel === "export" && <ExportPanel conversationId={conversation.id} />}
    </div>
  );
}

function RenameForm({ conversation, onDone }: { conversation: ConversationSummary; onDone(next?: ConversationSummary): void }) {
  const [title, setTitle] = useState(conversation.title);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  // Not autofocus: browsers honour it once per page load, not for a form that appears later. A layout effect,
  // so that the field is focused as it appears (an effect would leave a frame in which the toggle still has it).
  useLayoutEffect(() => input.current?.focus(), []);
  const save = async () => {
    const next = title.trim();
    if (!next || busy) return;
    setBusy(true);
    setError(null);
    try {
      const { updateConversation } = await gql<{ updateConversation: ConversationSummary }>(RENAME_CONVERSATION, { id: conversation.id, title: next });
      onDone(updateConversation);
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };
  return (
    <form
      class="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        void save();
      }}
    >
      <label class="field">
        <span>Title</span>
        <input class="input" value={title} maxLength={200} onInput={(event) => setTitle(event.currentTarget.value)} ref={input} />
      </label>
      <button class="button small primary" type="submit" disabled={busy || !title.trim()}>{busy ? "Saving…" : "Save"}</button>
      <button class="button small subtle" type="button" onClick={() => onDone()}>Cancel</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

/** Asks for a transcript, waits for it to be READY, fetches it with the token, and offers it as a blob: link. */
function ExportPanel({ conversationId }: { conversationId: string }) {
  const [format, setFormat] = useState<TranscriptFormat>("CSV");
  const [state, setState] = useState<{ name: "idle" } | { name: "working" } | { name: "ready"; url: string; fileName: string; messages: number | null } | { name: "error"; message: string }>({ name: "idle" });
  const active = useRef(true);
  const url = useRef<string | null>(null);
  useEffect(
    () => () => {
      active.current = false;
      if (url.current) URL.revokeObjectURL(url.current);
    },
    [],
  );

  const start = async () => {
    setState({ name: "working" });
    try {
      let { createTranscript: transcript } = await gql<{ createTranscript: TranscriptFile }>(CREATE_TRANSCRIPT, {
        input: { conversationId, format, requestId: newRequestId() },
      });
      // Large exports are written in the background: poll until they are done.
      for (let wait = 300; transcript.status === "PENDING"; wait = Math.min(wait * 2, 3_000)) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (!active.current) return;
        ({ transcript } = await gql<{ transcript: TranscriptFile }>(TRANSCRIPT, { id: transcript.id }));
      }
      if (transcript.status === "FAILED" || !transcript.downloadPath) throw new Error(transcript.error ?? "The export failed.");
      const blob = await fetchFile(transcript.downloadPath);
      if (!active.current) return;
      if (url.current) URL.revokeObjectURL(url.current);
      url.current = URL.createObjectURL(blob);
      setState({ name: "ready", url: url.current, fileName: `conversation-${conversationId}.${format.toLowerCase()}`, messages: transcript.messageCount });
    } catch (failure) {
      if (active.current) setState({ name: "error", message: describeError(failure) });
    }
  };

  return (
    <div class="inline-form" data-testid="export-panel">
      <label class="field">
        <span>Format</span>
        <select class="input" aria-label="Format" value={format} onChange={(event) => setFormat(event.currentTarget.value as TranscriptFormat)}>
          <option value="CSV">CSV</option>
          <option value="JSON">JSON</option>
        </select>
      </label>
      <button class="button small primary" type="button" disabled={state.name === "working"} onClick={() => void start()}>
        {state.name === "working" ? "Exporting…" : "Export"}
      </button>
      {state.name === "ready" && (
        <a class="button small" href={state.url} download={state.fileName} data-testid="export-download">
          Download {state.fileName}
          {state.messages !== null ? ` (${state.messages} messages)` : ""}
        </a>
      )}
      {state.name === "error" && <p class="error" role="alert">{state.message}</p>}
    </div>
  );
}
