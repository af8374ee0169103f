/**
 * The Discord transport fetches transcript files from GET /transcripts/:id/download with its own key, as any
 * client does: the route's bytes, its refusals as OperationErrors with the route's code, nothing read past the
 * size limit, and an unreachable route as SERVICE_UNAVAILABLE (worth trying again).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Role } from "../../src/modules/user/role.enum";
import { createTransport, OperationError, type TransportDeps } from "../../src/discord/transport";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";
import { createTranscript, settled } from "../helpers/transcripts";

let app: TestApp;
let service: TestUser;
let alice: TestUser;
let deps: TransportDeps;
let discordTranscript: string; // of a Discord conversation: the service may read it
let webTranscript: string; // of Alice's web conversation: it may not

async function readyTranscript(user: TestUser, conversationId: string): Promise<string> {
  const { id } = await createTranscript(app, user, { conversationId, format: "JSON" });
  expect((await settled(app, user, id)).status).toBe("READY");
  return id;
}

const codeOf = (promise: Promise<unknown>) => promise.then(() => "no error", (error: unknown) => (error instanceof OperationError ? error.code : String(error)));

beforeAll(async () => {
  app = await createTestApp();
  service = await app.makeUser(Role.SERVICE, "discord");
  await app.grant(service, { origin: "discord" });
  alice = await app.makeUser(Role.MEMBER);
  const { server } = app;
  deps = { schema: server.schema, db: server.db, config: app.database.config, log: server.log, live: server.live, rateLimiter: server.rateLimiter, apiUrl: app.url };
  const create = `mutation($input: CreateConversationInput!) { createConversation(input: $input) { id } }`;
  const member = (await app.ok(`mutation { upsertDiscordUser(input: { discordId: "300000000000000001", displayName: "Dee" }) { id } }`, {}, service.token)).upsertDiscordUser;
  const channel = { origin: "DISCORD", discordGuildId: "100000000000000001", discordChannelId: "100000000000000002", ownerId: member.id };
  const discord = (await app.ok(create, { input: { title: "d", ...channel } }, service.token)).createConversation.id;
  const web = (await app.ok(create, { input: { title: "w" } }, alice.token)).createConversation.id;
  const add = `mutation($c: UUID!) { addMessage(input: { conversationId: $c, content: "hello there" }) { id } }`;
  await app.ok(add, { c: discord }, service.token);
  await app.ok(add, { c: web }, alice.token);
  discordTranscript = await readyTranscript(service, discord);
  webTranscript = await readyTranscript(alice, web);
});
afterAll(() => app.dispose());

it("returns the download route's file, named as the route names it", async () => {
  const file = await createTransport(deps, `Bearer ${service.token}`).transcriptFile(discordTranscript, 1 << 20);
  const route = await fetch(`${app.url}/transcripts/${discordTranscript}/download`, { headers: { authorization: `Bearer ${service.token}` } });
  expect(file?.name).toBe(`transcript-${discordTranscript}.json`);
  expect(file?.data.equals(Buffer.from(await route.arrayBuffer()))).toBe(true);
  expect(JSON.parse(file!.data.toString("utf8")).messages.map((m: { content: string }) => m.content)).toEqual(["hello there"]);
});

it("returns nothing for a file larger than the limit", async () => {
  const transport = createTransport(deps, `Bearer ${service.token}`);
  const size = (await transport.transcriptFile(discordTranscript, 1 << 20))!.data.length;
  expect(await transport.transcriptFile(discordTranscript, size - 1)).toBeUndefined();
  expect((await transport.transcriptFile(discordTranscript, size))?.data.length).toBe(size);
});

it("carries the route's refusals: another's file and a malformed id are NOT_FOUND, a revoked key UNAUTHENTICATED", async () => {
  const transport = createTransport(deps, `Bearer ${service.token}`);
  expect(await codeOf(transport.transcriptFile(webTranscript, 1 << 20))).toBe("NOT_FOUND");
  expect(await codeOf(transport.transcriptFile("../../graphql", 1 << 20))).toBe("NOT_FOUND");
  const other = await app.makeUser(Role.SERVICE, "other");
  await app.grant(other, { origin: "discord" });
  const [key] = (await app.ok(`{ apiKeys { id } }`, {}, other.token)).apiKeys;
  await app.ok(`mutation($id: UUID!) { revokeApiKey(id: $id) { id } }`, { id: key.id }, other.token);
  expect(await codeOf(createTransport(deps, `Bearer ${other.token}`).transcriptFile(discordTranscript, 1 << 20))).toBe("UNAUTHENTICATED");
});

it("reports an unreachable route as SERVICE_UNAVAILABLE", async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const transport = createTransport({ ...deps, apiUrl: `http://127.0.0.1:${port}` }, `Bearer ${service.token}`);
  expect(await codeOf(transport.transcriptFile(discordTranscript, 1 << 20))).toBe("SERVICE_UNAVAILABLE");
});
