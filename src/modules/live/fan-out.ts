/**
 * Multiplexed live delivery: the subscribers of one conversation who asked the same thing, and may see the
 * same answer (audience.ts), form a group, and a group is served by ONE stream: per event, one read (shared
 * with the conversation's other groups, live.hub.ts), one execution of the selection, one serialisation, and
 * the same bytes written to every member's connection. 5,000 browser tabs on one conversation cost one
 * execution per message, not 5,000.
 *
 * What stays per subscriber:
 * - Access. After every access change the group checks each distinct viewer among its members, and ends
 *   exactly those who lost the conversation (NOT_FOUND, as a lone stream would), or moves them to the group
 *   of what they may now see.
 * - Pace. Before each read, a member whose connection holds more than LIVE_MAX_BUFFERED_BYTES not yet taken
 *   leaves the group with a copy of where the group stands; its own stream waits until its connection
 *   drains, then reads on from there. Nothing is queued for it meanwhile, and the others are not held back.
 *
 * Every subscriber starts in a group of its own, which catches up from its afterSeq. Whenever a group is up to
 * date and finds another group of the same key parked at the same place (sameFeedState), it hands over its
 * members and ends: catch-up and slow subscribers rejoin the crowd by themselves.
 */
import { execute, print, type DocumentNode, type ExecutionArgs, type GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import { actorFor, renewLoaders, type Actor, type ActorDeps } from "../actor";
import { AppError, unavailableError } from "../../graphql/errors";
import { viewerOf, type Viewer } from "../user/viewer";
import { audienceOf, keyVariables, shapeOf, type Shape } from "./audience";
import type { ConversationFeed } from "./conversation-feed";
import { finishResult, StreamError } from "./live-stream";
import { copyFeedState, openConversationStream, recheckAccess, sameFeedState, type FeedState, type StreamStep } from "./message-stream";

/** The transport's end of one subscription. */
export interface Sink {
  /** Sends one event's result, serialised: the same bytes for every member of a group. */
  send(payload: Buffer): void;
  /** Bytes written to the connection that it has not taken yet. */
  buffered(): number;
}

export interface FanOutDeps extends ActorDeps {
  schema: GraphQLSchema;
  formatError(error: GraphQLError): GraphQLFormattedError;
  /** Told, once per group woken by a notification, how long after it the group's first bytes went out (metrics). */
  delivered?(lagSeconds: number): void;
}

/** How often a member that fell behind looks whether its connection has drained. */
const DRAIN_POLL_MS = 25;

/** What the members of a group asked, alike for all of them. */
interface Request {
  conversationId: string;
  step: StreamStep<unknown>;
  document: DocumentNode;
  operationName: string | null | undefined;
  variableValues: ExecutionArgs["variableValues"];
  shape: Shape;
  /** Everything but the audience: the key of the groups this request can be in. */
  key: string;
}

class Member {
  group: Group | undefined;
  private ended = false;
  private finish!: () => void;
  /** Settles when the subscription is over; graphql-ws then sends `complete` (unless the client completed it). */
  readonly done = new Promise<void>((resolve) => (this.finish = resolve));

  constructor(
    readonly sink: Sink,
    public viewer: Viewer,
  ) {}

  /** Leaves the group; nothing more is sent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.group?.remove(this);
    this.group = undefined;
    this.finish();
  }

  /** What graphql-ws iterates: nothing (events are written past it), ending when the member does. */
  iterator(): AsyncIterableIterator<never> {
    const finished = (): IteratorResult<never> => ({ done: true, value: undefined });
    const iterator: AsyncIterableIterator<never> = {
      next: () => this.done.then(finished),
      return: () => {
        this.end();
        return Promise.resolve(finished());
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

const viewerKey = (viewer: Viewer) => `${viewer.id}:${viewer.role}:${viewer.apiKeyId ?? ""}`;

class Group {
  readonly members = new Set<Member>();
  /** Up to date and asleep until the conversation's next event: another group may hand its members over. */
  parked = false;
  /** Ending: no member may join it any more. */
  private stopped = false;
  private stream: AsyncIterableIterator<unknown> | undefined;
  /** When the notification that woke this group was heard; cleared once the lag is told. */
  private heard: number | undefined;

  constructor(
    private readonly fanOut: FanOut,
    readonly request: Request,
    readonly audience: string,
    readonly state: FeedState,
    /** Speaks for the members: its viewer is one of them (any: they share the audience). */
    private readonly actor: Actor,
  ) {}

  get key(): string {
    return `${this.request.key}\n${this.audience}`;
  }

  add(member: Member): void {
    member.group = this;
    this.members.add(member);
  }

  remove(member: Member): void {
    this.members.delete(member);
    if (this.members.size === 0) this.stop();
    else if (member.viewer === this.actor.viewer) this.actor.viewer = this.members.values().next().value!.viewer;
  }

  stop(): void {
    this.stopped = true;
    this.parked = false;
    this.fanOut.forget(this);
    void this.stream?.return?.();
  }

  start(): void {
    const { conversationId, step } = this.request;
    this.stream = openConversationStream(this.actor, conversationId, this.state, step, {
      recheck: () => this.recheck(),
      beforeRead: () => this.beforeRead(),
      idle: () => this.idle(),
    });
    void this.run(this.stream);
  }

  private async run(stream: AsyncIterableIterator<unknown>): Promise<void> {
    try {
      for await (const event of stream) await this.deliver(event, this.members);
    } catch (error) {
      // A bug: the stream itself turns errors into StreamError events. Its subscribers are told, not left hanging.
      this.actor.log.error({ err: error }, "live group failed");
      await this.deliver(new StreamError(error), this.members).catch(() => undefined);
    } finally {
      this.fanOut.forget(this);
      for (const member of [...this.members]) member.end();
    }
  }

  /** Executes the selection once for `event` and sends the same bytes to each of `to`. */
  private async deliver(event: unknown, to: Iterable<Member>): Promise<void> {
    const { document, operationName, variableValues } = this.request;
    const { schema, formatError } = this.fanOut.deps;
    const result = await execute({ schema, document, operationName, variableValues, rootValue: event, contextValue: this.actor });
    const payload = Buffer.from(JSON.stringify(finishResult(this.actor, result, formatError)));
    for (const member of to) if (member.group === this) member.sink.send(payload);
    if (this.heard !== undefined) {
      this.fanOut.deps.delivered?.((performance.now() - this.heard) / 1000);
      this.heard = undefined;
    }
  }

  /** Ends `members` with `error`, as their own stream would have ended. */
  private async endWith(members: Member[], error: unknown): Promise<void> {
    renewLoaders(this.actor);
    await this.deliver(new StreamError(error), members);
    for (const member of members) member.end();
  }

  /** After an access change: each distinct viewer checked once; those who lost the conversation end. */
  private async recheck(): Promise<void> {
    const byViewer = new Map<string, Member[]>();
    for (const member of this.members) {
      const key = viewerKey(member.viewer);
      byViewer.set(key, [...(byViewer.get(key) ?? []), member]);
    }
    for (const members of byViewer.values()) {
      const ctx = actorFor(this.fanOut.deps, members[0].viewer);
      try {
        await recheckAccess(ctx, this.request.conversationId);
      } catch (error) {
        if (!(error instanceof AppError) || unavailableError(error)) throw error; // the database away: the stream retries
        await this.endWith(members, error);
        continue;
      }
      const audience = await audienceOf(ctx, this.request.shape);
      if (audience !== this.audience) for (const member of members) this.fanOut.regroup(member, audience, this.state);
    }
    renewLoaders(this.actor);
  }

  /** Members whose connection is backed up leave with a copy of the group's place; one alone waits for it. */
  private async beforeRead(): Promise<void> {
    // Woken from parked: by a notification (a read after catching up or a recheck has none to time).
    if (this.parked) this.heard = this.actor.live?.heardAt(this.request.conversationId);
    this.parked = false;
    const limit = this.fanOut.deps.config.liveMaxBufferedBytes;
    if (this.members.size > 1) {
      for (const member of this.members) if (member.sink.buffered() > limit) this.fanOut.regroup(member, this.audience, this.state);
      return;
    }
    const [member] = this.members;
    while (member && member.group === this && member.sink.buffered() > limit / 2) await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }

  /** Up to date: joins a twin parked at the same place, if there is one (this group then ends). */
  private idle(): boolean {
    if (this.stopped) return true;
    const twin = this.fanOut.twinOf(this);
    if (!twin) {
      this.parked = true;
      return false;
    }
    for (const member of this.members) twin.add(member);
    this.members.clear();
    this.stop();
    return true;
  }
}

/** The groups of one process (one per server; every process multiplexes its own subscribers). */
export class FanOut {
  private readonly groups = new Map<string, Set<Group>>();

  constructor(readonly deps: FanOutDeps) {}

  /**
   * Serves `feed` (a checked conversation subscription, with its subscriber's actor) to `sink`. Returns what the
   * transport iterates: nothing, ending when the subscription does (its return() unsubscribes).
   */
  async join(feed: ConversationFeed<unknown>, args: ExecutionArgs, sink: Sink): Promise<AsyncIterableIterator<never>> {
    const { schema } = this.deps;
    const shape = shapeOf(schema, args.document, args.operationName);
    // The query's text (the parser keeps it), so equal documents parsed apart group together.
    const documentKey = args.document.loc?.source.body ?? print(args.document);
    const request: Request = {
      conversationId: feed.conversationId,
      step: feed.step,
      document: args.document,
      operationName: args.operationName,
      variableValues: args.variableValues,
      shape,
      key: [feed.conversationId, documentKey, args.operationName ?? "", keyVariables(shape, args.variableValues)].join("\n"),
    };
    const audience = await audienceOf(feed.ctx, shape);
    const member = new Member(sink, viewerOf(feed.ctx));
    // The subscriber's own actor speaks for its group until the group finds a twin.
    this.startGroup(request, audience, copyFeedState(feed.start), feed.ctx, member);
    return member.iterator();
  }

  /** Moves `member` to a group of its own at `state` (for `audience`); it finds its twin by itself once up to date. */
  regroup(member: Member, audience: string, state: FeedState): void {
    const request = member.group!.request;
    member.group!.remove(member);
    this.startGroup(request, audience, copyFeedState(state), actorFor(this.deps, member.viewer), member);
  }

  private startGroup(request: Request, audience: string, state: FeedState, actor: Actor, member: Member): void {
    const group = new Group(this, request, audience, state, actor);
    group.add(member);
    let set = this.groups.get(group.key);
    if (!set) this.groups.set(group.key, (set = new Set()));
    set.add(group);
    group.start();
  }

  /** A parked group of the same key at the same place, if any. */
  twinOf(group: Group): Group | undefined {
    for (const other of this.groups.get(group.key) ?? []) if (other !== group && other.parked && sameFeedState(other.state, group.state)) return other;
    return undefined;
  }

  forget(group: Group): void {
    const set = this.groups.get(group.key);
    set?.delete(group);
    if (set?.size === 0) this.groups.delete(group.key);
  }

  /** Groups and members open (for tests and metrics). */
  get size(): { groups: number; members: number } {
    let groups = 0;
    let members = 0;
    for (const set of this.groups.values()) for (const group of set) (groups++, (members += group.members.size));
    return { groups, members };
  }
}
