/**
 * Isolation: a member never sees or touches another member's data. Every root field of the schema must
 * have an outsider case here; the first test fails when a new field is added without one.
 */
import { getIntrospectionQuery } from "graphql";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { wsClient } from "../helpers/live";

let app: TestApp;
let alice: TestUser; // the owner
let bob: TestUser; // the outsider
let conversationId: string;
let messageId: string;
let transcriptId: string;
let artifactId: string;
let aliceKeyId: string;
let admin: TestUser;
let modelId: string;
let budgetId: string;
let alertId: string;
let ratedReplyId: string; // an assistant reply in Alice's conversation, rated by her

/** Until this process's live hub holds `count` streams (a subscription is in place). */
async function streamsOpen(count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (app.server.live.size < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Everything of Alice's an outsider could try to change: her conversation, her role and status, her keys. */
async function aliceView() {
  const { conversation, viewer, apiKeys } = await app.ok(
    `query($id: UUID!) { conversation(id: $id) { title status messageCount } viewer { role isActive } apiKeys { id revokedAt } }`,
    { id: conversationId },
    alice.token,
  );
  return { conversation, viewer, apiKeys };
}

/** An outsider operation that must fail with `code` and leave Alice's conversation as it was. */
async function refusedWithoutEffect(query: string, variables: Record<string, unknown>, code = "NOT_FOUND") {
  const before = await aliceView();
  const { body } = await app.gql(query, variables, bob.token);
  expect(body.errors?.[0].extensions?.code).toBe(code);
  expect(JSON.stringify(body.data ?? null)).not.toContain(conversationId);
  expect(await aliceView()).toEqual(before);
}

/** The first result of a subscription over graphql-ws, as `token`'s user. */
async function firstEvent(query: string, variables: Record<string, unknown>, token: string) {
  const client = wsClient(app.url, token);
  try {
    for await (const result of client.iterate({ query, variables })) return result;
    throw new Error("the subscription ended without a result");
  } finally {
    await client.dispose();
  }
}

const cases: Record<string, () => Promise<void>> = {
  "Query.viewer": async () => {
    const { viewer } = await app.ok(`{ viewer { id } }`, {}, bob.token);
    expect(viewer.id).toBe(bob.user.id);
  },
  "Query.conversation": () => refusedWithoutEffect(`query($id: UUID!) { conversation(id: $id) { id } }`, { id: conversationId }),
  "Query.conversations": async () => {
    const { conversations } = await app.ok(`{ conversations(first: 100) { totalCount edges { node { id } } } }`, {}, bob.token);
    expect(conversations.edges.map((e: any) => e.node.id)).not.toContain(conversationId);
    await refusedWithoutEffect(`query($o: UUID!) { conversations(filter: { ownerId: $o }) { totalCount } }`, { o: alice.user.id }, "FORBIDDEN");
  },
  "Query.message": () => refusedWithoutEffect(`query($id: UUID!) { message(id: $id) { id content } }`, { id: messageId }),
  "Query.searchMessages": async () => {
    const SEARCH = `query($filter: MessageSearchFilter) { searchMessages(query: "secret", filter: $filter) { message { id content } } }`;
    expect((await app.ok(SEARCH, {}, alice.token)).searchMessages.map((hit: any) => hit.message.id)).toEqual([messageId]); // there is one to find
    expect((await app.ok(SEARCH, {}, bob.token)).searchMessages).toEqual([]);
    await refusedWithoutEffect(SEARCH, { filter: { conversationId } });
  },
  "Query.transcript": () => refusedWithoutEffect(`query($id: UUID!) { transcript(id: $id) { id } }`, { id: transcriptId }),
  "Query.artifact": () => refusedWithoutEffect(`query($id: UUID!) { artifact(id: $id) { id content } }`, { id: artifactId }),
  "Mutation.createArtifact": async () => {
    const input = { messageId, kind: "CODE", title: "mine now", content: "x" };
    await refusedWithoutEffect(`mutation($input: CreateArtifactInput!) { createArtifact(input: $input) { id } }`, { input });
    expect(await app.database.db.knex("artifacts").where({ conversationId }).pluck("id")).toEqual([artifactId]);
  },
  "Mutation.editArtifact": async () => {
    await refusedWithoutEffect(`mutation($id: UUID!) { editArtifact(id: $id, input: { content: "pwned" }) { id } }`, { id: artifactId });
    expect(await app.database.db.knex("artifacts").where({ conversationId }).pluck("id")).toEqual([artifactId]);
  },
  "Mutation.deleteArtifact": async () => {
    await refusedWithoutEffect(`mutation($id: UUID!) { deleteArtifact(id: $id) }`, { id: artifactId });
    expect(await app.database.db.knex("artifacts").where({ conversationId }).pluck("id")).toEqual([artifactId]);
  },
  "Mutation.createTranscript": async () => {
    await refusedWithoutEffect(`mutation($id: UUID!) { createTranscript(input: { conversationId: $id, format: CSV }) { id } }`, { id: conversationId });
    expect(await app.database.db.knex("transcripts").where({ conversationId }).select("createdBy")).toEqual([{ createdBy: alice.user.id }]);
  },
  "Query.metrics": () => refusedWithoutEffect(`{ metrics { totalCount } }`, {}, "FORBIDDEN"),
  "Mutation.createConversation": async () => {
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "mine" }) { owner { id } } }`, {}, bob.token);
    expect(createConversation.owner.id).toBe(bob.user.id);
  },
  "Mutation.updateConversation": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { updateConversation(id: $id, input: { title: "pwned" }) { id } }`, { id: conversationId }),
  "Mutation.archiveConversation": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: conversationId }),
  "Mutation.deleteConversation": () => refusedWithoutEffect(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id: conversationId }),
  "Mutation.addMessage": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "hi" }) { id } }`, { id: conversationId }),
  "Mutation.startMessage": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { startMessage(input: { conversationId: $id, role: USER }) { id } }`, { id: conversationId }),
  "Mutation.appendMessageChunk": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { appendMessageChunk(messageId: $id, index: 0, text: "x") { index } }`, { id: messageId }),
  "Mutation.completeMessage": () => refusedWithoutEffect(`mutation($id: UUID!) { completeMessage(messageId: $id) { id } }`, { id: messageId }),
  "Mutation.failMessage": () => refusedWithoutEffect(`mutation($id: UUID!) { failMessage(messageId: $id, error: "x") { id } }`, { id: messageId }),
  "Mutation.recordMetrics": () =>
    refusedWithoutEffect(`mutation { recordMetrics(input: [{ clientBotId: "b", metricType: "t" }]) }`, {}, "FORBIDDEN"),
  "Mutation.createApiKey": () =>
    refusedWithoutEffect(`mutation($u: UUID!) { createApiKey(name: "mine now", userId: $u) { key } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.revokeApiKey": () => refusedWithoutEffect(`mutation($id: UUID!) { revokeApiKey(id: $id) { id } }`, { id: aliceKeyId }),
  "Query.apiKeys": async () => {
    const { apiKeys } = await app.ok(`{ apiKeys { id } }`, {}, bob.token);
    expect(apiKeys.map((k: any) => k.id)).not.toContain(aliceKeyId);
    await refusedWithoutEffect(`query($u: UUID!) { apiKeys(userId: $u) { id } }`, { u: alice.user.id }, "FORBIDDEN");
  },
  "Query.users": () => refusedWithoutEffect(`{ users { totalCount } }`, {}, "FORBIDDEN"),
  "Mutation.createUser": () => refusedWithoutEffect(`mutation { createUser(input: { displayName: "x", role: ADMIN }) { id } }`, {}, "FORBIDDEN"),
  "Mutation.setUserRole": () =>
    refusedWithoutEffect(`mutation($u: UUID!) { setUserRole(id: $u, role: SERVICE) { id } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.deactivateUser": () => refusedWithoutEffect(`mutation($u: UUID!) { deactivateUser(id: $u) { id } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.reactivateUser": () => refusedWithoutEffect(`mutation($u: UUID!) { reactivateUser(id: $u) { id } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.upsertDiscordUser": () =>
    refusedWithoutEffect(`mutation { upsertDiscordUser(input: { discordId: "123", displayName: "x" }) { id } }`, {}, "FORBIDDEN"),
  // No argument names whose preferences change: only the viewer's own ever do.
  "Mutation.updatePreferences": async () => {
    const UPDATE = `mutation($p: JSON!) { updatePreferences(preferences: $p, merge: false) { id preferences } }`;
    await app.ok(UPDATE, { p: { theme: "dark" } }, alice.token);
    expect((await app.ok(UPDATE, { p: { theme: "light" } }, bob.token)).updatePreferences).toEqual({ id: bob.user.id, preferences: { theme: "light" } });
    expect((await app.ok(`{ viewer { preferences } }`, {}, alice.token)).viewer.preferences).toEqual({ theme: "dark" });
  },
  "Mutation.grantService": () =>
    refusedWithoutEffect(`mutation($u: UUID!) { grantService(input: { serviceId: $u, origin: WEB }) { id } }`, { u: bob.user.id }, "FORBIDDEN"),
  "Mutation.revokeServiceGrant": () =>
    refusedWithoutEffect(`mutation($id: UUID!) { revokeServiceGrant(id: $id) }`, { id: "00000000-0000-4000-8000-000000000000" }, "FORBIDDEN"),
  "Query.serviceGrants": () => refusedWithoutEffect(`{ serviceGrants { id } }`, {}, "FORBIDDEN"),
  "Query.auditLogs": () => refusedWithoutEffect(`{ auditLogs { totalCount } }`, {}, "FORBIDDEN"),
  "Query.backups": () => refusedWithoutEffect(`{ backups { totalCount } }`, {}, "FORBIDDEN"),
  "Query.systemConfigs": () => refusedWithoutEffect(`{ systemConfigs { key } }`, {}, "FORBIDDEN"),
  "Query.systemConfig": () => refusedWithoutEffect(`{ systemConfig(key: "x") { key } }`, {}, "FORBIDDEN"),
  "Subscription.messageAdded": async () => {
    const result = await firstEvent(
      `subscription($id: UUID!) { messageAdded(conversationId: $id, afterSeq: 0) { id content } }`,
      { id: conversationId },
      bob.token,
    );
    expect(result.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect(JSON.stringify(result)).not.toContain("my secret");
  },
  "Subscription.conversationEvents": async () => {
    const result = await firstEvent(
      `subscription($id: UUID!) { conversationEvents(conversationId: $id, afterSeq: 0) { ... on MessageAddedEvent { message { content } } } }`,
      { id: conversationId },
      bob.token,
    );
    expect(result.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect(JSON.stringify(result)).not.toContain("my secret");
  },
  "Subscription.conversationsChanged": async () => {
    // Bob's stream gets his own change, and none of the change Alice makes first.
    const client = wsClient(app.url, bob.token);
    try {
      const events = client.iterate({ query: `subscription { conversationsChanged { conversationId conversation { title } } }` });
      const first = events.next();
      await streamsOpen(1);
      await app.ok(`mutation($id: UUID!) { updateConversation(id: $id, input: { title: "private" }) { id } }`, { id: conversationId }, alice.token);
      await app.ok(`mutation { createConversation(input: { title: "bob's own" }) { id } }`, {}, bob.token);
      const { value } = await first;
      expect(value?.data).toMatchObject({ conversationsChanged: { conversation: { title: "bob's own" } } });
      expect(JSON.stringify(value)).not.toContain(conversationId);
    } finally {
      await client.dispose();
    }
  },
  "Mutation.setSystemConfig": () => refusedWithoutEffect(`mutation { setSystemConfig(key: "x", value: 1) { key } }`, {}, "FORBIDDEN"),
  // The Discord adapter's fields: FORBIDDEN for everyone but admins and services granted DISCORD.
  "Query.discordBinding": () => refusedWithoutEffect(`{ discordBinding(channelId: "123") { channelId } }`, {}, "FORBIDDEN"),
  "Query.discordBindings": () => refusedWithoutEffect(`{ discordBindings { totalCount } }`, {}, "FORBIDDEN"),
  "Mutation.recordDiscordPost": () =>
    refusedWithoutEffect(`mutation($m: UUID!) { recordDiscordPost(input: { messageId: $m, discordMessageIds: ["1"], status: POSTED }) { status } }`, { m: messageId }, "FORBIDDEN"),
  "Mutation.recordDiscordEdit": () =>
    refusedWithoutEffect(`mutation($c: UUID!) { recordDiscordEdit(input: { conversationId: $c, discordMessageId: "1", content: "pwned" }) { id } }`, { c: conversationId }, "FORBIDDEN"),
  "Mutation.recordDiscordDeletion": () =>
    refusedWithoutEffect(`mutation($c: UUID!) { recordDiscordDeletion(input: { conversationId: $c, discordMessageId: "1" }) { id } }`, { c: conversationId }, "FORBIDDEN"),
  // Usage, budgets and alerts: Alice has spend, a budget and an alert (beforeAll); Bob gets none of them.
  "Query.models": async () => {
    const { models } = await app.ok(`{ models(includeRetired: true) { id name } }`, {}, bob.token);
    expect(models.map((model: { id: string }) => model.id)).toContain(modelId); // the catalogue is everyone's
  },
  "Mutation.upsertAiModel": () =>
    refusedWithoutEffect(`mutation { upsertAiModel(input: { provider: "p", name: "iso", price: { inputPerMillion: 0, outputPerMillion: 0 } }) { id } }`, {}, "FORBIDDEN"),
  "Mutation.retireAiModel": () => refusedWithoutEffect(`mutation($id: UUID!) { retireAiModel(id: $id) { id } }`, { id: modelId }, "FORBIDDEN"),
  "Mutation.recordAiRequest": () =>
    refusedWithoutEffect(
      `mutation($c: UUID!, $u: UUID!) { recordAiRequest(input: { requestId: "bob", conversationId: $c, userId: $u, model: "iso-model", costUsd: 99 }) { id } }`,
      { c: conversationId, u: alice.user.id },
      "FORBIDDEN",
    ),
  "Query.usage": async () => {
    const range = { from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z" };
    await refusedWithoutEffect(`query($f: UsageFilter!) { usage(filter: $f, period: MONTH) { costUsd } }`, { f: { ...range, userId: alice.user.id } }, "FORBIDDEN");
    const { usage } = await app.ok(`query($f: UsageFilter!) { usage(filter: $f, period: MONTH) { costUsd } }`, { f: { ...range, conversationId } }, bob.token);
    expect(usage).toEqual([]);
  },
  "Query.budgetStatus": async () => {
    await refusedWithoutEffect(`query($u: UUID!) { budgetStatus(userId: $u) { spentUsd } }`, { u: alice.user.id }, "FORBIDDEN");
    expect((await app.ok(`{ budgetStatus { spentUsd } }`, {}, bob.token)).budgetStatus).toBeNull();
  },
  "Query.budgets": () => refusedWithoutEffect(`{ budgets { edges { node { budget { userId user { displayName } } } } } }`, {}, "FORBIDDEN"),
  "Mutation.setBudget": () =>
    refusedWithoutEffect(`mutation($u: UUID!) { setBudget(input: { userId: $u, period: DAILY, limitUsd: 0.01, enforcement: HARD }) { id } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.deleteBudget": () => refusedWithoutEffect(`mutation($id: UUID!) { deleteBudget(id: $id) }`, { id: budgetId }, "FORBIDDEN"),
  // The answer cache and the query history: each case stores Alice's own first; Bob reaches none of it.
  "Query.cachedAnswer": async () => {
    await app.ok(`mutation { storeAnswer(input: { scope: { kind: USER }, question: "alice asks", answer: "my secret" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`query($u: UUID!) { cachedAnswer(question: "alice asks", scope: { kind: USER, userId: $u }) { entry { answer } } }`, { u: alice.user.id }, "FORBIDDEN");
    expect((await app.ok(`{ cachedAnswer(question: "alice asks", scope: { kind: USER }) { entry { answer } } }`, {}, bob.token)).cachedAnswer).toBeNull();
  },
  "Mutation.storeAnswer": async () => {
    const STORE = `mutation($u: UUID!) { storeAnswer(input: { scope: { kind: USER, userId: $u }, question: "planted", answer: "pwned" }) { id } }`;
    await refusedWithoutEffect(STORE, { u: alice.user.id }, "FORBIDDEN");
    expect(await app.database.db.knex("query_cache").where({ question: "planted" }).first()).toBeUndefined();
  },
  "Mutation.deleteCachedAnswer": async () => {
    const { storeAnswer } = await app.ok(`mutation { storeAnswer(input: { scope: { kind: USER }, question: "keep me", answer: "a" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($id: UUID!) { deleteCachedAnswer(id: $id) }`, { id: storeAnswer.id }, "NOT_FOUND");
    expect(await app.database.db.knex("query_cache").where({ id: storeAnswer.id }).first()).toBeDefined();
  },
  "Mutation.clearAnswerCache": async () => {
    const { storeAnswer } = await app.ok(`mutation { storeAnswer(input: { scope: { kind: USER }, question: "keep me too", answer: "a" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($u: UUID!) { clearAnswerCache(scope: { kind: USER, userId: $u }) }`, { u: alice.user.id }, "FORBIDDEN");
    expect(await app.database.db.knex("query_cache").where({ id: storeAnswer.id }).first()).toBeDefined();
  },
  "Mutation.recordQuery": async () => {
    await refusedWithoutEffect(`mutation($u: UUID!) { recordQuery(input: { question: "in alice's name", userId: $u }) { id } }`, { u: alice.user.id }, "FORBIDDEN");
    expect(await app.database.db.knex("query_history").where({ question: "in alice's name" }).first()).toBeUndefined();
  },
  // Documents: each case stores Alice's own first; Bob neither finds, reads, changes nor deletes it.
  "Mutation.upsertDocument": async () => {
    const { upsertDocument } = await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "alice doc", text: "my secret plan" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($u: UUID!) { upsertDocument(input: { scope: { kind: USER, userId: $u }, title: "planted", text: "x" }) { id } }`, { u: alice.user.id }, "FORBIDDEN");
    await refusedWithoutEffect(`mutation($id: UUID!) { upsertDocument(input: { scope: { kind: USER }, id: $id, title: "stolen", text: "x" }) { id } }`, { id: upsertDocument.id });
    expect(await app.database.db.knex("documents").whereIn("title", ["planted", "stolen"]).first()).toBeUndefined();
  },
  "Mutation.deleteDocument": async () => {
    const { upsertDocument } = await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "keep", text: "my secret" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($id: UUID!) { deleteDocument(id: $id) }`, { id: upsertDocument.id });
    expect(await app.database.db.knex("documents").where({ id: upsertDocument.id }).first()).toBeDefined();
  },
  "Query.document": async () => {
    const { upsertDocument } = await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "mine", text: "my secret" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`query($id: UUID!) { document(id: $id) { title } }`, { id: upsertDocument.id });
  },
  "Query.documents": async () => {
    await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "listed for alice", text: "my secret" }) { id } }`, {}, alice.token);
    const { documents } = await app.ok(`{ documents(first: 100) { edges { node { title } } } }`, {}, bob.token);
    expect(JSON.stringify(documents)).not.toContain("listed for alice");
    await refusedWithoutEffect(`query($u: UUID!) { documents(filter: { scope: { kind: USER, userId: $u } }) { totalCount } }`, { u: alice.user.id }, "FORBIDDEN");
  },
  "Query.searchDocuments": async () => {
    await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "searchable", text: "wombat secret" }) { id } }`, {}, alice.token);
    expect((await app.ok(`{ searchDocuments(query: "wombat") { document { title } } }`, {}, bob.token)).searchDocuments).toEqual([]);
    await refusedWithoutEffect(`query($u: UUID!) { searchDocuments(query: "wombat", filter: { scope: { kind: USER, userId: $u } }) { score } }`, { u: alice.user.id }, "FORBIDDEN");
  },
  "Query.knowledgeBase": async () => {
    await app.ok(`mutation { upsertDocument(input: { scope: { kind: USER }, title: "counted", text: "my secret" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`query($u: UUID!) { knowledgeBase(scope: { kind: USER, userId: $u }) { documentCount } }`, { u: alice.user.id }, "FORBIDDEN");
  },
  "Mutation.configureKnowledgeBase": async () => {
    await refusedWithoutEffect(
      `mutation($u: UUID!) { configureKnowledgeBase(input: { scope: { kind: USER, userId: $u }, embeddingModel: "evil", dimensions: 3 }) { dimensions } }`,
      { u: alice.user.id },
      "FORBIDDEN",
    );
    expect(await app.database.db.knex("knowledge_bases").where({ embeddingModel: "evil" }).first()).toBeUndefined();
  },
  // Guild settings belong to the guild's bot and admins: a member neither reads, sets nor deletes them.
  "Query.guildConfig": async () => {
    await app.database.db.knex("server_configs").insert({ guildId: "700000000000000001", settings: JSON.stringify({ systemPrompt: "my secret" }) }).onConflict("guild_id").ignore();
    await refusedWithoutEffect(`{ guildConfig(guildId: "700000000000000001") { settings } }`, {}, "FORBIDDEN");
  },
  "Mutation.setGuildConfig": async () => {
    await refusedWithoutEffect(`mutation { setGuildConfig(guildId: "700000000000000002", settings: { model: "evil" }) { guildId } }`, {}, "FORBIDDEN");
    expect(await app.database.db.knex("server_configs").where({ guildId: "700000000000000002" }).first()).toBeUndefined();
  },
  "Mutation.deleteGuildConfig": async () => {
    await app.database.db.knex("server_configs").insert({ guildId: "700000000000000003", settings: "{}" }).onConflict("guild_id").ignore();
    await refusedWithoutEffect(`mutation { deleteGuildConfig(guildId: "700000000000000003") }`, {}, "FORBIDDEN");
    expect(await app.database.db.knex("server_configs").where({ guildId: "700000000000000003" }).first()).toBeDefined();
  },
  "Query.queryHistory": async () => {
    await app.ok(`mutation { recordQuery(input: { question: "alice's private question" }) { id } }`, {}, alice.token);
    const { queryHistory } = await app.ok(`{ queryHistory(first: 100) { edges { node { question } } } }`, {}, bob.token);
    expect(JSON.stringify(queryHistory)).not.toContain("alice's private question");
    await refusedWithoutEffect(`query($u: UUID!) { queryHistory(filter: { userId: $u }) { totalCount } }`, { u: alice.user.id }, "FORBIDDEN");
  },
  "Query.knowledgeStats": async () => {
    await app.ok(`mutation { recordQuery(input: { question: "counted for alice", scope: { kind: USER } }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`query($u: UUID!) { knowledgeStats(scope: { kind: USER, userId: $u }) { queries } }`, { u: alice.user.id }, "FORBIDDEN");
    expect((await app.ok(`{ knowledgeStats { queries topUsers { userId } } }`, {}, bob.token)).knowledgeStats).toEqual({ queries: 0, topUsers: [] });
  },
  // Assistants: each case makes Alice's private one first; Bob neither sees, changes, deletes nor pins it.
  "Query.assistant": async () => {
    const { createAssistant } = await app.ok(`mutation { createAssistant(input: { name: "alice's secret helper", model: "m", systemPrompt: "my secret" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`query($id: UUID!) { assistant(id: $id) { name currentVersion { systemPrompt } } }`, { id: createAssistant.id });
  },
  "Query.assistants": async () => {
    await app.ok(`mutation { createAssistant(input: { name: "listed for alice", model: "m" }) { id } }`, {}, alice.token);
    const { assistants } = await app.ok(`{ assistants(first: 100, filter: { includeInactive: true }) { edges { node { name } } } }`, {}, bob.token);
    expect(JSON.stringify(assistants)).not.toContain("listed for alice");
  },
  "Mutation.createAssistant": async () => {
    await refusedWithoutEffect(`mutation { createAssistant(input: { name: "for everyone", model: "m", shared: true }) { id } }`, {}, "FORBIDDEN");
    await refusedWithoutEffect(`mutation($u: UUID!) { createAssistant(input: { name: "reads alice", model: "m", knowledgeScope: { kind: USER, userId: $u } }) { id } }`, { u: alice.user.id }, "FORBIDDEN");
    expect(await app.database.db.knex("assistants").whereIn("name", ["for everyone", "reads alice"]).first()).toBeUndefined();
  },
  "Mutation.updateAssistant": async () => {
    const { createAssistant } = await app.ok(`mutation { createAssistant(input: { name: "not bob's to change", model: "m" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($id: UUID!) { updateAssistant(id: $id, input: { model: "pwned" }) { id } }`, { id: createAssistant.id });
    expect(await app.database.db.knex("assistant_versions").where({ assistantId: createAssistant.id }).select("model")).toEqual([{ model: "m" }]);
  },
  "Mutation.setAssistantActive": async () => {
    const { createAssistant } = await app.ok(`mutation { createAssistant(input: { name: "stays active", model: "m" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($id: UUID!) { setAssistantActive(id: $id, active: false) { id } }`, { id: createAssistant.id });
    expect(await app.database.db.knex("assistants").where({ id: createAssistant.id }).first("isActive")).toEqual({ isActive: true });
  },
  "Mutation.deleteAssistant": async () => {
    const { createAssistant } = await app.ok(`mutation { createAssistant(input: { name: "stays", model: "m" }) { id } }`, {}, alice.token);
    await refusedWithoutEffect(`mutation($id: UUID!) { deleteAssistant(id: $id) }`, { id: createAssistant.id });
    expect(await app.database.db.knex("assistants").where({ id: createAssistant.id }).first("id")).toBeDefined();
  },
  "Mutation.pinAssistant": async () => {
    const PIN = `mutation($c: UUID!, $a: UUID!) { pinAssistant(conversationId: $c, assistantId: $a) { id } }`;
    const { createAssistant: hers } = await app.ok(`mutation { createAssistant(input: { name: "not bob's to pin", model: "m" }) { id } }`, {}, alice.token);
    const { createAssistant: his } = await app.ok(`mutation { createAssistant(input: { name: "bob's own", model: "m" }) { id } }`, {}, bob.token);
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "bob's" }) { id } }`, {}, bob.token);
    await refusedWithoutEffect(PIN, { c: conversationId, a: his.id }); // her conversation
    await refusedWithoutEffect(PIN, { c: createConversation.id, a: hers.id }); // her assistant
    expect(await app.database.db.knex("conversations").whereIn("id", [conversationId, createConversation.id]).whereNotNull("assistantVersionId").first("id")).toBeUndefined();
  },
  "Mutation.unpinAssistant": async () => {
    const { createAssistant } = await app.ok(`mutation { createAssistant(input: { name: "pinned by alice", model: "m" }) { id } }`, {}, alice.token);
    const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "pinned" }) { id } }`, {}, alice.token);
    await app.ok(`mutation($c: UUID!, $a: UUID!) { pinAssistant(conversationId: $c, assistantId: $a) { id } }`, { c: createConversation.id, a: createAssistant.id }, alice.token);
    await refusedWithoutEffect(`mutation($c: UUID!) { unpinAssistant(conversationId: $c) { id } }`, { c: createConversation.id });
    expect(await app.database.db.knex("conversations").where({ id: createConversation.id }).first("assistantVersionId")).not.toEqual({ assistantVersionId: null });
  },
  "Query.alerts": async () => {
    const { alerts } = await app.ok(`{ alerts { totalCount edges { node { id } } } }`, {}, bob.token);
    expect(JSON.stringify(alerts)).not.toContain(alertId);
  },
  "Mutation.raiseAlert": () =>
    refusedWithoutEffect(`mutation($u: UUID!) { raiseAlert(input: { severity: CRITICAL, source: "bob", message: "boo", userId: $u }) { id } }`, { u: alice.user.id }, "FORBIDDEN"),
  "Mutation.acknowledgeAlert": () => refusedWithoutEffect(`mutation($id: UUID!) { acknowledgeAlert(id: $id) { id } }`, { id: alertId }, "FORBIDDEN"),
  "Mutation.resolveAlert": () => refusedWithoutEffect(`mutation($id: UUID!) { resolveAlert(id: $id) { id } }`, { id: alertId }, "FORBIDDEN"),
  // Feedback: Bob neither rates, retracts nor counts what Alice thought of a reply in her conversation.
  "Mutation.rateMessage": async () => {
    await refusedWithoutEffect(`mutation($m: UUID!) { rateMessage(input: { messageId: $m, rating: DOWN }) { id } }`, { m: ratedReplyId });
    expect(await app.database.db.knex("feedback").where({ messageId: ratedReplyId }).select("userId", "rating")).toEqual([{ userId: alice.user.id, rating: "up" }]);
  },
  "Mutation.retractFeedback": async () => {
    await refusedWithoutEffect(`mutation($m: UUID!, $u: UUID) { retractFeedback(messageId: $m, userId: $u) }`, { m: ratedReplyId, u: alice.user.id });
    expect(await app.database.db.knex("feedback").where({ messageId: ratedReplyId }).select("userId")).toEqual([{ userId: alice.user.id }]);
  },
  "Query.feedbackStats": () =>
    refusedWithoutEffect(`{ feedbackStats(filter: { from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z" }, groupBy: [MODEL]) { up down } }`, {}, "FORBIDDEN"),
  "Subscription.alertRaised": async () => {
    // Bob's stream gets the alert about him, and none of the one about Alice raised first.
    const client = wsClient(app.url, bob.token);
    try {
      const streams = app.server.live.size;
      const first = client.iterate({ query: `subscription { alertRaised { userId message } }` }).next();
      await streamsOpen(streams + 1);
      const RAISE = `mutation($u: UUID!, $m: String!) { raiseAlert(input: { severity: INFO, source: "test", message: $m, userId: $u }) { id } }`;
      await app.ok(RAISE, { u: alice.user.id, m: "about alice" }, admin.token);
      await app.ok(RAISE, { u: bob.user.id, m: "about bob" }, admin.token);
      const { value } = await first;
      expect(value?.data).toEqual({ alertRaised: { userId: bob.user.id, message: "about bob" } });
    } finally {
      await client.dispose();
    }
  },
  // Data exports: an archive is its user's alone; deleting users is for admins.
  "Mutation.exportMyData": async () => {
    const archive = await exportedArchive(bob);
    expect(archive).not.toContain("my secret");
    expect(archive).not.toContain(conversationId);
  },
  "Query.dataExport": async () => refusedWithoutEffect(`query($id: UUID!) { dataExport(id: $id) { id } }`, { id: await aliceExportId() }),
  "Query.myDataExports": async () => {
    const id = await aliceExportId();
    expect(JSON.stringify((await app.ok(`{ myDataExports(first: 100) { edges { node { id } } } }`, {}, bob.token)).myDataExports)).not.toContain(id);
  },
  "Mutation.deleteDataExport": async () => {
    const id = await aliceExportId();
    await refusedWithoutEffect(`mutation($id: UUID!) { deleteDataExport(id: $id) }`, { id });
    expect(await app.database.db.knex("data_exports").where({ id }).first("status")).toEqual({ status: "ready" });
  },
  "Mutation.deleteUser": async () => {
    await refusedWithoutEffect(`mutation($u: UUID!) { deleteUser(id: $u, mode: DELETE) { userId } }`, { u: alice.user.id }, "FORBIDDEN");
    expect(await app.database.db.knex("users").where({ id: alice.user.id }).first("displayName")).toEqual({ displayName: "alice" });
  },
};

/** `user`'s READY data export, polled to the end (a bounded number of polls). */
async function settledExport(user: TestUser, requestId: string): Promise<{ id: string; status: string }> {
  let current = (await app.ok(`mutation($r: String) { exportMyData(requestId: $r) { id status } }`, { r: requestId }, user.token)).exportMyData;
  for (let i = 0; i < 1200 && current.status === "PENDING"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    current = (await app.ok(`query($id: UUID!) { dataExport(id: $id) { id status } }`, { id: current.id }, user.token)).dataExport;
  }
  expect(current.status).toBe("READY");
  return current;
}

let aliceExport: Promise<string> | undefined;
const aliceExportId = () => (aliceExport ??= settledExport(alice, "isolation").then((row) => row.id));

/** The text of `user`'s own archive. */
async function exportedArchive(user: TestUser): Promise<string> {
  const { id } = await settledExport(user, "isolation");
  const response = await fetch(`${app.url}/exports/${id}/download`, { headers: { authorization: `Bearer ${user.token}` } });
  expect(response.status).toBe(200);
  return response.text();
}

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.makeUser(Role.MEMBER, "alice");
  aliceKeyId = (await app.database.db.knex("api_keys").where({ userId: alice.user.id }).first("id")).id;
  bob = await app.makeUser(Role.MEMBER, "bob");
  const { createConversation } = await app.ok(`mutation { createConversation(input: { title: "private" }) { id } }`, {}, alice.token);
  conversationId = createConversation.id;
  const { addMessage } = await app.ok(
    `mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "my secret" }) { id } }`,
    { id: conversationId },
    alice.token,
  );
  messageId = addMessage.id;
  const { createTranscript } = await app.ok(
    `mutation($id: UUID!) { createTranscript(input: { conversationId: $id, format: JSON }) { id status } }`,
    { id: conversationId },
    alice.token,
  );
  expect(createTranscript.status).toBe("READY");
  transcriptId = createTranscript.id;
  admin = await app.makeUser(Role.ADMIN, "admin");
  const { addMessage: answer } = await app.ok(
    `mutation($id: UUID!) { addMessage(input: { conversationId: $id, role: ASSISTANT, content: "an answer" }) { id } }`,
    { id: conversationId },
    admin.token,
  );
  ({ createArtifact: { id: artifactId } } = await app.ok(
    `mutation($m: UUID!) { createArtifact(input: { messageId: $m, kind: CODE, title: "alice.py", content: "print('hi')" }) { id } }`,
    { m: answer.id },
    admin.token,
  ));
  ({ addMessage: { id: ratedReplyId } } = await app.ok(
    `mutation($id: UUID!) { addMessage(input: { conversationId: $id, role: ASSISTANT, content: "a rated answer" }) { id } }`,
    { id: conversationId },
    admin.token,
  ));
  await app.ok(`mutation($m: UUID!) { rateMessage(input: { messageId: $m, rating: UP }) { id } }`, { m: ratedReplyId }, alice.token);
  ({ upsertAiModel: { id: modelId } } = await app.ok(
    `mutation { upsertAiModel(input: { provider: "p", name: "iso-model", price: { inputPerMillion: 1, outputPerMillion: 1 } }) { id } }`,
    {},
    admin.token,
  ));
  await app.ok(
    `mutation($c: UUID!) { recordAiRequest(input: { requestId: "alice-spend", conversationId: $c, model: "iso-model", promptTokens: 1000000 }) { id } }`,
    { c: conversationId },
    admin.token,
  );
  ({ setBudget: { id: budgetId } } = await app.ok(`mutation($u: UUID!) { setBudget(input: { userId: $u, period: MONTHLY, limitUsd: 5 }) { id } }`, { u: alice.user.id }, admin.token));
  ({ raiseAlert: { id: alertId } } = await app.ok(
    `mutation($u: UUID!) { raiseAlert(input: { severity: WARNING, source: "test", message: "alice only", userId: $u }) { id } }`,
    { u: alice.user.id },
    admin.token,
  ));
});
afterAll(() => app.dispose());

describe("isolation between members", () => {
  it("has an outsider case for every root field of the schema", async () => {
    const { __schema } = await app.ok(getIntrospectionQuery(), {}, alice.token);
    const roots = [__schema.queryType.name, __schema.mutationType?.name, __schema.subscriptionType?.name].filter(Boolean);
    const fields = __schema.types
      .filter((type: any) => roots.includes(type.name))
      .flatMap((type: any) => type.fields.map((field: any) => `${type.name}.${field.name}`));
    expect(fields.sort()).toEqual(Object.keys(cases).sort());
  });

  it.each(Object.keys(cases))("%s does not reach another member's data", async (field) => {
    await cases[field]();
  });

  it("GET /transcripts/:id/download answers an outsider 404, exactly like an unknown id", async () => {
    const get = (id: string, token: string) => fetch(`${app.url}/transcripts/${id}/download`, { headers: { authorization: `Bearer ${token}` } });
    const [outsider, unknown, owner] = await Promise.all([
      get(transcriptId, bob.token),
      get("00000000-0000-4000-8000-000000000000", bob.token),
      get(transcriptId, alice.token),
    ]);
    expect(outsider.status).toBe(404);
    const body = await outsider.text();
    expect(body).toBe(await unknown.text());
    expect(body).not.toContain("my secret");
    expect(owner.status).toBe(200);
    expect(await owner.text()).toContain("my secret");
  });

  it("GET /exports/:id/download answers an outsider (and an admin) 404, exactly like an unknown id", async () => {
    const id = await aliceExportId();
    const get = (exportId: string, token: string) => fetch(`${app.url}/exports/${exportId}/download`, { headers: { authorization: `Bearer ${token}` } });
    const [outsider, unknown, byAdmin, owner] = await Promise.all([
      get(id, bob.token),
      get("00000000-0000-4000-8000-000000000000", bob.token),
      get(id, admin.token),
      get(id, alice.token),
    ]);
    expect(outsider.status).toBe(404);
    expect(byAdmin.status).toBe(404);
    const body = await outsider.text();
    expect(body).toBe(await unknown.text());
    expect(body).not.toContain("my secret");
    expect(owner.status).toBe(200);
    expect(await owner.text()).toContain("my secret");
  });

  it("GET /artifacts/:id/download and PUT /artifacts/:id/content answer an outsider 404, exactly like an unknown id", async () => {
    const unknownId = "00000000-0000-4000-8000-000000000000";
    const get = (id: string, token: string) => fetch(`${app.url}/artifacts/${id}/download`, { headers: { authorization: `Bearer ${token}` } });
    const put = (id: string, token: string) =>
      fetch(`${app.url}/artifacts/${id}/content`, { method: "PUT", headers: { authorization: `Bearer ${token}` }, body: "pwned" });
    const [outsider, unknown, owner] = await Promise.all([get(artifactId, bob.token), get(unknownId, bob.token), get(artifactId, alice.token)]);
    expect(outsider.status).toBe(404);
    const body = await outsider.text();
    expect(body).toBe(await unknown.text());
    expect(body).not.toContain("print");
    expect(owner.status).toBe(200);
    expect(await owner.text()).toBe("print('hi')");
    const [putOutsider, putUnknown] = await Promise.all([put(artifactId, bob.token), put(unknownId, bob.token)]);
    expect(putOutsider.status).toBe(404);
    expect(await putOutsider.text()).toBe(await putUnknown.text());
  });

  it("a service sees only the metrics it recorded", async () => {
    const [one, two] = [await app.makeUser(Role.SERVICE), await app.makeUser(Role.SERVICE)];
    await app.ok(`mutation { recordMetrics(input: [{ clientBotId: "bot-one", metricType: "latency" }]) }`, {}, one.token);
    const { metrics } = await app.ok(`{ metrics { totalCount edges { node { clientBotId } } } }`, {}, two.token);
    expect(metrics).toEqual({ totalCount: 0, edges: [] });
  });
});

describe("isolation from services", () => {
  let worker: TestUser;
  let other: string; // a second conversation of Alice's

  beforeAll(async () => {
    worker = await app.makeUser(Role.SERVICE, "worker");
    ({ createConversation: { id: other } } = await app.ok(`mutation { createConversation(input: { title: "other" }) { id } }`, {}, alice.token));
  });

  const read = (id: string, token: string) => app.gql(`query($id: UUID!) { conversation(id: $id) { id } }`, { id }, token);
  const write = (id: string, token: string, extra = "") =>
    app.gql(`mutation($id: UUID!) { addMessage(input: { conversationId: $id, role: ASSISTANT, content: "hi" ${extra} }) { id } }`, { id }, token);

  it("reaches nothing without a grant", async () => {
    expect((await read(conversationId, worker.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect((await write(conversationId, worker.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
  });

  it("reaches exactly the granted conversation, and cannot act for its owner with a single-conversation grant", async () => {
    await app.grant(worker, { conversationId });
    expect((await read(conversationId, worker.token)).body.data?.conversation.id).toBe(conversationId);
    expect((await write(conversationId, worker.token)).body.errors).toBeUndefined();
    expect((await read(other, worker.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const actAs = await write(conversationId, worker.token, `, actAs: "${alice.user.id}"`);
    expect(actAs.body.errors?.[0].extensions?.code).toBe("FORBIDDEN");
  });

  it("with the DISCORD grant reaches no web conversation, through the Discord adapter's fields either", async () => {
    const adapter = await app.makeUser(Role.SERVICE, "discord adapter");
    await app.grant(adapter, { origin: "discord" });
    expect((await read(conversationId, adapter.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect((await app.gql(`query($m: UUID!) { message(id: $m) { discordPost { status } } }`, { m: messageId }, adapter.token)).body.errors?.[0].extensions?.code).toBe(
      "NOT_FOUND",
    );
    const post = `mutation($m: UUID!) { recordDiscordPost(input: { messageId: $m, discordMessageIds: [], status: POSTED }) { status } }`;
    expect((await app.gql(post, { m: messageId }, adapter.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const edit = `mutation($c: UUID!) { recordDiscordEdit(input: { conversationId: $c, discordMessageId: "1", content: "x" }) { id } }`;
    expect((await app.gql(edit, { c: conversationId }, adapter.token)).body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const { discordBindings } = await app.ok(`{ discordBindings { edges { node { conversation { id } } } } }`, {}, adapter.token);
    expect(JSON.stringify(discordBindings)).not.toContain(conversationId);
    expect(await app.database.db.knex("discord_posts").where({ messageId }).first()).toBeUndefined();
  });

  it("with an origin grant reaches that origin's conversations and writes as their users, recording itself as sender", async () => {
    await app.grant(worker, { origin: "web" });
    expect((await read(other, worker.token)).body.data?.conversation.id).toBe(other);
    const { body } = await app.gql(
      `mutation($id: UUID!, $u: UUID!) { addMessage(input: { conversationId: $id, content: "relayed", actAs: $u }) { author { id } sentBy { id } } }`,
      { id: other, u: alice.user.id },
      worker.token,
    );
    expect(body.data?.addMessage).toEqual({ author: { id: alice.user.id }, sentBy: { id: worker.user.id } });
  });
});
