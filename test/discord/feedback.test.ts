/**
 * The 👍/👎 buttons under the replies the adapter posts, against the fake Discord and a real Parley: where the
 * buttons go (a complete reply's last part only), and what a click does (the clicking member's feedback,
 * idempotent, acknowledged ephemerally, nothing stored for a message the adapter cannot reach). Clicks are
 * gateway INTERACTION_CREATE dispatches of type 3 (a message component), parsed by discord.js itself.
 */
import { Role } from "../../src/modules/user/role.enum";
import { splitMessage } from "../../src/discord/split";
import { createDiscordHarness, type DiscordHarness } from "./harness";
import { ALL_PERMISSIONS, APPLICATION_ID, CHANNEL_ID, GUILD_ID, discordUser, snowflake, waitFor, type RawUser, type RecordedCall } from "./fake-discord";

let h: DiscordHarness;
let conversationId: string;

const alice = discordUser("310000000000000001", "Alice");
const bob = discordUser("310000000000000002", "Bob");
const EPHEMERAL = 64;
const ADD = `mutation($in: AddMessageInput!) { addMessage(input: $in) { id } }`;
const POSTS = new RegExp(`^/channels/${CHANNEL_ID}/messages$`);

const knex = () => h.app.database.db.knex;
const posts = () => h.fake.callsTo("POST", POSTS).filter((call) => call.status === 200);

beforeAll(async () => {
  h = await createDiscordHarness();
  await h.start();
  const id = h.fake.command(CHANNEL_ID, alice, "start", [{ name: "title", type: 3, value: "Feedback" }]);
  await h.fake.interactionReply(id);
  conversationId = (await h.conversationOf(CHANNEL_ID))!.id;
});
afterAll(() => h?.dispose());

/** The worker writes a reply; resolves to its id and the Discord calls that posted it, once it is POSTED. */
async function reply(content: string): Promise<{ messageId: string; calls: RecordedCall[] }> {
  const before = posts().length;
  const { addMessage } = await h.app.ok(ADD, { in: { conversationId, role: "ASSISTANT", content } }, h.worker.token);
  await waitFor(async () => (await knex()("discord_posts").where({ messageId: addMessage.id }).first())?.status === "posted", 20_000, "the reply to be posted");
  return { messageId: addMessage.id, calls: posts().slice(before) };
}

/** A member clicks a button of a bot message; resolves to the bot's interaction callback ({ type, data }). */
async function click(user: RawUser, discordMessageId: string, customId: string) {
  const message = h.fake.botMessages(CHANNEL_ID).find((m) => m.id === discordMessageId)!;
  const id = snowflake();
  h.fake.dispatch("INTERACTION_CREATE", {
    id,
    application_id: APPLICATION_ID,
    type: 3,
    token: `click-${id}`,
    version: 1,
    guild_id: GUILD_ID,
    channel_id: CHANNEL_ID,
    channel: { id: CHANNEL_ID, type: 0, guild_id: GUILD_ID, name: "general" },
    member: { user, roles: [], permissions: ALL_PERMISSIONS, joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, nick: null, pending: false },
    app_permissions: ALL_PERMISSIONS,
    locale: "en-US",
    guild_locale: "en-US",
    entitlements: [],
    authorizing_integration_owners: { "0": GUILD_ID },
    context: 0,
    message: { ...message, components: [] },
    data: { custom_id: customId, component_type: 2 },
  });
  return (await h.fake.interactionReply(id)).body as { type: number; data: { content: string; flags?: number } };
}

const feedbackOf = (messageId: string) =>
  knex()("feedback as f").join("users as u", "u.id", "f.user_id").where("f.message_id", messageId).orderBy("u.discord_id").select("u.discordId", "f.rating", "f.updatedAt");
const audited = (messageId: string) => knex()("audit_logs").where({ targetId: messageId }).whereLike("action", "feedback.%").count({ n: "*" }).first();

