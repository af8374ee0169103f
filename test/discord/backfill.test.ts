/**
 * Nothing lost while the bot is away: after a restart, and after a gateway outage, every bound channel is read
 * back from Discord after the last stored message, so what was sent meanwhile is stored exactly once, in
 * order; and the assistant's replies written meanwhile are posted (a streamed one it had begun is finished in
 * the same Discord message, not posted again).
 */
import { createDiscordHarness, type DiscordHarness } from "./harness";
import { CHANNEL_ID, THREAD_ID, discordUser, waitFor } from "./fake-discord";

let h: DiscordHarness;
let conversationId: string;
const alice = discordUser("300000000000000001", "Alice");
const bob = discordUser("300000000000000002", "Bob");

const stored = async () => (await h.messages(conversationId)).map((row) => row.content);
const botPosts = () => h.fake.callsTo("POST", new RegExp(`^/channels/${CHANNEL_ID}/messages$`)).filter((call) => call.status === 200);
const postOf = (messageId: string) => h.app.database.db.knex("discord_posts").where({ messageId }).first();

beforeAll(async () => {
  h = await createDiscordHarness();
  await h.start();
  await h.fake.interactionReply(h.fake.command(CHANNEL_ID, alice, "start"));
  conversationId = (await h.conversationOf(CHANNEL_ID))!.id;
  h.fake.say(CHANNEL_ID, alice, "before the restart");
  await waitFor(async () => (await stored()).length === 1);
});
afterAll(() => h?.dispose());

it("after a restart, stores the messages sent while the bot was away once, in order, and posts the replies written meanwhile", async () => {
  await h.stop();
  // While the bot is offline: people talk (nothing reaches a gateway), another bot speaks, and the AI worker answers.
  h.fake.say(CHANNEL_ID, bob, "while away 1", { dispatch: false });
  h.fake.say(CHANNEL_ID, { ...discordUser("300000000000000009", "Other Bot"), bot: true }, "a bot's notice", { dispatch: false });
  h.fake.say(CHANNEL_ID, alice, "while away 2", { dispatch: false });
  h.fake.say(CHANNEL_ID, bob, "while away 3", { dispatch: false });
  const { addMessage } = await h.app.ok(
    `mutation($c: UUID!) { addMessage(input: { conversationId: $c, role: ASSISTANT, content: "answered while you were away" }) { id } }`,
    { c: conversationId },
    h.worker.token,
  );
  const before = botPosts().length;

  await h.start();
  await waitFor(async () => (await stored()).length === 5, 20_000, "the backfilled messages");
  await h.adapter.idle();
  // seq is the order Parley stored them in: the reply was stored while the bot was away, the backlog at its return.
  expect(await stored()).toEqual(["before the restart", "answered while you were away", "while away 1", "while away 2", "while away 3"]);

  await waitFor(async () => (await postOf(addMessage.id))?.status === "posted", 20_000, "the reply to be posted");
  const posted = botPosts().slice(before);
  expect(posted.map((call) => call.body.content)).toEqual(["answered while you were away"]);

  // A second restart reads nothing new and posts nothing again.
  await h.stop();
  await h.start();
  await h.adapter.idle();
  expect(await stored()).toHaveLength(5);
  expect(botPosts()).toHaveLength(before + 1);
  // Each backfill asked for the history after the newest stored message, paging forwards.
  const reads = h.fake.callsTo("GET", new RegExp(`^/channels/${CHANNEL_ID}/messages$`));
  expect(reads.at(-1)!.query.get("after")).toBe((await h.messages(conversationId)).filter((row) => row.role === "user").at(-1)!.requestId);
  expect(reads.at(-1)!.query.get("limit")).toBe("100");
});

it("pages through a long history: 201 messages sent while away (three pages) arrive once each, in order", async () => {
  await h.stop();
  const sent = Array.from({ length: 201 }, (_, i) => h.fake.say(CHANNEL_ID, i % 2 ? alice : bob, `backlog ${i}`, { dispatch: false }).id);
  const start = (await stored()).length;
  await h.start();
  await waitFor(async () => (await stored()).length === start + 201, 60_000, "the whole backlog");
  await h.adapter.idle();
  const rows = (await h.messages(conversationId)).slice(start);
  expect(rows.map((row) => row.requestId)).toEqual(sent);
});

it("after a gateway outage, backfills what was sent during it; what arrives both ways is stored once", async () => {
  const start = (await stored()).length;
  const identifies = h.fake.gatewayLog.length;
  h.fake.dropGateway();
  h.fake.say(CHANNEL_ID, alice, "during the outage", { dispatch: false });
  // discord.js reconnects and resumes the session; the adapter reads the channel again.
  await waitFor(() => h.fake.gatewayLog.length > identifies && h.fake.connected, 20_000, "the bot to reconnect");
  expect(h.fake.gatewayLog.at(-1)!.op).toBe(6); // RESUME
  await waitFor(async () => (await stored()).length === start + 1, 20_000, "the message sent during the outage");

  const twice = h.fake.say(CHANNEL_ID, bob, "after the outage"); // live, and in the history a later backfill reads
  await waitFor(async () => (await stored()).length === start + 2);
  const reads = () => h.fake.callsTo("GET", new RegExp(`^/channels/${CHANNEL_ID}/messages$`)).length;
  const readsBefore = reads();
  h.fake.dropGateway();
  await waitFor(() => h.fake.gatewayLog.length > identifies + 1 && h.fake.connected, 20_000, "the bot to reconnect again");
  await waitFor(() => reads() > readsBefore, 20_000, "the backfill after the second outage");
  await h.adapter.idle();
  expect((await h.messages(conversationId)).filter((row) => row.requestId === twice.id)).toHaveLength(1);
  expect((await stored()).slice(start)).toEqual(["during the outage", "after the outage"]);
});

it("finishes a streamed reply begun before a restart in the same Discord message", async () => {
  const { startMessage } = await h.app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c: conversationId }, h.worker.token);
  const append = (index: number, text: string) =>
    h.app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: startMessage.id, i: index, t: text }, h.worker.token);
  await append(0, "Part one");
  await waitFor(async () => (await postOf(startMessage.id))?.discordMessageIds.length === 1, 20_000, "the first post to be recorded");
  const [discordId] = (await postOf(startMessage.id)).discordMessageIds;
  const before = botPosts().length;

  await h.stop();
  await append(1, ", part two");
  await h.app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { status } }`, { m: startMessage.id }, h.worker.token);
  await h.start();

  await waitFor(async () => (await postOf(startMessage.id))?.status === "posted", 20_000, "the reply to be finished");
  expect(h.fake.botMessages(CHANNEL_ID).find((message) => message.id === discordId)!.content).toBe("Part one, part two");
  expect(botPosts()).toHaveLength(before); // edited, not posted again
});

it("stops relaying a channel whose conversation was archived through the API meanwhile", async () => {
  await h.fake.interactionReply(h.fake.command(THREAD_ID, alice, "start"));
  const thread = (await h.conversationOf(THREAD_ID))!;
  await h.stop();
  await h.app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { status } }`, { id: thread.id }, h.worker.token);
  h.fake.say(THREAD_ID, bob, "nobody records this", { dispatch: false });
  await h.start();
  h.fake.say(THREAD_ID, bob, "nor this");
  h.fake.say(CHANNEL_ID, bob, "but this");
  await waitFor(async () => (await stored()).at(-1) === "but this");
  await h.adapter.idle();
  expect(await h.messages(thread.id)).toEqual([]);
  expect(await h.conversationOf(THREAD_ID)).toBeUndefined();
});
