/**
 * Posting the assistant's replies of one bound conversation to its channel. The poster subscribes to the
 * conversation's events (conversationEvents, in-process, like any client) from the first ASSISTANT message
 * not yet posted, so after a restart it posts what was written while it was away, and continues a streamed
 * reply it had begun. What it posted is recorded with recordDiscordPost: each part's Discord message id as it
 * is posted, then POSTED, so nothing is posted twice (a repeat within Discord's nonce window returns the
 * first message, which covers a restart between posting and recording).
 *
 * A streamed reply is posted once (its text so far, or "…"), then edited as chunks arrive, at most once per
 * DISCORD_EDIT_INTERVAL_MS, every edit carrying all chunks that came meanwhile; when it completes or fails,
 * the final text is written at once. Parts over 2,000 characters become further messages (see split.ts). A
 * complete reply's last part carries the 👍/👎 feedback buttons (feedback.ts).
 */
import { ChannelType, DiscordAPIError, type Client, type SendableChannels } from "discord.js";
import type { Logger } from "pino";
import { ErrorCode } from "../graphql/errors";
import { OperationError, type Transport } from "./transport";
import { EVENTS, RECORD_POST, type EventData, type ReplyData } from "./operations";
import { openFenceAfter, splitMessage } from "./split";
import { CoalescingThrottle } from "./throttle";
import { backoff, isTransient, pause, type RetryPolicy } from "./retry";
import { partNonce } from "./message-data";
import { feedbackButtons } from "./feedback";

export interface PosterDeps {
  client: Client;
  transport: Transport;
  log: Logger;
  retry: RetryPolicy;
  editIntervalMs: number;
  signal: AbortSignal;
  /** The conversation is gone, or the adapter lost access to it: the channel is no longer bound. */
  onGone(channelId: string): void;
}

/** No mention in a reply pings anyone: the text is the model's, not the bot's. */
const NO_MENTIONS = { parse: [] };

/** The text a reply shows in Discord: "…" until the first chunk, and a note when it failed. */
export function renderReply(text: string, status: ReplyData["status"]): string {
  if (status === "FAILED") {
    const close = openFenceAfter(text) ? "\n```" : "";
    return `${text}${close}${text.trim() ? "\n\n" : ""}*(The reply was interrupted.)*`;
  }
  return text.trim() === "" ? "…" : text;
}

/** The channel to post into, from discord.js's cache or fetched. */
async function sendable(client: Client, channelId: string): Promise<SendableChannels> {
  const channel = await client.channels.fetch(channelId);
  if (!channel?.isSendable()) throw new Error(`channel ${channelId} (${channel ? ChannelType[channel.type] : "unknown"}) is not one the bot can post in`);
  return channel;
}

/** One assistant message on its way to Discord. */
class ReplyPost {
  text = "";
  chunks = 0;
  status: ReplyData["status"] = "STREAMING";
  /** Set once it is POSTED or FAILED (recorded). */
  finished = false;
  /** What each posted part holds now, as far as this process knows (after a restart: unknown, so edited once). */
  private readonly sent: string[] = [];
  private failures = 0;
  readonly throttle: CoalescingThrottle;

  constructor(
    private readonly deps: PosterDeps,
    private readonly channelId: string,
    readonly messageId: string,
    private readonly ids: string[],
  ) {
    this.throttle = new CoalescingThrottle(deps.editIntervalMs, () => this.flush());
  }

  get final(): boolean {
    return this.status !== "STREAMING";
  }

  /** Brings Discord up to date with the text; failures are retried later (transient) or recorded (Discord refused). */
  private async flush(): Promise<void> {
    if (this.finished || this.deps.signal.aborted) return;
    try {
      await this.sync();
      this.failures = 0;
    } catch (error) {
      if (this.deps.signal.aborted) return;
      if (error instanceof DiscordAPIError && !isTransient(error)) return this.fail(error);
      this.deps.log.warn({ err: error, messageId: this.messageId }, "posting a reply to Discord failed; trying again");
      await pause(backoff(this.deps.retry, ++this.failures, error), this.deps.signal).catch(() => undefined);
      this.throttle.request(this.final);
    }
  }

