/**
 * The Discord adapter against a fake Discord (REST and gateway, test/discord/fake-discord.ts) and a real
 * Parley server: slash commands, relaying, edits and deletions, posting the assistant's replies (split, streamed),
 * error replies and isolation between channels. Every Discord object the adapter handles is built by discord.js
 * from raw gateway payloads; every call it makes to Discord is recorded and checked.
 */
import { splitMessage } from "../../src/discord/split";
import { parse } from "csv-parse/sync";
import { createDiscordHarness, type DiscordHarness } from "./harness";
import {
  CHANNEL_ID,
  GUILD_ID,
  MEMBER_PERMISSIONS,
  OTHER_CHANNEL_ID,
  THREAD_ID,
  discordUser,
  snowflake,
  waitFor,
  type RecordedCall,
} from "./fake-discord";

let h: DiscordHarness;
let conversationId: string; // CHANNEL_ID's

const alice = discordUser("300000000000000001", "Alice");
const bob = discordUser("300000000000000002", "Bob");
const EPHEMERAL = 64;

const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`;

/** Runs `/parley <sub>` and returns the bot's interaction reply ({ type, data }). */
async function command(channelId: string, sub: string, options: { name: string; type: number; value: unknown }[] = [], user = alice, permissions?: string) {
  const call = await h.fake.interactionReply(h.fake.command(channelId, user, sub, options, permissions));
  return call.body as { type: number; data: { content: string; flags?: number; allowed_mentions?: unknown; attachments?: unknown[] } };
}

const isEphemeral = (reply: { data: { flags?: number } }) => ((reply.data.flags ?? 0) & EPHEMERAL) === EPHEMERAL;

/** Messages the bot created in a channel (successful POSTs), in order. */
const posts = (channelId: string) => h.fake.callsTo("POST", new RegExp(`^/channels/${channelId}/messages$`)).filter((call) => call.status === 200);

/** A message in the channel, then waits until it is stored: everything the gateway sent before it has been handled. */
async function marker(channelId = CHANNEL_ID): Promise<void> {
  const message = h.fake.say(channelId, alice, `marker ${snowflake()}`);
  const id = (await h.conversationOf(channelId))!.id;
  await waitFor(async () => (await h.messages(id)).some((row) => row.requestId === message.id), 20_000, "the marker message");
}

beforeAll(async () => {
  h = await createDiscordHarness();
  await h.start();
});
afterAll(() => h?.dispose());

describe("binding channels", () => {
  it("refuses /parley start without Manage Channels (ephemeral), then binds the channel for a member who has it", async () => {
    const refused = await command(CHANNEL_ID, "start", [], bob, MEMBER_PERMISSIONS);
    expect(isEphemeral(refused)).toBe(true);
    expect(refused.data.content).toContain("ManageChannels");
    expect(await h.conversationOf(CHANNEL_ID)).toBeUndefined();

    const reply = await command(CHANNEL_ID, "start", [{ name: "title", type: 3, value: "Trip planning" }]);
    expect(reply.type).toBe(4);
    expect(isEphemeral(reply)).toBe(false); // the channel learns that it is recorded
    expect(reply.data.allowed_mentions).toEqual({ parse: [] });
    const conversation = (await h.conversationOf(CHANNEL_ID))!;
    conversationId = conversation.id;
    expect(reply.data.content).toContain(conversation.id);
    const row = await h.app.database.db.knex("conversations").where({ id: conversation.id }).first();
    expect(row).toMatchObject({ origin: "discord", discordGuildId: GUILD_ID, discordChannelId: CHANNEL_ID, title: "Trip planning", status: "active" });
    const owner = await h.app.database.db.knex("users").where({ id: row.ownerId }).first();
    expect(owner).toMatchObject({ discordId: alice.id, displayName: "Alice", role: "member" });
  });

  it("answers a second /parley start with an ephemeral refusal, and keeps one conversation per channel", async () => {
    const again = await command(CHANNEL_ID, "start");
    expect(isEphemeral(again)).toBe(true);
    expect(again.data.content).toContain("already records");
    expect(await h.app.database.db.knex("conversations").where({ discordChannelId: CHANNEL_ID }).count({ n: "*" })).toEqual([{ n: 1 }]);
  });

  it("binds a thread like a channel; /parley stop archives its conversation and relaying ends", async () => {
    const start = await command(THREAD_ID, "start");
    expect(start.data.content).toContain("a thread"); // the default title is the thread's name
    const thread = (await h.conversationOf(THREAD_ID))!;
    h.fake.say(THREAD_ID, bob, "in the thread");
    await waitFor(async () => (await h.messages(thread.id)).length === 1);

    expect(isEphemeral(await command(THREAD_ID, "stop", [], bob, MEMBER_PERMISSIONS))).toBe(true); // refused
    const stop = await command(THREAD_ID, "stop");
    expect(isEphemeral(stop)).toBe(false);
    expect(stop.data.content).toContain("archived with 1 messages");
    expect(await h.app.database.db.knex("conversations").where({ id: thread.id }).first("status")).toEqual({ status: "archived" });

    h.fake.say(THREAD_ID, bob, "after the stop");
    await marker();
    expect(await h.messages(thread.id)).toHaveLength(1);
  });
});

describe("relaying messages", () => {
  it("stores what people write as USER messages by their Discord user (upserted), with the Discord details in metadata", async () => {
    const before = (await h.messages(conversationId)).length;
    const hello = h.fake.say(CHANNEL_ID, alice, "hello @everyone");
    const picture = h.fake.say(CHANNEL_ID, bob, "", {
      extra: { attachments: [{ id: snowflake(), filename: "plan.png", size: 1234, url: "https://cdn.example/plan.png", proxy_url: "https://cdn.example/p", content_type: "image/png" }] },
    });
    h.fake.say(OTHER_CHANNEL_ID, alice, "not bound here");
    h.fake.say(CHANNEL_ID, { ...discordUser("300000000000000009", "Some Bot"), bot: true }, "a bot speaks");
    await waitFor(async () => (await h.messages(conversationId)).length >= before + 2);
    await marker();

    const rows = (await h.messages(conversationId)).slice(before);
    expect(rows.map((row) => row.requestId)).toEqual([hello.id, picture.id, expect.any(String)]); // then the marker
    const [first, second] = rows;
    expect(first).toMatchObject({ role: "user", content: "hello @everyone", sentBy: h.service.user.id });
    expect(first.metadata.discord).toMatchObject({ messageId: hello.id, channelId: CHANNEL_ID, guildId: GUILD_ID, authorId: alice.id, authorName: "Alice" });
    expect(second.content).toBe("[attachment: plan.png]");
    expect(second.metadata.discord.attachments).toEqual([expect.objectContaining({ name: "plan.png", size: 1234, contentType: "image/png" })]);
    const authors = await h.app.database.db.knex("users").whereIn("id", [first.authorId, second.authorId]).orderBy("displayName").select("discordId", "displayName", "role");
    expect(authors).toEqual([
      { discordId: alice.id, displayName: "Alice", role: "member" },
      { discordId: bob.id, displayName: "Bob", role: "member" },
    ]);
    expect(await h.app.database.db.knex("conversations").where({ discordChannelId: OTHER_CHANNEL_ID }).first()).toBeUndefined();
  });

  it("keeps a Discord user's display name current", async () => {
    const renamed = { ...bob, global_name: "Robert" };
    const message = h.fake.say(CHANNEL_ID, renamed, "call me Robert");
    await waitFor(async () => (await h.messages(conversationId)).some((row) => row.requestId === message.id));
    const users = await h.app.database.db.knex("users").where({ discordId: bob.id }).select("displayName");
    expect(users).toEqual([{ displayName: "Robert" }]);
  });

  it("stores a gateway event delivered twice only once", async () => {
    const message = h.fake.say(CHANNEL_ID, alice, "said once");
    h.fake.dispatch("MESSAGE_CREATE", message);
    h.fake.dispatch("MESSAGE_CREATE", message);
    await marker();
    expect((await h.messages(conversationId)).filter((row) => row.requestId === message.id)).toHaveLength(1);
  });

  it("reflects an edit (content replaced, history in metadata) and a deletion (content removed, marked deleted)", async () => {
    const message = h.fake.say(CHANNEL_ID, alice, "meet at 5");
    await waitFor(async () => (await h.messages(conversationId)).some((row) => row.requestId === message.id));
    const editedAt = new Date().toISOString();
    const edit = { ...message, content: "meet at 6", edited_timestamp: editedAt };
    h.fake.dispatch("MESSAGE_UPDATE", edit);
    h.fake.dispatch("MESSAGE_UPDATE", edit); // delivered twice: one history entry
    const row = async () => (await h.messages(conversationId)).find((r) => r.requestId === message.id)!;
    await waitFor(async () => (await row()).content === "meet at 6");
    await marker();
    expect((await row()).metadata.discord.edits).toEqual([{ editedAt, previousContent: "meet at 5" }]);

    h.fake.dispatch("MESSAGE_DELETE", { id: message.id, channel_id: CHANNEL_ID, guild_id: GUILD_ID });
    await waitFor(async () => (await row()).metadata.discord.deletedAt !== undefined);
    const deleted = await row();
    expect(deleted.content).toBe("");
    expect(deleted.metadata.discord.edits).toEqual([{ editedAt }]); // the old text is gone too
    expect(deleted.seq).toBeGreaterThan(0); // the row stays: history keeps no gap
  });

  it("repeats a write that failed with the same requestId until it is stored, once", async () => {
    const knex = h.app.database.db.knex;
    // The first two inserts fail; a sequence counts attempts (it is not rolled back with the failed transaction).
    await knex.raw("create sequence test_insert_attempts");
    await knex.raw(`create function test_fail_twice() returns trigger language plpgsql as $$
      begin if nextval('test_insert_attempts') <= 2 then raise exception 'injected failure'; end if; return new; end $$`);
    await knex.raw("create trigger test_fail_twice before insert on messages for each row execute function test_fail_twice()");
    try {
      const message = h.fake.say(CHANNEL_ID, alice, "survives two failures");
      await waitFor(async () => (await h.messages(conversationId)).some((row) => row.requestId === message.id));
      const { rows } = (await knex.raw("select last_value::int as attempts from test_insert_attempts")) as { rows: { attempts: number }[] };
      expect(rows[0].attempts).toBe(3);
      expect((await h.messages(conversationId)).filter((row) => row.requestId === message.id)).toHaveLength(1);
    } finally {
      await knex.raw("drop trigger test_fail_twice on messages");
      await knex.raw("drop function test_fail_twice()");
      await knex.raw("drop sequence test_insert_attempts");
    }
  });
});

describe("posting the assistant's replies", () => {
  it("posts a long reply in parts of at most 2,000 characters, code blocks closed and reopened, mentions inert, through a 429", async () => {
    const code = Array.from({ length: 90 }, (_, i) => `  const step${i} = await run(${i}); // ${"x".repeat(20)}`).join("\n");
    const content = `Sure @everyone, <@${alice.id}>, here is the plan.\n\n${"Context. ".repeat(150)}\n\n\`\`\`ts\n${code}\n\`\`\`\n\nDone.`;
    const expected = splitMessage(content);
    expect(expected.length).toBeGreaterThanOrEqual(3);
    const before = posts(CHANNEL_ID).length;
    h.fake.rateLimitNext("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`));
    const { addMessage } = await h.app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content } }, h.worker.token);

    await h.fake.waitForCalls("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`), before + expected.length);
    const sent = posts(CHANNEL_ID).slice(before);
    expect(sent.map((call) => call.body.content)).toEqual(expected);
    for (const call of sent) {
      expect(call.body.content.length).toBeLessThanOrEqual(2000);
      expect(call.body.allowed_mentions).toEqual({ parse: [] });
      expect(call.body.enforce_nonce).toBe(true);
    }
    expect(sent[1].body.content.startsWith("```ts\n")).toBe(true);
    expect(sent[0].body.content.endsWith("\n```") || sent[1].body.content.endsWith("\n```")).toBe(true);
    // The 429 was answered by discord.js waiting and sending the same request again.
    const limited = h.fake.calls.filter((call) => call.status === 429);
    expect(limited).toHaveLength(1);
    expect(sent[0].body.nonce).toBe(limited[0].body.nonce);

    await waitFor(async () => (await h.app.database.db.knex("discord_posts").where({ messageId: addMessage.id }).first())?.status === "posted");
    const post = await h.app.database.db.knex("discord_posts").where({ messageId: addMessage.id }).first();
    const ids = h.fake.botMessages(CHANNEL_ID).slice(-expected.length).map((message) => message.id);
    expect(post).toMatchObject({ channelId: CHANNEL_ID, discordMessageIds: ids });

    // Discord announced the bot's posts over the gateway too; none of them came back into the conversation.
    await marker();
    const stored = new Set((await h.messages(conversationId)).map((row) => row.requestId));
    expect(ids.filter((id) => stored.has(id))).toEqual([]);
  });

  it("posts a streamed reply once and edits it as chunks arrive, ending with the complete text", async () => {
    const before = posts(CHANNEL_ID).length;
    const { startMessage } = await h.app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c: conversationId }, h.worker.token);
    const [first] = (await h.fake.waitForCalls("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`), before + 1)).slice(before);
    expect(first.body.content).toBe("…");
    const discordId = h.fake.botMessages(CHANNEL_ID).at(-1)!.id;
    const edits = () => h.fake.callsTo("PATCH", new RegExp(`^/channels/${CHANNEL_ID}/messages/${discordId}$`)).map((call: RecordedCall) => call.body.content);

    const append = (index: number, text: string) =>
      h.app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: startMessage.id, i: index, t: text }, h.worker.token);
    await append(0, "Hello");
    await waitFor(() => edits().includes("Hello"), 20_000, "the edit with the first chunk");
    await append(1, ", world");
    await append(2, "!");
    await h.app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { status } }`, { m: startMessage.id }, h.worker.token);
    await waitFor(() => edits().at(-1) === "Hello, world!", 20_000, "the final edit");
    expect(posts(CHANNEL_ID)).toHaveLength(before + 1); // one Discord message for the whole reply
    await waitFor(async () => (await h.app.database.db.knex("discord_posts").where({ messageId: startMessage.id }).first())?.status === "posted");
  });
});

describe("slash command replies", () => {
  it("/parley status and /parley history answer ephemerally with the conversation", async () => {
    const status = await command(CHANNEL_ID, "status");
    expect(isEphemeral(status)).toBe(true);
    expect(status.data.content).toContain("Trip planning");
    expect(status.data.content).toContain(conversationId);

    const history = await command(CHANNEL_ID, "history", [{ name: "count", type: 4, value: 3 }]);
    expect(isEphemeral(history)).toBe(true);
    const rows = (await h.messages(conversationId)).slice(-3);
    const lines = history.data.content.split("\n");
    expect(lines).toHaveLength(4); // a header and three messages
    expect(lines.slice(1).map((line) => Number(/^`#(\d+)`/.exec(line)?.[1]))).toEqual(rows.map((row) => row.seq));
  });

  it("/parley transcript attaches the conversation's export (JSON, CSV) as an ephemeral file, one transcript per format and content", async () => {
    const rows = await h.messages(conversationId);
    const transcript = async (format: string) => {
      const id = h.fake.command(CHANNEL_ID, alice, "transcript", [{ name: "format", type: 3, value: format }]);
      const call = await h.fake.interactionReply(id);
      expect((call.body.data.flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
      expect(call.files).toHaveLength(1);
      return call.files[0] as { name: string; data: Buffer };
    };
    const json = await transcript("JSON");
    expect(json.name).toMatch(/^transcript-[0-9a-f-]{36}\.json$/);
    const document = JSON.parse(json.data.toString("utf8"));
    expect(document.messages.map((m: { seq: number; content: string }) => [m.seq, m.content])).toEqual(rows.map((row) => [row.seq, row.content]));

    const csv = await transcript("CSV");
    expect(csv.name).toMatch(/\.csv$/);
    const records = parse(csv.data.toString("utf8"), { columns: true }) as { seq: string; content: string }[];
    expect(records.map((record) => Number(record.seq))).toEqual(rows.map((row) => row.seq));

    // Asked again with nothing new said: the same transcript, not another export.
    expect((await transcript("JSON")).name).toBe(json.name);
    const stored = await h.app.database.db.knex("transcripts").where({ conversationId }).count({ n: "*" }).first();
    expect(Number(stored!.n)).toBe(2);
  });
});

