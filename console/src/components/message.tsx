/**
 * One message: Markdown (markdown.ts decides what may become HTML), tool calls and tool results folded,
 * details (usage, metadata) read from the API only when asked for.
 */
import { Component } from "preact";
import { useEffect, useState } from "preact/hooks";
import { describeError } from "../api";
import { gql } from "../client";
import { count, fullDate, shortDate, usd } from "../format";
import { renderMarkdown } from "../markdown";
import { MESSAGE_DETAILS, type ChatMessage, type MessageDetails } from "../queries";

const ROLE_LABEL = { USER: "User", ASSISTANT: "Assistant", SYSTEM: "System", TOOL: "Tool" } as const;

interface Props {
  message: ChatMessage;
}

/** Messages are replaced, not changed, when something happens to them: an unchanged one is not drawn again. */
export class MessageView extends Component<Props, { open: boolean }> {
  override state = { open: false };
  private html: { content: string; html: string } | undefined;

  override shouldComponentUpdate(next: Props, nextState: { open: boolean }): boolean {
    return next.message !== this.props.message || nextState.open !== this.state.open;
  }

  private markdown(content: string): string {
    if (this.html?.content !== content) this.html = { content, html: renderMarkdown(content) };
    return this.html.html;
  }

  override render({ message }: Props, { open }: { open: boolean }) {
    const role = message.role;
    const who = message.author?.displayName ?? ROLE_LABEL[role];
    const toolCalls = Array.isArray(message.toolCalls) ? message.toolCalls : message.toolCalls ? [message.toolCalls] : [];
    const body = message.content ? <div class="md" dangerouslySetInnerHTML={{ __html: this.markdown(message.content) }} /> : null;
    return (
      <article
        class={`msg role-${role.toLowerCase()} status-${message.status.toLowerCase()}`}
        data-seq={message.seq}
        data-status={message.status}
        data-role={role}
        data-message-id={message.id}
      >
        <header class="msg-head">
          <span class="msg-author">{who}</span>
          {message.author && role !== "USER" && <span class="msg-role">{ROLE_LABEL[role]}</span>}
          {message.model && <span class="msg-model">{message.model}</span>}
          <time class="msg-time" dateTime={message.createdAt} title={fullDate(message.createdAt)}>
            {shortDate(message.createdAt)}
          </time>
          {message.status === "STREAMING" && <span class="badge live-badge">writing…</span>}
          {message.status === "FAILED" && <span class="badge danger">failed</span>}
          <button class="link-button msg-details-toggle" type="button" aria-expanded={open} onClick={() => this.setState({ open: !open })}>
            {open ? "Hide details" : "Details"}
          </button>
        </header>
        {role === "TOOL" && body ? (
          <details class="fold">
            <summary>Tool result</summary>
            {body}
          </details>
        ) : (
          body
        )}
        {toolCalls.length > 0 && (
          <details class="fold tool-calls">
            <summary>
              {toolCalls.length === 1 ? "Tool call" : `${toolCalls.length} tool calls`}: {toolCalls.map(toolName).join(", ")}
            </summary>
            <pre class="json" tabIndex={0}>{JSON.stringify(message.toolCalls, null, 2)}</pre>
          </details>
        )}
        {open && <Details id={message.id} />}
      </article>
    );
  }
}

/** OpenAI's { function: { name } }, or a plain { name }. */
function toolName(call: unknown): string {
  const value = call as { function?: { name?: unknown }; name?: unknown } | null;
  const name = value?.function?.name ?? value?.name;
  return typeof name === "string" && name ? name : "unnamed";
}

function Details({ id }: { id: string }) {
  const [state, setState] = useState<{ details?: MessageDetails; error?: string }>({});
  useEffect(() => {
    let live = true;
    gql<{ message: MessageDetails }>(MESSAGE_DETAILS, { id }).then(
      ({ message }) => live && setState({ details: message }),
      (error) => live && setState({ error: describeError(error) }),
    );
    return () => {
      live = false;
    };
  }, [id]);
  if (state.error) return <p class="error msg-details">{state.error}</p>;
  const details = state.details;
  if (!details) return <p class="msg-details subtle" role="status">Loading details…</p>;
  const tokens = details.promptTokens != null || details.completionTokens != null ? `${count(details.promptTokens)} in / ${count(details.completionTokens)} out` : "—";
  return (
    <div class="msg-details" data-testid="message-details">
      <dl>
        <dt>Model</dt>
        <dd>{details.model ?? "—"}</dd>
        <dt>Tokens</dt>
        <dd>{tokens}</dd>
        <dt>Cost</dt>
        <dd>{usd(details.costUsd)}</dd>
        <dt>Latency</dt>
        <dd>{details.latencyMs != null ? `${count(details.latencyMs)} ms` : "—"}</dd>
        <dt>Request id</dt>
        <dd class="mono">{details.requestId ?? "—"}</dd>
        {details.sentBy && (
          <>
            <dt>Sent by</dt>
            <dd>{details.sentBy.displayName}</dd>
          </>
        )}
        <dt>Created</dt>
        <dd>{fullDate(details.createdAt)}</dd>
        <dt>Updated</dt>
        <dd>{fullDate(details.updatedAt)}</dd>
      </dl>
      <p class="field-label">Metadata</p>
      <pre class="json" tabIndex={0}>{JSON.stringify(details.metadata, null, 2)}</pre>
    </div>
  );
}
