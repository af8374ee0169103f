/**
 * A small, realistic demo: an admin, two members (one on Discord), an AI worker (service), a web
 * conversation with a tool call, a Discord channel conversation, a few bot metrics, two priced models and a
 * month of usage on the ledger (so `usage` shows something at once), a few documents with deterministic
 * demo vectors (global, Bob's guild, Alice's own) to try searchDocuments on, a shared assistant the trip is
 * pinned to, ratings of the assistant's replies and a code artifact with two versions (seeds/demo/). Re-running replaces the demo rows
 * (fixed ids and names) and prints a fresh API key for the member Alice.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { loadConfig, type EncryptionConfig } from "../src/config";
import { generateKey } from "../src/modules/api-key/api-key.service";
import { storedContent } from "../src/modules/message/encryption";
import { insertLedgerEntry, type LedgerEntry } from "../src/modules/usage/ledger";
import { chunkText } from "../src/modules/knowledge/chunking";
import { demoEmbedding } from "../src/modules/knowledge/demo-embedding";
import { insertChunks } from "../src/modules/knowledge/document.service";
import { vectorsEnabled } from "../src/modules/knowledge/vectors";
import { ensureVectorIndex } from "../src/modules/knowledge/vector-index";
import { seedAssistants } from "./demo/assistants";
import { seedFeedback } from "./demo/feedback";
import { seedArtifacts } from "./demo/artifacts";

const ids = {
  ada: "00000000-0000-4000-8000-00000000000a",
  alice: "00000000-0000-4000-8000-0000000000a1",
  bob: "00000000-0000-4000-8000-0000000000b0",
  worker: "00000000-0000-4000-8000-0000000000f0",
  trip: "00000000-0000-4000-8000-000000000c01",
  discord: "00000000-0000-4000-8000-000000000c02",
};

/** Demo prices per million tokens (input, output, cached input), in force since the start of the demo month. */
const models = [
  { provider: "openai", name: "gpt-4o-mini", prices: [0.15, 0.6, 0.075] },
  { provider: "anthropic", name: "claude-3-haiku", prices: [0.25, 1.25, 0.03] },
] as const;
const DAY_MS = 86_400_000;

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
  const vectors = await vectorsEnabled(knex);
  if (vectors) await ensureVectorIndex(knex, DEMO_DIMENSIONS); // outside the transaction: PGlite has one connection
  await knex.transaction(async (trx) => {
    // The ledger keeps rows of deleted users (spend happened): the demo's own go first.
    await trx("ai_requests").whereIn("reported_by", Object.values(ids)).delete();
    await trx("ai_models").whereIn(["provider", "name"], models.map((m) => [m.provider, m.name])).delete(); // and their prices
    await trx("users").whereIn("id", Object.values(ids)).delete(); // cascades to conversations, messages, keys, roll-ups
    await trx("metrics").where("client_bot_id", "like", "demo-%").delete();
    // Knowledge: the demo's global documents (its users' own and their guild's go with the users' rows below).
    await trx("knowledge_bases").where("guild_id", DEMO_GUILD).delete();
    await trx("documents")
      .where("external_id", "like", "demo:%")
      .whereIn("knowledge_base_id", trx("knowledge_bases").where({ scope: "global" }).select("id"))
      .delete();
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

    await seedUsage(trx, now);
    await seedKnowledge(trx, vectors);
    await seedAssistants(trx, ids);
    await seedFeedback(trx, ids);
    await seedArtifacts(trx, ids);

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
  console.log("Demo data loaded: users Ada (admin), Alice, bob#4242 (Discord), assistant-worker (service), and a few documents to search.");
  console.log("Try it as Alice:");
  console.log(
    `  curl -s localhost:4000/graphql -H 'content-type: application/json' -H 'authorization: Bearer ${key.secret}' ` +
      `-d '{"query":"{ conversations(first: 5) { edges { node { title messageCount lastMessage { role content } } } } }"}'`,
  );
  console.log(key.secret);
}

/**
 * The demo's models with their prices, and a month of usage through the ledger's own SQL (so the roll-ups
 * agree with it): the seeded assistant messages' calls, then a few calls a day for Alice and Bob, the Discord
 * ones in Bob's guild.
 */
async function seedUsage(trx: Knex.Transaction, now: number): Promise<void> {
  const since = new Date(now - 31 * DAY_MS);
  for (const model of models) {
    const [row] = await trx("ai_models").insert({ provider: model.provider, name: model.name, context_window: 128_000 }).returning("id");
    const [input, output, cached] = model.prices;
    await trx("ai_model_prices").insert({ model_id: row.id, effective_from: since, input_per_million: input, output_per_million: output, cached_input_per_million: cached });
  }
  const call = (entry: Partial<LedgerEntry> & Pick<LedgerEntry, "requestId" | "userId" | "model">): LedgerEntry => ({
    reportedBy: ids.worker, conversationId: null, messageId: null, guildId: null, provider: null, kind: "chat", promptTokens: 0, completionTokens: 0,
    cachedTokens: 0, latencyMs: null, timeToFirstTokenMs: null, status: "success", errorCode: null, confidence: null, safety: null,
    relevance: null, costUsd: null, metadata: {}, occurredAt: null, ...entry,
  });
  const calls: LedgerEntry[] = [];
  const answered: { id: string; conversationId: string; model: string; promptTokens: number; completionTokens: number; costUsd: string; createdAt: Date }[] =
    await trx("messages").whereIn("conversation_id", [ids.trip, ids.discord]).whereNotNull("model").select("id", "conversation_id", "model", "prompt_tokens", "completion_tokens", "cost_usd", "created_at");
  for (const message of answered) {
    const discord = message.conversationId === ids.discord;
    calls.push(call({
      requestId: `message:${message.id}`, messageId: message.id, conversationId: message.conversationId, userId: discord ? ids.bob : ids.alice,
      guildId: discord ? "900000000000000001" : null, model: message.model, promptTokens: message.promptTokens, completionTokens: message.completionTokens,
      costUsd: Number(message.costUsd), occurredAt: message.createdAt,
    }));
  }
  for (let day = 30; day >= 1; day--) {
    for (let i = 0; i < 4; i++) {
      const bob = i % 2 === 1;
      const prompt = 400 + ((day * 37 + i * 91) % 1600);
      calls.push(call({
        requestId: `demo-usage-${day}-${i}`,
        userId: bob ? ids.bob : ids.alice,
        conversationId: bob ? ids.discord : ids.trip,
        guildId: bob ? "900000000000000001" : null,
        model: bob ? "claude-3-haiku" : "gpt-4o-mini",
        kind: i === 3 ? "embedding" : "chat",
        promptTokens: prompt,
        cachedTokens: i === 0 ? Math.floor(prompt / 4) : 0,
        completionTokens: i === 3 ? 0 : 120 + ((day * 13 + i * 17) % 400),
        latencyMs: 600 + ((day * 53 + i * 29) % 2400),
        timeToFirstTokenMs: 180 + ((day * 7 + i) % 200),
        status: day % 9 === 0 && i === 2 ? "error" : "success",
        errorCode: day % 9 === 0 && i === 2 ? "rate_limited" : null,
        occurredAt: new Date(now - day * DAY_MS + i * 3 * 3600_000),
      }));
    }
  }
  for (const entry of calls) await insertLedgerEntry(trx, entry);
}

const DEMO_GUILD = "900000000000000001";
/** The demo vectors' size: small, as they come from demoEmbedding (word hashing), not from a model. */
const DEMO_DIMENSIONS = 64;
export const DEMO_EMBEDDING_MODEL = "parley-demo-64";

const demoDocuments: { scope: "global" | "guild" | "user"; title: string; tags: string[]; text: string }[] = [
  {
    scope: "global",
    title: "Parley quick start",
    tags: ["docs", "setup"],
    text:
      "Run npm install, then npm start: Parley serves GraphQL on port 4000 with an embedded PostgreSQL.\n\n" +
      "Create an API key with npm run cli -- create-key, and send it as a bearer token. Apollo Sandbox runs at /graphql in development.",
  },
  {
    scope: "global",
    title: "Exporting transcripts",
    tags: ["docs", "export"],
    text: "createTranscript exports a conversation as JSON or CSV. Small exports finish at once; large ones run in the background, and the file downloads from /transcripts/ID/download.",
  },
  {
    scope: "guild",
    title: "Release 2.3 notes",
    tags: ["release"],
    text: "Release 2.3 brings faster search, a new export button in the web app, and two bug fixes in notifications: duplicate pings are gone, and muted channels stay muted.",
  },
  {
    scope: "guild",
    title: "Server rules",
    tags: ["rules"],
    text: "Be kind. Keep bot commands in #bot-commands. Ask the moderators before posting links to other servers.",
  },
  {
    scope: "user",
    title: "Alice's packing list",
    tags: ["travel"],
    text: "Lisbon weekend: sunglasses, light jacket for the evenings, comfortable shoes for the hills, a phrasebook.",
  },
];

/** The demo documents, chunked and embedded with demoEmbedding (or text only when the database has no pgvector). */
async function seedKnowledge(trx: Knex.Transaction, vectors: boolean): Promise<void> {
  const bases = {
    global:
      (await trx("knowledge_bases").where({ scope: "global" }).first("id")) ??
      (await trx("knowledge_bases").insert({ scope: "global" }).returning("id"))[0],
    guild: (await trx("knowledge_bases").insert({ scope: "guild", guild_id: DEMO_GUILD }).returning("id"))[0],
    user: (await trx("knowledge_bases").insert({ scope: "user", user_id: ids.alice }).returning("id"))[0],
  };
  if (vectors) {
    // The global base may hold a real model's vectors already: the demo's go only where they fit.
    await trx("knowledge_bases")
      .whereIn("id", Object.values(bases).map((base) => base.id))
      .whereNull("dimensions")
      .update({ dimensions: DEMO_DIMENSIONS, embedding_model: DEMO_EMBEDDING_MODEL });
  }
  const fitting = new Set(
    vectors ? (await trx("knowledge_bases").where({ dimensions: DEMO_DIMENSIONS, embedding_model: DEMO_EMBEDDING_MODEL }).pluck("id")) : [],
  );
  for (const [i, doc] of demoDocuments.entries()) {
    const base = bases[doc.scope].id as string;
    const embed = fitting.has(base);
    const chunks = chunkText(doc.text, { size: 1000, overlap: 150 }).map((chunk) => ({
      ...chunk,
      embedding: embed ? demoEmbedding(chunk.content, DEMO_DIMENSIONS) : null,
    }));
    const [{ id }] = await trx("documents")
      .insert({
        knowledge_base_id: base,
        external_id: `demo:${i + 1}`,
        title: doc.title,
        tags: doc.tags,
        language: "english",
        size_bytes: Buffer.byteLength(doc.text),
        content_sha256: createHash("sha256").update(doc.text).digest("hex"),
        chunk_count: chunks.length,
        embedding_model: embed ? DEMO_EMBEDDING_MODEL : null,
        created_by: ids.ada,
        updated_by: ids.ada,
      })
      .returning("id");
    await insertChunks(trx, id, base, "english", doc.title, chunks);
  }
}
