/**
 * Relaying a bound channel into its conversation: every message people write becomes addMessage(role USER,
 * requestId = the Discord message id) written for its author (upserted by Discord id); edits and deletions
 * become recordDiscordEdit / recordDiscordDeletion. Each channel has one queue, so its messages are stored in
 * the order Discord delivered them and an edit never overtakes the message it edits.
 *
 * Nothing is lost: a write that fails for a passing reason is repeated with the same requestId until it
 * succeeds (idempotent, so a repeat of a write that did succeed stores nothing twice), and after a start or a
 * gateway outage each bound channel is read back from Discord after the last message stored (backfill), so
 * messages sent meanwhile are stored once, in order. A gateway event delivered twice is the same requestId.
 *
 * When the guild's settings name allowedChannels, new messages in a bound channel they do not name are not
 * stored (the settings may have changed after the channel was bound).
 */
import { DiscordAPIError, type Client, type Message, type PartialMessage, type User, type GuildMember } from "discord.js";
import type { Logger } from "pino";
import { ErrorCode } from "../graphql/errors";
import { OperationError, type Transport } from "./transport";
import { ADD_MESSAGE, BINDING, RECORD_DELETION, RECORD_EDIT, UPSERT_USER, type BindingData } from "./operations";
import { bySnowflake, contentOf, describe, displayNameOf, isRelayable, snowflakeAt } from "./message-data";
import { retrying, StoppedError, type RetryPolicy } from "./retry";
import { userMessage } from "./replies";

export interface RelayDeps {
  client: Client;
  transport: Transport;
  log: Logger;
  retry: RetryPolicy;
  signal: AbortSignal;
  /** The conversation bound to the channel, if any. */
  conversationOf(channelId: string): string | undefined;
  /** The channel's conversation was archived or deleted elsewhere: stop relaying it. */
  onUnbound(channelId: string): void;
  /** Whether the guild's settings let the adapter serve the channel (thread: with its parent); see guild-configs.ts. */
  allows(guildId: string | null, channelId: string, parentId: string | null): Promise<boolean>;
}

/** Messages read per history request (Discord's maximum). */
const PAGE = 100;

export class Relay {
  private readonly queues = new Map<string, Promise<void>>();
  /** Discord user id → Parley user, so a known author costs no upsert unless their name changed. */
  private readonly users = new Map<string, { id: string; name: string }>();

  constructor(private readonly deps: RelayDeps) {}

  onCreate(message: Message | PartialMessage): void {
    if (!isRelayable(message)) return;
    this.whenBound(message.channelId, (conversationId) => this.store(conversationId, message));
  }

  onUpdate(message: Message | PartialMessage): void {
    if (!isRelayable(message)) return;
    this.whenBound(message.channelId, (conversationId) => this.edit(conversationId, message));
  }

  onDelete(message: Message | PartialMessage): void {
    this.whenBound(message.channelId, async (conversationId) => {
      const input = { conversationId, discordMessageId: message.id };
      await this.write(message.channelId, RECORD_DELETION, { input }, "deletion");
    });
  }

  /** Reads the channel's history after the last message stored and stores what is missing, oldest first. */
  backfill(channelId: string): void {
    this.enqueue(channelId, () => this.catchUp(channelId));
  }

  /** The Parley user for a Discord user, created or renamed as needed. */
  async userFor(user: User, member: GuildMember | null | undefined): Promise<string> {
    const name = displayNameOf(user, member);
    const known = this.users.get(user.id);
    if (known?.name === name) return known.id;
    const input = { discordId: user.id, displayName: name };
    const { upsertDiscordUser } = await this.retry(() => this.deps.transport.run<{ upsertDiscordUser: { id: string } }>(UPSERT_USER, { input }));
    this.users.set(user.id, { id: upsertDiscordUser.id, name });
    return upsertDiscordUser.id;
  }

