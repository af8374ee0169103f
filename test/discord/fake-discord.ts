/**
 * A stand-in for Discord on 127.0.0.1, so discord.js runs for real with no Discord network: its REST calls
 * (`rest: { api }`, see STACK.md) come here and are recorded, with JSON and multipart bodies, and answered the
 * way Discord answers (including 429s with retry-after when a test asks for one); its gateway connection comes
 * here too (the URL is what GET /gateway/bot answers) and gets HELLO, READY and a GUILD_CREATE, then whatever
 * dispatches a test sends. discord.js parses all of it itself, so the adapter sees real Message and
 * Interaction objects. Channel histories are kept, so history reads (backfill) return what was "sent".
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export const BOT_ID = "100000000000000001";
export const APPLICATION_ID = "100000000000000002";
export const GUILD_ID = "100000000000000010";
export const CHANNEL_ID = "100000000000000011";
export const OTHER_CHANNEL_ID = "100000000000000012";
export const THREAD_ID = "100000000000000013";
export const TOKEN = "fake-bot-token";

const DISCORD_EPOCH = 1420070400000n;
/** Every permission bit: what an administrator has. */
export const ALL_PERMISSIONS = "2251799813685247";
/** View Channel + Send Messages + Read Message History: a plain member without Manage Channels. */
export const MEMBER_PERMISSIONS = String((1n << 10n) | (1n << 11n) | (1n << 16n));

export interface RawUser {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: null;
  bot?: boolean;
}

export interface RawMessage {
  id: string;
  channel_id: string;
  guild_id?: string;
  author: RawUser;
  member?: Record<string, unknown>;
  content: string;
  timestamp: string;
  edited_timestamp: string | null;
  type: number;
  attachments: Record<string, unknown>[];
  embeds: Record<string, unknown>[];
  [key: string]: unknown;
}

export interface RecordedCall {
  method: string;
  /** Without the /api/v10 prefix, e.g. /channels/1/messages. */
  path: string;
  query: URLSearchParams;
  /** The JSON body (for multipart: the payload_json part). */
  body: any;
  files: { name: string; contentType: string; data: Buffer }[];
  headers: http.IncomingHttpHeaders;
  status: number;
}

let sequence = 0n;
/** Discord-like ids: time-ordered, never repeated in this process. */
export function snowflake(at = Date.now()): string {
  sequence = (sequence + 1n) & 0xfffn;
  return (((BigInt(at) - DISCORD_EPOCH) << 22n) | (1n << 17n) | sequence).toString();
}

export function discordUser(id: string, name: string): RawUser {
  return { id, username: name.toLowerCase().replace(/\W/g, ""), global_name: name, discriminator: "0", avatar: null };
}

const BOT = { ...discordUser(BOT_ID, "Parley"), bot: true };

function textChannel(id: string, name: string) {
  return { id, type: 0, guild_id: GUILD_ID, name, position: 0, permission_overwrites: [], nsfw: false, parent_id: null, topic: null, last_message_id: null, rate_limit_per_user: 0 };
}