  private async sync(): Promise<void> {
    if (this.final && this.status === "COMPLETE" && this.text.trim() === "") {
      return this.record("POSTED"); // tool calls only: nothing to show
    }
    // The state as of now: events that arrive while Discord is called request another run, so a reply is recorded
    // POSTED only after Discord shows what it had when it finished (the buttons included).
    const { final, status } = this;
    const parts = splitMessage(renderReply(this.text, status));
    const channel = await sendable(this.deps.client, this.channelId);
    for (const [index, part] of parts.entries()) {
      // The 👍/👎 buttons go under a complete reply's last part (feedback.ts): a streaming one may still grow a part.
      const buttons = status === "COMPLETE" && index === parts.length - 1;
      const components = buttons ? [feedbackButtons(this.messageId)] : [];
      const shown = buttons ? `${part}\u0000buttons` : part; // what the part shows, buttons included (NUL is never in text)
      if (index < this.ids.length) {
        if (this.sent[index] !== shown) await channel.messages.edit(this.ids[index], { content: part, components, allowedMentions: NO_MENTIONS });
      } else {
        const posted = await channel.send({ content: part, components, nonce: partNonce(this.messageId, index), enforceNonce: true, allowedMentions: NO_MENTIONS });
        this.ids.push(posted.id);
        // Recorded before anything else is posted; the last part of a finished reply is recorded with POSTED below.
        if (!final || index < parts.length - 1) await this.record("POSTING");
      }
      this.sent[index] = shown;
    }
    if (final) await this.record("POSTED");
  }

  private async record(status: "POSTING" | "POSTED" | "FAILED", error?: string): Promise<void> {
    const input = { messageId: this.messageId, discordMessageIds: this.ids, status, error };
    const { recordDiscordPost } = await this.deps.transport.run<{ recordDiscordPost: { status: string } }>(RECORD_POST, { input });
    // Finished here, or (a second adapter on the same bot) somewhere else: either way, no more to do.
    if (recordDiscordPost.status !== "POSTING") this.finished = true;
  }

  private async fail(error: DiscordAPIError): Promise<void> {
    this.deps.log.error({ err: error, messageId: this.messageId, channelId: this.channelId }, "Discord refused a reply; it is marked FAILED");
    await this.record("FAILED", `Discord ${error.status}: ${error.message}`.slice(0, 500)).catch((recordError: unknown) => {
      this.deps.log.warn({ err: recordError, messageId: this.messageId }, "could not record a failed post; it will be tried again after a restart");
    });
    this.finished = true;
  }
}

/** The assistant side of one bound channel. */
export class ConversationPoster {
  private readonly replies = new Map<string, ReplyPost>();
  private iterator: AsyncIterableIterator<{ conversationEvents: EventData }> | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: PosterDeps,
    readonly conversationId: string,
    readonly channelId: string,
    /** The stream resumes after this seq. */
    private after: number,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const reply of this.replies.values()) reply.throttle.dispose();
    await this.iterator?.return?.();
    await this.running;
  }

  /** Resolves when every reply seen so far is in Discord as far as it can be now (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.replies.values()].map((reply) => reply.throttle.idle()));
  }

  private async loop(): Promise<void> {
    for (let failures = 0; !this.stopped; ) {
      try {
        this.iterator = await this.deps.transport.subscribe<{ conversationEvents: EventData }>(EVENTS, { id: this.conversationId, after: this.after });
        if (this.stopped) return void (await this.iterator.return?.());
        for await (const { conversationEvents: event } of this.iterator) {
          failures = 0;
          await this.handle(event);
        }
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof OperationError && error.code === ErrorCode.NOT_FOUND) return this.deps.onGone(this.channelId);
        this.deps.log.warn({ err: error, conversationId: this.conversationId }, "the conversation's event stream failed; subscribing again");
      }
      // Ended without an error only when the server shuts down; either way, subscribe again from where it was.
      await pause(backoff(this.deps.retry, ++failures), this.deps.signal).catch(() => undefined);
    }
  }

  private async handle(event: EventData): Promise<void> {
    if (event.__typename === "MessageDeltaEvent") {
      const reply = this.replies.get(event.messageId);
      if (reply && !reply.final && event.index === reply.chunks) {
        reply.text += event.text;
        reply.chunks += 1;
        reply.throttle.request();
      }
      return;
    }
    const message = event.message;
    if (event.__typename === "MessageAddedEvent") this.after = Math.max(this.after, message.seq);
    if (message.role !== "ASSISTANT") return;
    let reply = this.replies.get(message.id);
    if (!reply) {
      if (message.discordPost && message.discordPost.status !== "POSTING") return; // posted before
      reply = new ReplyPost(this.deps, this.channelId, message.id, [...(message.discordPost?.discordMessageIds ?? [])]);
      this.replies.set(message.id, reply);
    }
    Object.assign(reply, { text: message.content, chunks: message.chunkCount, status: message.status });
    // A new reply is posted, and a finished one written, before the next event: replies keep their order.
    reply.throttle.request(true);
    await reply.throttle.idle();
    if (reply.finished) this.replies.delete(message.id);
  }
}