  /** Resolves when every queued task has run (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size) await Promise.all(this.queues.values());
  }

  private whenBound(channelId: string, task: (conversationId: string) => Promise<void>): void {
    if (!this.deps.conversationOf(channelId)) return;
    // The binding is looked up again when the task runs: a /parley stop queued before it wins.
    this.enqueue(channelId, async () => {
      const conversationId = this.deps.conversationOf(channelId);
      if (conversationId) await task(conversationId);
    });
  }

  private enqueue(channelId: string, task: () => Promise<void>): void {
    const tail = (this.queues.get(channelId) ?? Promise.resolve()).then(task).catch((error: unknown) => {
      if (!(error instanceof StoppedError)) this.deps.log.error({ err: error, channelId }, "relaying a Discord event failed");
    });
    this.queues.set(channelId, tail);
    void tail.then(() => {
      if (this.queues.get(channelId) === tail) this.queues.delete(channelId);
    });
  }

  private retry<T>(task: () => Promise<T>): Promise<T> {
    return retrying(task, {
      policy: this.deps.retry,
      signal: this.deps.signal,
      onRetry: (error, attempt) => this.deps.log.warn({ err: error, attempt }, "a Discord relay step failed; trying again"),
    });
  }

  private async store(conversationId: string, message: Message): Promise<void> {
    // Only new messages are held back: edits and deletions touch what was stored while the channel was served.
    const channel = message.channel as Message["channel"] | null; // null when discord.js has not cached it
    const parentId = channel?.isThread() ? channel.parentId : null;
    if (!(await this.retry(() => this.deps.allows(message.guildId, message.channelId, parentId)))) return;
    const actAs = await this.userFor(message.author, message.member);
    const input = { conversationId, role: "USER", content: contentOf(message), requestId: message.id, actAs, metadata: { discord: describe(message) } };
    const refused = await this.write(message.channelId, ADD_MESSAGE, { input }, "message");
    // A different text under the same requestId: the message was stored and edited since; this is a late copy.
    if (refused && !(refused.code === ErrorCode.CONFLICT && !refused.reason)) await this.tell(message, refused);
  }

  private async edit(conversationId: string, message: Message): Promise<void> {
    const input = { conversationId, discordMessageId: message.id, content: contentOf(message), editedAt: message.editedAt, discord: describe(message) };
    await this.write(message.channelId, RECORD_EDIT, { input }, "edit");
  }

  /**
   * Runs a write, repeating it while it fails for a passing reason. Refusals are answered here as far as they
   * concern the binding (archived or deleted: unbound); the refusal is returned for the caller to report.
   * NOT_FOUND for an edit or deletion means the message was never stored (sent before the binding): ignored.
   */
  private async write(channelId: string, document: string, variables: Record<string, unknown>, what: string): Promise<OperationError | undefined> {
    try {
      await this.retry(() => this.deps.transport.run(document, variables));
      return undefined;
    } catch (error) {
      if (!(error instanceof OperationError)) throw error;
      if (error.reason === "CONVERSATION_ARCHIVED" || (error.code === ErrorCode.NOT_FOUND && !(await this.stillBound(channelId)))) {
        this.deps.onUnbound(channelId);
        return undefined;
      }
      if (what !== "message" && error.code === ErrorCode.NOT_FOUND) return undefined; // sent before the binding: never stored
      this.deps.log.warn({ err: error, channelId, code: error.code }, `Parley refused a relayed Discord ${what}`);
      return what === "message" ? error : undefined;
    }
  }

  /** Whether Parley still binds the channel to a conversation the adapter can reach. */
  private async stillBound(channelId: string): Promise<boolean> {
    const { discordBinding } = await this.retry(() => this.deps.transport.run<{ discordBinding: BindingData | null }>(BINDING, { channelId }));
    return discordBinding !== null;
  }

  /** Tells the channel that a message could not be stored (a reply to it, pinging no one). */
  private async tell(message: Message, error: OperationError): Promise<void> {
    await message
      .reply({ content: `⚠️ Parley could not store this message. ${userMessage(error)}`, allowedMentions: { parse: [], repliedUser: false } })
      .catch((replyError: unknown) => this.deps.log.warn({ err: replyError, messageId: message.id }, "could not tell the channel about a refused message"));
  }

  private async catchUp(channelId: string): Promise<void> {
    // Where to start is read now, after everything queued before: what they stored is not fetched again.
    const { discordBinding: binding } = await this.retry(() => this.deps.transport.run<{ discordBinding: BindingData | null }>(BINDING, { channelId }));
    if (!binding) return this.deps.onUnbound(channelId);
    let after = binding.lastRelayedMessageId ?? snowflakeAt(new Date(binding.conversation.createdAt));
    try {
      const channel = await this.retry(() => this.deps.client.channels.fetch(channelId));
      if (!channel?.isTextBased()) throw new Error(`channel ${channelId} has no messages to read`);
      for (;;) {
        const page = await this.retry(() => channel.messages.fetch({ after, limit: PAGE, cache: false }));
        const messages = [...page.values()].sort((a, b) => bySnowflake(a.id, b.id));
        for (const message of messages) {
          if (isRelayable(message) && this.deps.conversationOf(channelId) === binding.conversation.id) await this.store(binding.conversation.id, message);
        }
        if (page.size < PAGE) break;
        after = messages[messages.length - 1].id;
      }
    } catch (error) {
      if (!(error instanceof DiscordAPIError)) throw error;
      // Discord refuses the history for good (no access to the channel any more): nothing to read.
      this.deps.log.error({ err: error, channelId }, "could not read the channel's history from Discord");
    }
  }
}