describe("errors", () => {
  it("turns a Parley refusal into a short ephemeral reply", async () => {
    const reply = await command(THREAD_ID, "start", [{ name: "title", type: 3, value: "t".repeat(600) }]);
    expect(isEphemeral(reply)).toBe(true);
    expect(reply.data.content).toMatch(/^Parley did not accept that: /);
    expect(await h.conversationOf(THREAD_ID)).toBeUndefined();
  });

  it("answers an internal failure with a reference only, never its details", async () => {
    const knex = h.app.database.db.knex;
    await knex.raw(`create function test_break() returns trigger language plpgsql as $$
      begin raise exception 'secret detail from conversations_trigger'; end $$`);
    await knex.raw("create trigger test_break before insert on conversations for each row execute function test_break()");
    try {
      const reply = await command(THREAD_ID, "start");
      expect(isEphemeral(reply)).toBe(true);
      expect(reply.data.content).toMatch(/^Something went wrong in Parley \(reference [0-9a-f-]{36}\)\.$/);
      expect(reply.data.content).not.toContain("secret");
    } finally {
      await knex.raw("drop trigger test_break on conversations");
      await knex.raw("drop function test_break()");
    }
  });
});

describe("isolation between channels", () => {
  it("never shows a channel's conversation to a command run in another channel", async () => {
    h.fake.say(CHANNEL_ID, alice, "the secret plan");
    await marker();
    for (const sub of ["status", "history", "transcript", "stop"]) {
      const reply = await command(OTHER_CHANNEL_ID, sub);
      expect(isEphemeral(reply)).toBe(true);
      expect(reply.data.content).toContain("not recording this channel");
      for (const secret of [conversationId, "Trip planning", "secret plan"]) expect(reply.data.content).not.toContain(secret);
    }
    expect(await h.conversationOf(CHANNEL_ID)).toMatchObject({ id: conversationId, status: "active" });
  });
});