describe("the buttons", () => {
  it("go under a complete reply, as one row of 👍 and 👎 naming the message", async () => {
    const { messageId, calls } = await reply("Lisbon is sunnier this weekend.");
    expect(calls).toHaveLength(1);
    expect(calls[0].body.components).toEqual([
      {
        type: 1,
        components: [
          { type: 2, style: 2, custom_id: `parley:fb:${messageId}:up`, emoji: { name: "👍", animated: false } },
          { type: 2, style: 2, custom_id: `parley:fb:${messageId}:down`, emoji: { name: "👎", animated: false } },
        ],
      },
    ]);
  });

  it("go only under the last part of a long reply", async () => {
    const content = `${"A long answer. ".repeat(300)}`;
    const { messageId, calls } = await reply(content);
    expect(calls).toHaveLength(splitMessage(content).length);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.slice(0, -1).map((call) => call.body.components)).toEqual(calls.slice(0, -1).map(() => []));
    expect(calls.at(-1)!.body.components[0].components.map((button: { custom_id: string }) => button.custom_id)).toEqual([
      `parley:fb:${messageId}:up`,
      `parley:fb:${messageId}:down`,
    ]);
  });

  it("appear on a streamed reply only when it completes", async () => {
    const before = posts().length;
    const { startMessage } = await h.app.ok(`mutation($c: UUID!) { startMessage(input: { conversationId: $c }) { id } }`, { c: conversationId }, h.worker.token);
    const [first] = (await h.fake.waitForCalls("POST", POSTS, before + 1)).slice(before);
    expect(first.body.components).toEqual([]);
    const discordId = h.fake.botMessages(CHANNEL_ID).at(-1)!.id;
    await h.app.ok(`mutation($m: UUID!, $i: Int!, $t: String!) { appendMessageChunk(messageId: $m, index: $i, text: $t) { index } }`, { m: startMessage.id, i: 0, t: "Streamed." }, h.worker.token);
    await h.app.ok(`mutation($m: UUID!) { completeMessage(messageId: $m) { status } }`, { m: startMessage.id }, h.worker.token);
    await waitFor(async () => (await knex()("discord_posts").where({ messageId: startMessage.id }).first())?.status === "posted", 20_000, "the streamed reply to be posted");
    const edits = h.fake.callsTo("PATCH", new RegExp(`^/channels/${CHANNEL_ID}/messages/${discordId}$`)).filter((call) => call.status === 200);
    expect(edits.at(-1)!.body).toMatchObject({ content: "Streamed." });
    expect(edits.at(-1)!.body.components[0].components[0].custom_id).toBe(`parley:fb:${startMessage.id}:up`);
    expect(edits.slice(0, -1).every((call) => call.body.components.length === 0)).toBe(true);
  });
});

describe("a click", () => {
  let messageId: string;
  let discordId: string;

  beforeAll(async () => {
    ({ messageId } = await reply("Take the train to Porto."));
    discordId = h.fake.botMessages(CHANNEL_ID).at(-1)!.id;
  });

  it("records the clicking member's rating and says so ephemerally", async () => {
    const answer = await click(bob, discordId, `parley:fb:${messageId}:up`);
    expect(answer.type).toBe(4);
    expect(answer.data.flags! & EPHEMERAL).toBe(EPHEMERAL);
    expect(answer.data.content).toContain("👍");
    expect((await feedbackOf(messageId)).map(({ discordId: id, rating }) => ({ id, rating }))).toEqual([{ id: bob.id, rating: "up" }]);
    const rater = await knex()("users").where({ discordId: bob.id }).first("role", "displayName");
    expect(rater).toEqual({ role: Role.MEMBER, displayName: "Bob" });
    expect(await audited(messageId)).toEqual({ n: 1 });
  });

  it("of the same button again changes nothing; the other button changes the rating", async () => {
    const [before] = await feedbackOf(messageId);
    expect((await click(bob, discordId, `parley:fb:${messageId}:up`)).data.flags! & EPHEMERAL).toBe(EPHEMERAL);
    expect(await feedbackOf(messageId)).toEqual([before]);
    expect(await audited(messageId)).toEqual({ n: 1 });

    await click(bob, discordId, `parley:fb:${messageId}:down`);
    expect((await feedbackOf(messageId)).map((row) => row.rating)).toEqual(["down"]);
    expect(await audited(messageId)).toEqual({ n: 2 });
  });

  it("is each member's own: another member's click adds their rating beside it", async () => {
    await click(alice, discordId, `parley:fb:${messageId}:up`);
    expect((await feedbackOf(messageId)).map(({ discordId: id, rating }) => ({ id, rating }))).toEqual([
      { id: alice.id, rating: "up" },
      { id: bob.id, rating: "down" },
    ]);
  });

  it("on a button naming a message the adapter cannot reach stores nothing and answers ephemerally", async () => {
    const member = await h.app.makeUser(Role.MEMBER, "web member");
    const { createConversation } = await h.app.ok(`mutation { createConversation(input: { title: "web" }) { id } }`, {}, member.token);
    const web = (await h.app.ok(ADD, { in: { conversationId: createConversation.id, role: "ASSISTANT", content: "private" } }, h.admin.token)).addMessage.id;
    const answer = await click(bob, discordId, `parley:fb:${web}:up`);
    expect(answer.data.flags! & EPHEMERAL).toBe(EPHEMERAL);
    expect(answer.data.content).toBe("Parley has no such reply (any more).");
    expect(await knex()("feedback").where({ messageId: web }).first()).toBeUndefined();
  });
});
