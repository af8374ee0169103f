/**
 * The Discord adapter's part of the schema, over HTTP as any client would call it: channel bindings with their
 * resume points, recordDiscordPost and Message.discordPost, recordDiscordEdit and recordDiscordDeletion (with
 * and without encryption at rest). Who may call what is covered here and in test/api/isolation.test.ts.
 */
import { randomBytes } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp;
let adapter: TestUser; // the Discord adapter's service
let worker: TestUser; // an AI worker, also granted DISCORD
let admin: TestUser;
let counter = 0;
const snowflake = () => String(800_000_000_000_000_000n + BigInt(++counter));

const UPSERT = `mutation($id: String!) { upsertDiscordUser(input: { discordId: $id, displayName: "Someone" }) { id } }`;
const CREATE = `mutation($in: CreateConversationInput!) { createConversation(input: $in) { id } }`;
const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id seq } }`;
const BINDING = `query($c: String!) { discordBinding(channelId: $c) { channelId guildId lastRelayedMessageId resumeAfterSeq conversation { id } } }`;
const POST = `mutation($in: RecordDiscordPostInput!) { recordDiscordPost(input: $in) { status discordMessageIds channelId error } }`;
const EDIT = `mutation($in: RecordDiscordEditInput!) { recordDiscordEdit(input: $in) { id content metadata } }`;
const DELETE = `mutation($in: DiscordMessageRef!) { recordDiscordDeletion(input: $in) { id content metadata } }`;

/** A channel bound to a new conversation owned by a Discord user; returns ids. */
async function boundChannel(target = app, service = adapter) {
  const channelId = snowflake();
  const { upsertDiscordUser: user } = await target.ok(UPSERT, { id: snowflake() }, service.token);
  const { createConversation } = await target.ok(CREATE, { in: { origin: "DISCORD", ownerId: user.id, discordGuildId: "1", discordChannelId: channelId } }, service.token);
  return { channelId, conversationId: createConversation.id as string, userId: user.id as string };
}

/** A message relayed the way the adapter relays one; returns its Discord id. */
async function relay(conversationId: string, userId: string, content: string, target = app, service = adapter) {
  const discordMessageId = snowflake();
  const metadata = { discord: { messageId: discordMessageId, attachments: [] } };
  await target.ok(ADD, { in: { conversationId, content, requestId: discordMessageId, actAs: userId, metadata } }, service.token);
  return discordMessageId;
}

beforeAll(async () => {
  app = await createTestApp();
  adapter = await app.makeUser(Role.SERVICE, "adapter");
  await app.grant(adapter, { origin: "discord" });
  worker = await app.makeUser(Role.SERVICE, "worker");
  await app.grant(worker, { origin: "discord" });
  admin = await app.makeUser(Role.ADMIN);
});
afterAll(() => app.dispose());

describe("discordBinding and discordBindings", () => {
  it("give a channel's active conversation with the newest relayed Discord id and where posting resumes", async () => {
    const { channelId, conversationId, userId } = await boundChannel();
    expect((await app.ok(BINDING, { c: channelId }, adapter.token)).discordBinding).toEqual({
      channelId,
      guildId: "1",
      lastRelayedMessageId: null,
      resumeAfterSeq: 0,
      conversation: { id: conversationId },
    });
    const first = await relay(conversationId, userId, "one");
    const { addMessage: reply } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "answer" } }, worker.token);
    const second = await relay(conversationId, userId, "two");
    // A message the member wrote themselves, with a made-up Discord id, does not move the backfill point.
    const { createApiKey } = await app.ok(`mutation($u: UUID!) { createApiKey(name: "own", userId: $u) { key } }`, { u: userId }, admin.token);
    await app.ok(ADD, { in: { conversationId, content: "spoof", metadata: { discord: { messageId: "999999999999999999999" } } } }, createApiKey.key);

    let binding = (await app.ok(BINDING, { c: channelId }, adapter.token)).discordBinding;
    expect(binding).toMatchObject({ lastRelayedMessageId: second, resumeAfterSeq: reply.seq - 1 });
    expect(first < second).toBe(true);

    await app.ok(POST, { in: { messageId: reply.id, discordMessageIds: [snowflake()], status: "POSTING" } }, adapter.token);
    expect((await app.ok(BINDING, { c: channelId }, adapter.token)).discordBinding.resumeAfterSeq).toBe(reply.seq - 1); // not finished yet
    await app.ok(POST, { in: { messageId: reply.id, discordMessageIds: [snowflake()], status: "POSTED" } }, adapter.token);
    binding = (await app.ok(BINDING, { c: channelId }, adapter.token)).discordBinding;
    expect(binding.resumeAfterSeq).toBe(4); // everything posted: the conversation's last seq

    const { discordBindings } = await app.ok(`{ discordBindings(first: 100) { edges { node { channelId } } } }`, {}, adapter.token);
    expect(discordBindings.edges.map((edge: { node: { channelId: string } }) => edge.node.channelId)).toContain(channelId);
  });

  it("forget a channel once its conversation is archived, and never list other origins", async () => {
    const { channelId, conversationId } = await boundChannel();
    await app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: conversationId }, adapter.token);
    expect((await app.ok(BINDING, { c: channelId }, adapter.token)).discordBinding).toBeNull();
    const { createConversation: web } = await app.ok(CREATE, { in: { title: "web" } }, admin.token);
    const { discordBindings } = await app.ok(`{ discordBindings(first: 100) { edges { node { channelId conversation { id } } } } }`, {}, admin.token);
    const ids = discordBindings.edges.map((edge: { node: { conversation: { id: string } } }) => edge.node.conversation.id);
    expect(ids).not.toContain(conversationId);
    expect(ids).not.toContain(web.id);
    expect(await app.errorCode(BINDING, { c: "not-a-snowflake" }, adapter.token)).toBe("BAD_USER_INPUT");
  });
});

describe("recordDiscordPost and Message.discordPost", () => {
  it("records the parts as they are posted; POSTED is final; only the adapter (and admins) see it", async () => {
    const { conversationId, channelId, userId } = await boundChannel();
    const { addMessage: reply } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "hi" } }, worker.token);
    const [a, b] = [snowflake(), snowflake()];
    expect((await app.ok(POST, { in: { messageId: reply.id, discordMessageIds: [a], status: "POSTING" } }, adapter.token)).recordDiscordPost).toEqual({
      status: "POSTING",
      discordMessageIds: [a],
      channelId,
      error: null,
    });
    await app.ok(POST, { in: { messageId: reply.id, discordMessageIds: [a, b], status: "POSTED" } }, adapter.token);
    // A late record (a retry that arrives after the end) changes nothing.
    const late = (await app.ok(POST, { in: { messageId: reply.id, discordMessageIds: [a], status: "POSTING" } }, adapter.token)).recordDiscordPost;
    expect(late).toMatchObject({ status: "POSTED", discordMessageIds: [a, b] });

    const read = `query($m: UUID!) { message(id: $m) { discordPost { status discordMessageIds } } }`;
    expect((await app.ok(read, { m: reply.id }, adapter.token)).message.discordPost).toEqual({ status: "POSTED", discordMessageIds: [a, b] });
    expect((await app.ok(read, { m: reply.id }, admin.token)).message.discordPost).toEqual({ status: "POSTED", discordMessageIds: [a, b] });
    const { createApiKey } = await app.ok(`mutation($u: UUID!) { createApiKey(name: "own", userId: $u) { key } }`, { u: userId }, admin.token);
    expect((await app.ok(read, { m: reply.id }, createApiKey.key)).message.discordPost).toBeNull(); // the owner is no adapter
  });

  it("loads the posts of a page of messages in one statement", async () => {
    const { conversationId } = await boundChannel();
    for (let i = 0; i < 10; i++) {
      const { addMessage } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: `reply ${i}` } }, worker.token);
      await app.ok(POST, { in: { messageId: addMessage.id, discordMessageIds: [snowflake()], status: "POSTED" } }, adapter.token);
    }
    const statements: string[] = [];
    const listen = (query: { sql: string }) => statements.push(query.sql);
    app.database.db.knex.on("query", listen);
    try {
      const page = `query($c: UUID!) { conversation(id: $c) { messages(last: 10) { edges { node { discordPost { status } } } } } }`;
      const { conversation } = await app.ok(page, { c: conversationId }, adapter.token);
      expect(conversation.messages.edges.map((edge: { node: { discordPost: { status: string } } }) => edge.node.discordPost.status)).toEqual(Array(10).fill("POSTED"));
    } finally {
      app.database.db.knex.off("query", listen);
    }
    expect(statements.filter((sql) => sql.includes("discord_posts"))).toHaveLength(1);
  });

  it("refuses USER messages, unbound conversations and bad ids with BAD_USER_INPUT", async () => {
    const { conversationId, userId } = await boundChannel();
    const { addMessage: user } = await app.ok(ADD, { in: { conversationId, content: "x", actAs: userId } }, adapter.token);
    expect(await app.errorCode(POST, { in: { messageId: user.id, discordMessageIds: [], status: "POSTED" } }, adapter.token)).toBe("BAD_USER_INPUT");
    const { createConversation: unbound } = await app.ok(CREATE, { in: { origin: "DISCORD", ownerId: userId } }, adapter.token);
    const { addMessage: loose } = await app.ok(ADD, { in: { conversationId: unbound.id, role: "ASSISTANT", content: "x" } }, worker.token);
    expect(await app.errorCode(POST, { in: { messageId: loose.id, discordMessageIds: [], status: "POSTED" } }, adapter.token)).toBe("BAD_USER_INPUT");
    const { addMessage: reply } = await app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content: "x" } }, worker.token);
    expect(await app.errorCode(POST, { in: { messageId: reply.id, discordMessageIds: ["12a"], status: "POSTED" } }, adapter.token)).toBe("BAD_USER_INPUT");
    expect(await app.database.db.knex("discord_posts").whereIn("messageId", [user.id, loose.id, reply.id])).toEqual([]);
  });
});

describe("recordDiscordEdit and recordDiscordDeletion", () => {
  it("replace the text keeping an edit history, then empty it and mark it deleted; later edits change nothing", async () => {
    const { conversationId, userId } = await boundChannel();
    const discordMessageId = await relay(conversationId, userId, "first");
    const ref = { conversationId, discordMessageId };
    const edited = (await app.ok(EDIT, { in: { ...ref, content: "second", editedAt: "2026-11-23T10:00:00.000Z", discord: { messageId: discordMessageId, attachments: [{ name: "a.png" }] } } }, adapter.token)).recordDiscordEdit;
    expect(edited.content).toBe("second");
    expect(edited.metadata.discord).toEqual({
      messageId: discordMessageId,
      attachments: [{ name: "a.png" }],
      edits: [{ editedAt: "2026-11-23T10:00:00.000Z", previousContent: "first" }],
    });
    // The same edit again (a redelivered event) adds nothing; an embed-only update keeps the history as it is.
    const again = (await app.ok(EDIT, { in: { ...ref, content: "second", editedAt: "2026-11-23T10:00:00.000Z", discord: { messageId: discordMessageId, attachments: [{ name: "a.png" }] } } }, adapter.token)).recordDiscordEdit;
    expect(again.metadata).toEqual(edited.metadata);

    const deleted = (await app.ok(DELETE, { in: ref }, adapter.token)).recordDiscordDeletion;
    expect(deleted.content).toBe("");
    expect(deleted.metadata.discord.deletedAt).toEqual(expect.any(String));
    expect(deleted.metadata.discord.edits).toEqual([{ editedAt: "2026-11-23T10:00:00.000Z" }]);
    const after = (await app.ok(EDIT, { in: { ...ref, content: "resurrected" } }, adapter.token)).recordDiscordEdit;
    expect(after).toEqual(deleted);
    expect((await app.ok(DELETE, { in: ref }, adapter.token)).recordDiscordDeletion).toEqual(deleted); // idempotent
  });

  it("are for the service that relayed the message: another DISCORD service is FORBIDDEN, unknown messages NOT_FOUND, archived CONFLICT", async () => {
    const { conversationId, userId } = await boundChannel();
    const discordMessageId = await relay(conversationId, userId, "mine");
    const ref = { conversationId, discordMessageId };
    expect(await app.errorCode(EDIT, { in: { ...ref, content: "theirs" } }, worker.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(DELETE, { in: ref }, worker.token)).toBe("FORBIDDEN");
    expect(await app.errorCode(EDIT, { in: { ...ref, discordMessageId: snowflake(), content: "x" } }, adapter.token)).toBe("NOT_FOUND");
    expect(await app.errorCode(EDIT, { in: { ...ref, content: "x".repeat(1001) } }, adapter.token)).toBe("BAD_USER_INPUT");
    await app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: conversationId }, adapter.token);
    expect(await app.errorCode(EDIT, { in: { ...ref, content: "late" } }, adapter.token)).toBe("CONFLICT");
    const [row] = await app.database.db.knex("messages").where({ conversationId, requestId: discordMessageId }).select("content");
    expect(row.content).toBe("mine");
  });
});

describe("with encryption at rest", () => {
  let secure: TestApp;
  let service: TestUser;

  beforeAll(async () => {
    secure = await createTestApp({ MESSAGE_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}` });
    service = await secure.makeUser(Role.SERVICE, "adapter");
    await secure.grant(service, { origin: "discord" });
  });
  afterAll(() => secure.dispose());

  it("stores an edit encrypted and keeps no old text in the (unencrypted) metadata", async () => {
    const { conversationId, userId } = await boundChannel(secure, service);
    const discordMessageId = await relay(conversationId, userId, "the old secret", secure, service);
    const { recordDiscordEdit } = await secure.ok(EDIT, { in: { conversationId, discordMessageId, content: "the new secret" } }, service.token);
    expect(recordDiscordEdit.content).toBe("the new secret");
    expect(recordDiscordEdit.metadata.discord.edits).toEqual([{ editedAt: expect.any(String) }]);
    const row = await secure.database.db.knex("messages").where({ conversationId, requestId: discordMessageId }).first();
    expect(row.content).toBeNull();
    expect(Buffer.from(row.encryptedContent).toString("latin1")).not.toContain("secret");
    expect(JSON.stringify(row.metadata)).not.toContain("secret");
  });
});
