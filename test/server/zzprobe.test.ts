import http from "node:http";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

let app: TestApp; let member: TestUser; let admin: TestUser; let service: TestUser;
const out: unknown[] = [];
function raw(port: number, method: string, headers: Record<string, string>, body?: string, path = "/graphql"): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = ""; res.setEncoding("utf8"); res.on("data", (c) => (text += c)); res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject); if (body !== undefined) req.write(body); req.end();
  });
}
beforeAll(async () => {
  app = await createTestApp({ MAX_BODY_BYTES: "65536" });
  member = await app.makeUser(Role.MEMBER); admin = await app.makeUser(Role.ADMIN); service = await app.makeUser(Role.SERVICE);
});
afterAll(async () => { require("fs").writeFileSync(`/tmp/probe/${process.env.PARLEY_TEST_DB}.json`, JSON.stringify(out, null, 1)); await app.dispose(); });

it("probe", async () => {
  const j = { "content-type": "application/json", authorization: `Bearer ${member.token}` };
  const log = async (name: string, p: Promise<{ status: number; text: string }>) => out.push({ name, ...(await p) });
  const port = app.server.port;
  for (const body of ['', '{', 'null', '[]', '"x"', '123', '{}', '{"query":5}', '{"query":null}', '{"query":"{ viewer { id } }","variables":"x"}', '{"query":"{ viewer { id } }","variables":[1]}', '{"query":"{ viewer { id } }","operationName":5}', '[{"query":"{ viewer { id } }"}]', '{"query":"{ viewer { id } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}', '\ufeff{"query":"{ viewer { id } }"}', '{"query":"{ viewer { id } }"} trailing', "{'query':'x'}", '{"query":"{ viewer { id } }","query":"mutation { x }"}']) {
    await log("body:" + body, raw(port, "POST", j, body));
  }
  for (const ct of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/graphql", "application/xml", "", "application/json; charset=utf-16", "application/jsonx", "text/html"]) {
    const h: Record<string, string> = { authorization: `Bearer ${member.token}` }; if (ct) h["content-type"] = ct;
    await log("ct:" + ct, raw(port, "POST", h, JSON.stringify({ query: "{ viewer { id } }" })));
    await log("ct+pre:" + ct, raw(port, "POST", { ...h, "apollo-require-preflight": "true" }, JSON.stringify({ query: "{ viewer { id } }" })));
  }
  const conv = (await app.ok<any>(`mutation { createConversation(input: { title: "t" }) { id } }`, {}, member.token)).createConversation.id as string;
  const g = async (name: string, q: string, v: any, t = member.token) => { const r = await fetch(`${app.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${t}` }, body: JSON.stringify({ query: q, variables: v }) }); out.push({ name, status: r.status, text: await r.text() }); };
  await g("upper", `query($id: UUID!) { conversation(id: $id) { id } }`, { id: conv.toUpperCase() });
  await g("braces", `query($id: UUID!) { conversation(id: $id) { id } }`, { id: `{${conv}}` });
  await g("trail", `query($id: UUID!) { conversation(id: $id) { id } }`, { id: `${conv}}` });
  await g("trail-add", `mutation($id: UUID!) { addMessage(input: { conversationId: $id, content: "x" }) { id } }`, { id: `${conv}}` });
  await g("trail-msg", `query($id: UUID!) { message(id: $id) { id } }`, { id: `${conv}}` });
  await g("trail-grant", `mutation($id: UUID!) { revokeServiceGrant(id: $id) }`, { id: `${conv}}` }, admin.token);
  await g("trail-sg", `query($id: UUID) { serviceGrants(serviceId: $id) { id } }`, { id: `${conv}}` }, admin.token);
  await g("trail-keys", `query($id: UUID) { apiKeys(userId: $id) { id } }`, { id: `${conv}}` }, admin.token);
  await g("bad uuid var", `query($id: UUID!) { conversation(id: $id) { id } }`, { id: "nope" });
  await g("bad uuid lit", `{ conversation(id: "nope") { id } }`, {});
  await g("nul reqid", `mutation($r: String) { addMessage(input: { conversationId: "${conv}", content: "x", requestId: $r }) { id } }`, { r: "a\u0000b" });
  await g("nul model", `mutation($r: String) { addMessage(input: { conversationId: "${conv}", content: "x", model: $r }) { id } }`, { r: "a\u0000b" }, admin.token);
  await g("nul key", `mutation($r: String!) { setSystemConfig(key: $r, value: 1) { key } }`, { r: "a\u0000b" }, admin.token);
  await g("nul desc", `mutation($r: String) { setSystemConfig(key: "k", value: 1, description: $r) { key } }`, { r: "a\u0000b" }, admin.token);
  await g("nul sysconfig", `query($r: String!) { systemConfig(key: $r) { key } }`, { r: "a\u0000b" }, admin.token);
  await g("nul displayName", `mutation($r: String!) { createUser(input: { displayName: $r }) { id } }`, { r: "a\u0000b" }, admin.token);
  await g("nul ext", `mutation($r: String) { createUser(input: { displayName: "x", externalId: $r }) { id } }`, { r: "a\u0000b" }, admin.token);
  await g("nul discord name", `mutation($r: String!) { upsertDiscordUser(input: { discordId: "1", displayName: $r }) { id } }`, { r: "a\u0000b" }, admin.token);
  await g("nul filter", `query($r: String) { metrics(filter: { clientBotId: $r }) { totalCount } }`, { r: "a\u0000b" }, service.token);
  await g("nul audit", `query($r: String) { auditLogs(filter: { action: $r }) { totalCount } }`, { r: "a\u0000b" }, admin.token);
  await g("nul cursor", `query($r: String) { conversations(after: $r) { totalCount } }`, { r: "a\u0000b" });
  await g("cursor baddate", `query($r: String) { conversations(after: $r) { totalCount edges { cursor } } }`, { r: Buffer.from(JSON.stringify(["2024-13-45T99:99:99.999Z", conv])).toString("base64url") });
  await g("cursor hugeseq", `query($id: UUID!, $r: String) { conversation(id: $id) { messages(after: $r) { totalCount } } }`, { id: conv, r: Buffer.from(JSON.stringify([9007199254740991])).toString("base64url") });
  await g("first 2^31", `{ conversations(first: 2147483648) { totalCount } }`, {});
  await g("first var 2^31", `query($n: Int) { conversations(first: $n) { totalCount } }`, { n: 2147483648 });
  await g("first -1", `{ conversations(first: -1) { totalCount } }`, {});
  await g("enum var", `query($s: ConversationStatus) { conversations(filter: { status: $s }) { totalCount } }`, { s: "DELETED" });
  await g("enum lit", `{ conversations(filter: { status: DELETED }) { totalCount } }`, {});
  await g("enum lowercase var", `query($s: ConversationStatus) { conversations(filter: { status: $s }) { totalCount } }`, { s: "active" });
  await g("datetime bad", `query($d: DateTime) { metrics(filter: { from: $d }) { totalCount } }`, { d: "yesterday" }, service.token);
  await g("datetime weird", `query($d: DateTime) { metrics(filter: { from: $d }) { totalCount } }`, { d: "275760-09-13T00:00:00.001Z" }, service.token);
  await g("recordedAt far", `mutation($d: DateTime) { recordMetrics(input: [{ clientBotId: "b", metricType: "t", recordedAt: $d }]) }`, { d: "0001-01-01T00:00:00Z" }, service.token);
  await g("metadata deep", `mutation($m: JSON) { addMessage(input: { conversationId: "${conv}", content: "x", metadata: $m }) { id } }`, { m: { a: JSON.parse("[".repeat(5000) + "]".repeat(5000)) } });
  await g("metadata string", `mutation($m: JSON) { addMessage(input: { conversationId: "${conv}", content: "x", metadata: $m }) { id } }`, { m: "'; drop table messages; --" });
  await g("nul in json key", `mutation($m: JSON) { addMessage(input: { conversationId: "${conv}", content: "x", metadata: $m }) { id } }`, { m: { "a\u0000": 1 } });
  await g("lone surrogate", `mutation($t: String) { createConversation(input: { title: $t }) { id title } }`, { t: "a\ud800b" });
  await g("costUsd NaN", `mutation { addMessage(input: { conversationId: "${conv}", content: "x", costUsd: 1e400 }) { id } }`, {}, admin.token);
  await g("alias mut", `mutation { ${Array.from({ length: 300 }, (_, i) => `a${i}: createConversation(input: {}) { id }`).join(" ")} }`, {});
  await g("ok", `{ viewer { id } }`, {});
});
