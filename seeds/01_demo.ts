/**
 * A small, realistic demo: an admin, two members (one on Discord), an AI worker (service), a web
 * conversation with a tool call, a Discord channel conversation, and a few bot metrics. Re-running
 * replaces the demo rows (fixed ids) and prints a fresh API key for the member Alice.
 */
import type { Knex } from "knex";
import { loadConfig, type EncryptionConfig } from "../src/config";
import { generateKey } from "../src/modules/api-key/api-key.service";
import { storedContent } from "../src/modules/message/encryption";

const ids = {
  ada: "00000000-0000-4000-8000-00000000000a",
  alice: "00000000-0000-4000-8000-0000000000a1",
  bob: "00000000-0000-4000-8000-0000000000b0",
  worker: "00000000-0000-4000-8000-0000000000f0",
  trip: "00000000-0000-4000-8000-000000000c01",
  discord: "00000000-0000-4000-8000-000000000c02",
};

type DemoMessage = { author: string; role: string; content: string; toolCalls?: unknown[]; model?: string; tokens?: [number, number]; cost?: number };

const tripMessages: DemoMessage[] = [
  { author: ids.alice, role: "system", content: "You are a concise travel assistant." },
  { author: ids.alice, role: "user", content: "What's the weather in Lisbon this weekend? I'm deciding between Lisbon and Porto." },
  {
    author: ids.worker,
    role: "assistant",
    content: "",
    toolCalls: [{ id: "call_1", type: "function", function: { name: "get_forecast", arguments: '{"city":"Lisbon","days":3}' } }],
    model: "gpt-4o-mini",
    tokens: [58, 21],
    cost: 0.000021,
  },
  { author: ids.worker, role: "tool", content: '{"city":"Lisbon","forecast":["sunny 24°C","sunny 25°C","cloudy 21°C"]}' },
  {
    author: ids.worker,
    role: "assistant",
    content: "Lisbon looks sunny, 21–25 °C through Sunday. Porto is usually 3–4 °C cooler with more chance of rain, so Lisbon is the safer bet.",
    model: "gpt-4o-mini",
    tokens: [112, 41],
    cost: 0.000041,
  },
];

const discordMessages: DemoMessage[] = [
  { author: ids.bob, role: "user", content: "@Parley can you summarise yesterday's release notes?" },
  {
    author: ids.worker,
    role: "assistant",
    content: "Release 2.3: faster search, a new export button, and two bug fixes in notifications.",
    model: "claude-3-haiku",
    tokens: [240, 30],
    cost: 0.00009,
  },
  { author: ids.bob, role: "user", content: "Thanks! 🎉" },
];

function messageRows(encryption: EncryptionConfig | undefined, conversationId: string, messages: DemoMessage[], start: Date) {
  return messages.map((m, index) => ({
    conversation_id: conversationId,
    seq: index + 1,
    author_id: m.author,
    role: m.role,
    ...storedContent(encryption, conversationId, index + 1, m.content), // encrypted like addMessage when there is a key ring
    request_id: `demo-${conversationId.slice(-4)}-${index + 1}`,
    tool_calls: m.toolCalls ? JSON.stringify(m.toolCalls) : null,
    model: m.model ?? null,
    prompt_tokens: m.tokens?.[0] ?? null,
    completion_tokens: m.tokens?.[1] ?? null,
    cost_usd: m.cost ?? null,
    created_at: new Date(start.getTime() + index * 20_000),
    updated_at: new Date(start.getTime() + index * 20_000),
  }));
}

/** knex calls seed(knex); the key ring comes from the same settings the server reads. */
export async function seed(knex: Knex, encryption = loadConfig().encryption): Promise<void> {
  const now = Date.now();
  const key = generateKey();
  await knex.transaction(async (trx) => {
    await trx("users").whereIn("id", Object.values(ids)).delete(); // cascades to conversations, messages, keys
    await trx("metrics").where("client_bot_id", "like", "demo-%").delete();
    await trx("users").insert([
      { id: ids.ada, display_name: "Ada (admin)", role: "admin", email: "ada@example.com" },
      { id: ids.alice, display_name: "Alice", role: "member", email: "alice@example.com", preferences: JSON.stringify({ theme: "dark" }) },
      { id: ids.bob, display_name: "bob#4242", role: "member", discord_id: "184467440737095516" },
      { id: ids.worker, display_name: "assistant-worker", role: "service" },
    ]);
    await trx("api_keys").insert({ user_id: ids.alice, name: "demo (seed)", key_hash: key.hash, prefix: key.prefix });

    const tripStart = new Date(now - 2 * 3600_000);
    const discordStart = new Date(now - 3600_000);
    await trx("conversations").insert([
      {
        id: ids.trip,
        owner_id: ids.alice,
        title: "Weekend trip: Lisbon or Porto?",
        origin: "web",
        parameters: JSON.stringify({ model: "gpt-4o-mini", temperature: 0.3 }),
        last_seq: tripMessages.length,
        message_count: tripMessages.length,
        created_at: tripStart,
        updated_at: new Date(tripStart.getTime() + (tripMessages.length - 1) * 20_000),
      },
      {
        id: ids.discord,
        owner_id: ids.bob,
        title: "#release-chat",
        origin: "discord",
        discord_guild_id: "900000000000000001",
        discord_channel_id: "900000000000000002",
        parameters: JSON.stringify({ model: "claude-3-haiku" }),
        last_seq: discordMessages.length,
        message_count: discordMessages.length,
        created_at: discordStart,
        updated_at: new Date(discordStart.getTime() + (discordMessages.length - 1) * 20_000),
      },
    ]);
    await trx("messages").insert([
      ...messageRows(encryption, ids.trip, tripMessages, tripStart),
      ...messageRows(encryption, ids.discord, discordMessages, discordStart),
    ]);

    await trx("metrics").insert(
      Array.from({ length: 12 }, (_, i) => ({
        client_bot_id: i % 2 ? "demo-discord-bot" : "demo-web-worker",
        metric_type: i % 3 ? "latency" : "tokens",
        metric_data: JSON.stringify(i % 3 ? { p50Ms: 180 + i * 7, p95Ms: 420 + i * 11 } : { prompt: 1000 + i * 50, completion: 300 + i * 20 }),
        recorded_at: new Date(now - i * 300_000),
        recorded_by: ids.worker,
      })),
    );
  });
  console.log("Demo data loaded: users Ada (admin), Alice, bob#4242 (Discord), assistant-worker (service).");
  console.log("Try it as Alice:");
  console.log(
    `  curl -s localhost:4000/graphql -H 'content-type: application/json' -H 'authorization: Bearer ${key.secret}' ` +
      `-d '{"query":"{ conversations(first: 5) { edges { node { title messageCount lastMessage { role content } } } } }"}'`,
  );
  console.log(key.secret);
}