describe("usage and budgets", () => {
  const SET = `mutation($input: SetBudgetInput!) { setBudget(input: $input) { id } }`;
  const RECORD = `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`;

  it("/parley usage tells the caller their spend this month, and the server's budget when it has one", async () => {
    await marker(); // Alice exists as a Parley user
    const { id: aliceId } = await h.app.database.db.knex("users").where({ discordId: alice.id }).first("id");
    await h.app.ok(RECORD, { input: { requestId: `usage-${snowflake()}`, conversationId, userId: aliceId, model: "m", costUsd: 0.25 } }, h.worker.token);
    const plain = await command(CHANNEL_ID, "usage");
    expect(isEphemeral(plain)).toBe(true);
    expect(plain.data.content).toMatch(/You used AI \d+ times this month \(UTC\), for \$0\.\d{4}|You used AI \d+ times this month \(UTC\), for \$\d+\.\d{2}/);
    expect(plain.data.content).not.toContain("server's");
    await h.app.ok(SET, { input: { guildId: GUILD_ID, period: "MONTHLY", limitUsd: 100 } }, h.admin.token);
    await h.app.ok(SET, { input: { userId: aliceId, period: "DAILY", limitUsd: 10 } }, h.admin.token);
    const both = (await command(CHANNEL_ID, "usage")).data.content;
    expect(both).toContain("Your daily budget: $");
    expect(both).toContain("of $10.00 spent");
    expect(both).toContain("This server's monthly budget: $");
  });

  it("answers a message that a spent HARD server budget refuses with a clear reply, and stores nothing", async () => {
    await h.app.ok(SET, { input: { guildId: GUILD_ID, period: "MONTHLY", limitUsd: 1, enforcement: "HARD" } }, h.admin.token);
    try {
      await h.app.ok(RECORD, { input: { requestId: `over-${snowflake()}`, conversationId, model: "m", costUsd: 2 } }, h.worker.token);
      const before = posts(CHANNEL_ID).length;
      const refused = h.fake.say(CHANNEL_ID, alice, "one more question");
      const [reply] = (await h.fake.waitForCalls("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`), before + 1)).slice(before);
      // The guild spent 0.25 (the test above) and 2 this month.
      expect(reply.body.content).toContain("Parley could not store this message. This server's AI budget for this period is spent ($2.25 of $1.00).");
      expect(reply.body.content).toMatch(/resets <t:\d+:R>/);
      expect((await h.messages(conversationId)).some((row) => row.requestId === refused.id)).toBe(false);
    } finally {
      await h.app.ok(SET, { input: { guildId: GUILD_ID, period: "MONTHLY", limitUsd: 1000, enforcement: "HARD" } }, h.admin.token);
    }
  });
});

describe("with a long edit interval", () => {
  it("coalesces every chunk of a streamed reply into the final edit", async () => {
    await h.stop();
    await h.start({ DISCORD_EDIT_INTERVAL_MS: "600000" });
    const before = posts(CHANNEL_ID).length;
    const { startMessage } = await h.app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c: conversationId }, h.worker.token);
    await h.fake.waitForCalls("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`), before + 1);
    const discordId = h.fake.botMessages(CHANNEL_ID).at(-1)!.id;
    const words = Array.from({ length: 10 }, (_, i) => `word${i} `);
    for (const [index, text] of words.entries()) {
      await h.app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: startMessage.id, i: index, t: text }, h.worker.token);
    }
    await h.app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { status } }`, { m: startMessage.id }, h.worker.token);
    const [edit] = await h.fake.waitForCalls("PATCH", new RegExp(`^/channels/${CHANNEL_ID}/messages/${discordId}$`));
    await h.adapter.idle();
    expect(edit.body.content).toBe(words.join("").trim());
    expect(h.fake.callsTo("PATCH", new RegExp(`/messages/${discordId}$`))).toHaveLength(1);
  });
});