function guildPayload() {
  return {
    id: GUILD_ID,
    name: "Test Guild",
    icon: null,
    owner_id: "100000000000000099",
    unavailable: false,
    large: false,
    member_count: 3,
    joined_at: new Date().toISOString(),
    features: [],
    roles: [{ id: GUILD_ID, name: "@everyone", permissions: MEMBER_PERMISSIONS, position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
    emojis: [],
    stickers: [],
    members: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    channels: [textChannel(CHANNEL_ID, "general"), textChannel(OTHER_CHANNEL_ID, "random")],
    threads: [
      {
        id: THREAD_ID,
        type: 11,
        guild_id: GUILD_ID,
        parent_id: CHANNEL_ID,
        name: "a thread",
        owner_id: "100000000000000099",
        message_count: 0,
        member_count: 1,
        rate_limit_per_user: 0,
        thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
      },
    ],
  };
}

interface Injected {
  method: string;
  path: RegExp;
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

export class FakeDiscord {
  readonly calls: RecordedCall[] = [];
  /** Messages per channel, oldest first: what users "sent" and what the bot posted. */
  readonly history = new Map<string, RawMessage[]>();
  /** Gateway sessions seen: IDENTIFY and RESUME payloads, in order. */
  readonly gatewayLog: { op: number; d: any }[] = [];
  private readonly injected: Injected[] = [];
  private readonly nonces = new Map<string, RawMessage>();
  private socket: WebSocket | undefined;
  private seq = 0;
  private interactions = 0;

  private constructor(
    private readonly server: http.Server,
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeDiscord> {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, path: "/gateway" });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const fake = new FakeDiscord(server, wss, `http://127.0.0.1:${port}`);
    server.on("request", (req, res) => void fake.handle(req, res));
    wss.on("connection", (socket) => fake.connect(socket));
    return fake;
  }

  /** The REST base for discord.js (`rest: { api }`, DISCORD_API_URL). */
  get apiUrl(): string {
    return `${this.url}/api`;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- REST -------------------------------------------------------------------------------------------

  /** The next request matching `method` and `path` is answered with `status` (once). */
  failNext(method: string, path: RegExp, status: number, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): void {
    this.injected.push({ method, path, status, body, headers });
  }

  /** The next matching request gets a 429 with retry-after (seconds, fractions allowed), as Discord sends it. */
  rateLimitNext(method: string, path: RegExp, retryAfter = 0.2): void {
    this.failNext(
      method,
      path,
      429,
      { message: "You are being rate limited.", retry_after: retryAfter, global: false },
      { "retry-after": String(retryAfter), "x-ratelimit-scope": "user", "x-ratelimit-bucket": "fake-bucket" },
    );
  }

  callsTo(method: string, path: RegExp): RecordedCall[] {
    return this.calls.filter((call) => call.method === method && path.test(call.path));
  }

  /** Waits (bounded) until `count` recorded calls match; returns them. */
  async waitForCalls(method: string, path: RegExp, count = 1, timeoutMs = 20_000): Promise<RecordedCall[]> {
    await waitFor(() => this.callsTo(method, path).filter((call) => call.status < 400).length >= count, timeoutMs, `${count} × ${method} ${path}`);
    return this.callsTo(method, path).filter((call) => call.status < 400);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", this.url);
    const path = url.pathname.replace(/^\/api\/v\d+/, "");
    const method = req.method ?? "GET";
    const { body, files } = await parseBody(raw, req.headers["content-type"]);
    const call: RecordedCall = { method, path, query: url.searchParams, body, files, headers: req.headers, status: 200 };
    this.calls.push(call);
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      if (payload === undefined) {
        res.writeHead(status, headers).end();
        return;
      }
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(payload));
    };
    const injected = this.injected.findIndex((rule) => rule.method === method && rule.path.test(path));
    if (injected >= 0) {
      const [rule] = this.injected.splice(injected, 1);
      return send(rule.status, rule.body, rule.headers);
    }
    const answer = this.route(method, path, url.searchParams, body);
    if (answer === undefined) return send(404, { message: "404: Not Found", code: 0 });
    return send(answer[0], answer[1]);
  }

  private route(method: string, path: string, query: URLSearchParams, body: any): [number, unknown?] | undefined {
    let match: RegExpMatchArray | null;
    if (method === "GET" && path === "/gateway/bot") {
      return [200, { url: this.url.replace("http", "ws") + "/gateway", shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } }];
    }
    if ((match = path.match(/^\/channels\/(\d+)$/)) && method === "GET") {
      const channel = [...guildPayload().channels, ...guildPayload().threads].find((c) => c.id === match![1]);
      return channel ? [200, channel] : [404, { message: "Unknown Channel", code: 10003 }];
    }
    if ((match = path.match(/^\/channels\/(\d+)\/messages$/))) {
      const channelId = match[1];
      if (method === "GET") return [200, this.page(channelId, query)];
      if (method === "POST") return [200, this.postBotMessage(channelId, body)];
    }
    if ((match = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/)) && method === "PATCH") {
      const message = this.history.get(match[1])?.find((m) => m.id === match![2]);
      if (!message) return [404, { message: "Unknown Message", code: 10008 }];
      Object.assign(message, { content: body.content ?? message.content, edited_timestamp: new Date().toISOString() });
      return [200, message];
    }
    if (method === "POST" && /^\/interactions\/\d+\/[^/]+\/callback$/.test(path)) return [204];
    if (method === "PUT" && /^\/applications\/\d+(\/guilds\/\d+)?\/commands$/.test(path)) {
      return [200, (body as Record<string, unknown>[]).map((command, index) => ({ ...command, id: `20000000000000000${index}`, application_id: APPLICATION_ID, version: "1" }))];
    }
    return undefined;
  }

  /** GET /channels/:id/messages?after=&limit=: the oldest `limit` after `after`, newest first (Discord's order). */
  private page(channelId: string, query: URLSearchParams): RawMessage[] {
    const after = BigInt(query.get("after") ?? "0");
    const limit = Number(query.get("limit") ?? "50");
    const newer = (this.history.get(channelId) ?? []).filter((m) => BigInt(m.id) > after);
    return newer.slice(0, limit).reverse();
  }

  private postBotMessage(channelId: string, body: any): RawMessage {
    // enforce_nonce: the same nonce again returns the message it created, and creates nothing.
    if (body.enforce_nonce && body.nonce && this.nonces.has(body.nonce)) return this.nonces.get(body.nonce)!;
    const message = this.message(channelId, BOT, body.content ?? "", { nonce: body.nonce, message_reference: body.message_reference });
    this.addToHistory(message);
    if (body.enforce_nonce && body.nonce) this.nonces.set(body.nonce, message);
    // Discord tells the bot of its own messages too; the adapter must not relay them back.
    if (this.connected) this.send("MESSAGE_CREATE", message);
    return message;
  }

  // ---- messages ---------------------------------------------------------------------------------------

  message(channelId: string, author: RawUser, content: string, extra: Record<string, unknown> = {}): RawMessage {
    const id = snowflake();
    return {
      id,
      channel_id: channelId,
      guild_id: GUILD_ID,
      author,
      ...(author.bot ? {} : { member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, nick: null } }),
      content,
      timestamp: new Date(Number((BigInt(id) >> 22n) + DISCORD_EPOCH)).toISOString(),
      edited_timestamp: null,
      type: 0,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      pinned: false,
      flags: 0,
      components: [],
      ...extra,
    };
  }

  addToHistory(message: RawMessage): void {
    const list = this.history.get(message.channel_id) ?? [];
    list.push(message);
    this.history.set(message.channel_id, list);
  }

  /** A user writes in a channel: stored in its history and, unless `dispatch` is false (the bot is away), sent over the gateway. */
  say(channelId: string, author: RawUser, content: string, options: { dispatch?: boolean; extra?: Record<string, unknown> } = {}): RawMessage {
    const message = this.message(channelId, author, content, options.extra);
    this.addToHistory(message);
    if (options.dispatch !== false) this.dispatch("MESSAGE_CREATE", message);
    return message;
  }

  botMessages(channelId: string): RawMessage[] {
    return (this.history.get(channelId) ?? []).filter((m) => m.author.id === BOT_ID);
  }

  // ---- gateway ----------------------------------------------------------------------------------------

  private connect(socket: WebSocket): void {
    this.socket = socket;
    const send = (payload: unknown) => socket.send(JSON.stringify(payload));
    send({ op: 10, d: { heartbeat_interval: 45_000 }, s: null, t: null });
    socket.on("message", (data) => {
      const payload = JSON.parse(String(data)) as { op: number; d: any };
      if (payload.op === 1) return send({ op: 11 });
      if (payload.op === 2 || payload.op === 6) this.gatewayLog.push(payload);
      if (payload.op === 2) {
        this.send("READY", {
          v: 10,
          user: BOT,
          guilds: [{ id: GUILD_ID, unavailable: true }],
          session_id: `session-${this.gatewayLog.length}`,
          resume_gateway_url: this.url.replace("http", "ws") + "/gateway",
          application: { id: APPLICATION_ID, flags: 0 },
          shard: [0, 1],
        });
        this.send("GUILD_CREATE", guildPayload());
      }
      // A resumed session replays nothing here: what happened meanwhile is for the adapter's backfill to find.
      if (payload.op === 6) this.send("RESUMED", {});
    });
  }

  private send(t: string, d: unknown): void {
    this.socket?.send(JSON.stringify({ op: 0, t, s: ++this.seq, d }));
  }

  /** Sends a gateway dispatch (MESSAGE_CREATE, MESSAGE_UPDATE, INTERACTION_CREATE, ...) to the connected client. */
  dispatch(t: string, d: unknown): void {
    if (!this.socket) throw new Error("no gateway connection");
    this.send(t, d);
  }

  /** Drops the gateway connection as Discord does on a hiccup (4000: unknown error, resumable). */
  dropGateway(code = 4000): void {
    this.socket?.close(code, "fake outage");
    this.socket = undefined;
  }

  get connected(): boolean {
    return this.socket?.readyState === 1;
  }

  /** A user runs `/parley <sub>` in a channel; resolves to the interaction id, whose reply `interactionReply` waits for. */
  command(channelId: string, user: RawUser, sub: string, options: { name: string; type: number; value: unknown }[] = [], permissions = ALL_PERMISSIONS): string {
    const id = snowflake();
    const channel = [...guildPayload().channels, ...guildPayload().threads].find((c) => c.id === channelId);
    this.dispatch("INTERACTION_CREATE", {
      id,
      application_id: APPLICATION_ID,
      type: 2,
      token: `token-${++this.interactions}`,
      version: 1,
      guild_id: GUILD_ID,
      channel_id: channelId,
      channel,
      member: { user, roles: [], permissions, joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, nick: null, pending: false },
      app_permissions: ALL_PERMISSIONS,
      locale: "en-US",
      guild_locale: "en-US",
      entitlements: [],
      authorizing_integration_owners: { "0": GUILD_ID },
      context: 0,
      data: { id: "200000000000000000", name: "parley", type: 1, guild_id: GUILD_ID, options: [{ type: 1, name: sub, options }] },
    });
    return id;
  }

  /** The callback the bot sent for interaction `id`: { type, data: { content, flags, ... } }, with its files. */
  async interactionReply(id: string): Promise<RecordedCall> {
    const path = new RegExp(`^/interactions/${id}/[^/]+/callback$`);
    const [call] = await this.waitForCalls("POST", path);
    return call;
  }
}

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = "a condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A JSON body, or a multipart one (discord.js sends files that way): payload_json plus the files. */
async function parseBody(raw: Buffer, contentType: string | undefined): Promise<{ body: any; files: RecordedCall["files"] }> {
  if (!raw.length) return { body: undefined, files: [] };
  if (contentType?.startsWith("multipart/form-data")) {
    const form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
    const files: RecordedCall["files"] = [];
    let body: any;
    for (const [name, value] of form.entries()) {
      if (name === "payload_json") body = JSON.parse(String(value));
      else if (typeof value !== "string") files.push({ name: value.name, contentType: value.type, data: Buffer.from(await value.arrayBuffer()) });
    }
    return { body, files };
  }
  return { body: JSON.parse(raw.toString("utf8")), files: [] };
}
