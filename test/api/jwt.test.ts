/**
 * JWT bearer tokens from an identity provider: HS256 with a shared secret, and RS256 from a JWKS served by a
 * local http server. A first valid token provisions a member; every invalid token gets the same 401 answer
 * as an unknown API key; roles come from Parley's database, never from claims.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { createClient, type Client } from "graphql-ws";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type KeyLike } from "jose";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type GqlResponse, type TestApp, type TestUser } from "../helpers/server";

const SECRET = "parley-test-jwt-secret-0123456789abcdef"; // 39 bytes: above the 32-byte minimum
const ISSUER = "https://idp.example.test/";
const AUDIENCE = "parley-api";
const TOLERANCE = 120; // JWT_CLOCK_TOLERANCE_SECONDS of the main app

const VIEWER = `{ viewer { id displayName role isActive email externalId } }`;
const secretKey = new TextEncoder().encode(SECRET);
const nowSeconds = () => Math.floor(Date.now() / 1000);

let subjects = 0;
/** A subject no other test uses. */
const newSub = (label = "sub") => `${label}|${process.pid}-${++subjects}`;

interface TokenOptions {
  /** null: no `sub` claim. Default: a new subject. */
  sub?: string | null;
  iss?: string;
  aud?: string;
  /** null: no `exp` claim. Default: in ten minutes. */
  exp?: number | null;
  nbf?: number;
  iat?: number;
  alg?: string;
  kid?: string;
  key?: KeyLike | Uint8Array;
}

async function sign(claims: Record<string, unknown> = {}, o: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: o.alg ?? "HS256", typ: "JWT", ...(o.kid ? { kid: o.kid } : {}) })
    .setIssuedAt(o.iat ?? nowSeconds())
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE);
  if (o.sub !== null) jwt.setSubject(o.sub ?? newSub());
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? nowSeconds() + 600);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(o.key ?? secretKey);
}

let app: TestApp; // HS256, issuer and audience required, tolerance TOLERANCE
let strict: TestApp; // the same database, tolerance 0
let noProvision: TestApp; // the same database, JWT_AUTO_PROVISION=false
let admin: TestUser;
/** The answer to an unknown API key: every refused JWT must get exactly this. */
let refused: GqlResponse;

const usersWithSub = (sub: string) => app.database.db.knex("users").where({ externalId: sub }).select("id", "role", "email", "displayName");

function expectRefused(response: GqlResponse): void {
  expect(response.status).toBe(401);
  expect(response.body.errors?.map((e) => e.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
  // Same status, message and extensions as any other refused token: nothing tells which check failed.
  expect(response.body).toEqual(refused.body);
}

beforeAll(async () => {
  const jwtEnv = { JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };
  app = await createTestApp({ ...jwtEnv, JWT_CLOCK_TOLERANCE_SECONDS: String(TOLERANCE) });
  strict = await createTestApp({ ...jwtEnv, JWT_CLOCK_TOLERANCE_SECONDS: "0" }, app.database);
  noProvision = await createTestApp({ ...jwtEnv, JWT_AUTO_PROVISION: "false" }, app.database);
  admin = await app.makeUser(Role.ADMIN, "Admin");
  refused = await app.gql(VIEWER, {}, `pk_${"A".repeat(43)}`);
  expect(refused.status).toBe(401);
  expect(refused.body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
});
afterAll(async () => {
  await noProvision?.server.dispose();
  await strict?.server.dispose();
  await app?.dispose();
});

describe("HS256 tokens", () => {
  it("provision a MEMBER on the first valid token, named after `name`, and map the same subject to the same user", async () => {
    const sub = newSub("ada");
    expect(await usersWithSub(sub)).toEqual([]);

    const first = await app.ok(VIEWER, {}, await sign({ name: "Ada Lovelace", preferred_username: "ada" }, { sub }));
    expect(first.viewer).toEqual({ id: expect.any(String), displayName: "Ada Lovelace", role: "MEMBER", isActive: true, email: null, externalId: sub });

    // A later token of the same subject (other claims, other iat) is the same user, not a new one.
    const second = await app.ok(VIEWER, {}, await sign({ name: "Someone Else" }, { sub, iat: nowSeconds() - 5 }));
    expect(second.viewer.id).toBe(first.viewer.id);
    expect(await usersWithSub(sub)).toEqual([{ id: first.viewer.id, role: "member", email: null, displayName: "Ada Lovelace" }]);
  });

  it.each([
    ["preferred_username without a name", { preferred_username: "grace_h", email: "g@example.com" }, "grace_h"],
    ["a blank name", { name: "   ", preferred_username: "blank_name_user" }, "blank_name_user"],
    ["email without a name or username", { email: "linus@example.com" }, "linus@example.com"],
    ["the subject when nothing else is there", {}, "SUB"],
  ])("name the provisioned user after %s", async (_case, claims, expected) => {
    const sub = newSub("named");
    const { viewer } = await app.ok(VIEWER, {}, await sign(claims, { sub }));
    expect(viewer.displayName).toBe(expected === "SUB" ? sub : expected);
    expect(viewer.role).toBe("MEMBER");
  });

  it("store the email only when email_verified is true", async () => {
    const verified = await app.ok(VIEWER, {}, await sign({ email: "verified@example.com", email_verified: true }));
    expect(verified.viewer.email).toBe("verified@example.com");

    for (const claims of [
      { email: "unverified@example.com", email_verified: false },
      { email: "string-true@example.com", email_verified: "true" },
      { email: "no-flag@example.com" },
    ]) {
      const sub = newSub("email");
      const { viewer } = await app.ok(VIEWER, {}, await sign(claims, { sub }));
      expect(viewer.email).toBeNull();
      expect((await usersWithSub(sub))[0].email).toBeNull();
    }
  });

  it("provision a new subject whose verified email another user already has, without taking the email", async () => {
    const { viewer: owner } = await app.ok(VIEWER, {}, await sign({ email: "Shared@Example.com", email_verified: true }));
    expect(owner.email).toBe("Shared@Example.com");

    const sub = newSub("same-email");
    const response = await app.gql(VIEWER, {}, await sign({ name: "Second Account", email: "shared@example.com", email_verified: true }, { sub }));
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data?.viewer).toMatchObject({ displayName: "Second Account", role: "MEMBER", email: null, externalId: sub });
    expect(response.body.data?.viewer.id).not.toBe(owner.id);
  });

  it("create exactly one user and one user.provision entry when first requests of a new subject race", async () => {
    const sub = newSub("race");
    const token = await sign({ name: "Racer" }, { sub });
    const responses = await Promise.all(Array.from({ length: 8 }, () => app.gql(VIEWER, {}, token)));
    for (const response of responses) expect(response.body.errors).toBeUndefined();
    const ids = new Set(responses.map((r) => r.body.data?.viewer.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect(await usersWithSub(sub)).toEqual([expect.objectContaining({ id })]);
    const entries = await app.database.db.knex("audit_logs").where({ action: "user.provision", targetId: id }).count({ n: "*" });
    expect(Number(entries[0].n)).toBe(1);
  });

  it("record a user.provision audit entry with the request's IP and request id", async () => {
    const sub = newSub("audited");
    const response = await fetch(`${app.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await sign({}, { sub })}`, "x-request-id": "jwt-provision-1" },
      body: JSON.stringify({ query: VIEWER }),
    });
    const id = ((await response.json()) as any).data.viewer.id;
    const { auditLogs } = await app.ok(
      `query($id: String!) { auditLogs(filter: { action: "user.provision", targetId: $id }) { totalCount edges { node { actorId action targetType targetId details ip requestId } } } }`,
      { id },
      admin.token,
    );
    expect(auditLogs.totalCount).toBe(1);
    const [{ node }] = auditLogs.edges;
    expect(node).toMatchObject({ actorId: id, action: "user.provision", targetType: "user", targetId: id, details: { via: "jwt" }, requestId: "jwt-provision-1" });
    expect(["127.0.0.1", "::ffff:127.0.0.1"]).toContain(node.ip);
  });

  it("take roles from the database, never from claims", async () => {
    const sub = newSub("claims-admin");
    const token = await sign({ role: "admin", roles: ["admin"], "https://parley/role": "ADMIN", groups: ["admins"] }, { sub });
    const { viewer } = await app.ok(VIEWER, {}, token);
    expect(viewer.role).toBe("MEMBER");
    expect(await app.errorCode(`{ users { totalCount } }`, {}, token)).toBe("FORBIDDEN");

    // The database decides: an admin raises the user, and the same token now carries that role.
    await app.ok(`mutation($id: UUID!) { setUserRole(id: $id, role: SERVICE) { role } }`, { id: viewer.id }, admin.token);
    expect((await app.ok(VIEWER, {}, token)).viewer.role).toBe("SERVICE");
  });

  it("accept a token that expired within JWT_CLOCK_TOLERANCE_SECONDS, which a server without tolerance refuses", async () => {
    const token = await sign({}, { exp: nowSeconds() - 30, iat: nowSeconds() - 600 });
    expect((await app.ok(VIEWER, {}, token)).viewer.role).toBe("MEMBER");
    expectRefused(await strict.gql(VIEWER, {}, token));
  });

  it("accept a token whose nbf is within the tolerance", async () => {
    const token = await sign({}, { nbf: nowSeconds() + 30 });
    expect((await app.ok(VIEWER, {}, token)).viewer.role).toBe("MEMBER");
    expectRefused(await strict.gql(VIEWER, {}, token));
  });

  const unsigned = (sub: string) =>
    new UnsecuredJWT({}).setSubject(sub).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime("10m").encode();
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

  it.each<[string, (sub: string) => Promise<string> | string]>([
    ["expired beyond the tolerance", (sub) => sign({}, { sub, exp: nowSeconds() - TOLERANCE - 600, iat: nowSeconds() - 7200 })],
    ["not valid before a time in the future", (sub) => sign({}, { sub, nbf: nowSeconds() + TOLERANCE + 600 })],
    ["signed with another secret", (sub) => sign({}, { sub, key: new TextEncoder().encode(`${SECRET}-but-not-quite`) })],
    ["from another issuer", (sub) => sign({}, { sub, iss: "https://evil.example.test/" })],
    ["for another audience", (sub) => sign({}, { sub, aud: "someone-else" })],
    ["without sub", () => sign({ name: "no subject" }, { sub: null })],
    ["with an empty sub", () => sign({}, { sub: "" })],
    ["without exp", (sub) => sign({}, { sub, exp: null })],
    ["signed with HS512 instead of HS256", (sub) => sign({}, { sub, alg: "HS512" })],
    ["with alg none (unsigned)", (sub) => unsigned(sub)],
    ["with alg none and a made-up signature", (sub) => `${unsigned(sub).slice(0, -1)}.c2lnbmF0dXJl`],
    ["with a header claiming HS256 but no signature", (sub) => `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 600 })}.`],
    ["a garbage three-part string", () => "abc.def.ghi"],
    ["a valid token with its payload swapped", async (sub) => {
      const [header, , signature] = (await sign({}, { sub })).split(".");
      return `${header}.${b64({ sub: `${sub}-swapped`, iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 600 })}.${signature}`;
    }],
  ])("refuse a token %s with the same 401 as any bad token, and provision nobody", async (_case, make) => {
    const sub = newSub("refused");
    expectRefused(await app.gql(VIEWER, {}, await make(sub)));
    expect(await usersWithSub(sub)).toEqual([]);
    expect(await usersWithSub(`${sub}-swapped`)).toEqual([]);
  });

  it("refuse the token of a deactivated user at once, and accept it again after reactivation", async () => {
    const token = await sign({ name: "Soon Gone" });
    const { viewer } = await app.ok(VIEWER, {}, token);
    await app.ok(`mutation($id: UUID!) { deactivateUser(id: $id) { isActive } }`, { id: viewer.id }, admin.token);
    expectRefused(await app.gql(VIEWER, {}, token));
    // A new token of that subject does not provision a second user.
    const sub = (await app.database.db.knex("users").where({ id: viewer.id }).first("externalId")).externalId;
    expectRefused(await app.gql(VIEWER, {}, await sign({}, { sub })));
    expect(await usersWithSub(sub)).toHaveLength(1);

    await app.ok(`mutation($id: UUID!) { reactivateUser(id: $id) { isActive } }`, { id: viewer.id }, admin.token);
    expect((await app.ok(VIEWER, {}, token)).viewer.id).toBe(viewer.id);
  });

  it("authenticate a graphql-ws connection with a JWT in connection_init", async () => {
    const token = await sign({ name: "Socket User" });
    const { viewer } = await app.ok(VIEWER, {}, token);
    const viaSocket = async (authorization: string) => {
      let closeCode: number | undefined;
      const client: Client = createClient({
        url: `${app.url.replace("http", "ws")}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization },
        retryAttempts: 0,
        lazy: true,
        on: { closed: (event) => void (closeCode = (event as { code: number }).code) },
      });
      try {
        for await (const result of client.iterate({ query: "{ viewer { id displayName } }" })) return { result, closeCode };
        throw new Error("no result");
      } catch (error) {
        return { error, closeCode };
      } finally {
        await client.dispose();
      }
    };
    const accepted = await viaSocket(`Bearer ${token}`);
    expect(accepted).toMatchObject({ result: { data: { viewer: { id: viewer.id, displayName: "Socket User" } } } });

    const rejected = await viaSocket(`Bearer ${await sign({}, { aud: "someone-else" })}`);
    expect(rejected.error).toBeDefined();
    expect(rejected.closeCode).toBe(4403);
  });
});

describe("JWT_AUTO_PROVISION=false", () => {
  it("refuses an unknown subject without creating it, and accepts a subject an admin linked to a user", async () => {
    const sub = newSub("no-provision");
    const token = await sign({ name: "Stranger" }, { sub });
    expectRefused(await noProvision.gql(VIEWER, {}, token));
    expect(await usersWithSub(sub)).toEqual([]);

    const member = await app.makeUser(Role.MEMBER, "Linked");
    await app.database.db.knex("users").where({ id: member.user.id }).update({ externalId: sub });
    const { viewer } = await noProvision.ok(VIEWER, {}, token);
    expect(viewer).toMatchObject({ id: member.user.id, displayName: "Linked", role: "MEMBER", externalId: sub });
    // Still nothing created: the linked user is the only one with that subject.
    expect(await usersWithSub(sub)).toEqual([expect.objectContaining({ id: member.user.id })]);
  });
});

describe("JWKS (RS256)", () => {
  const KID = "test-key-1";
  let jwksServer: http.Server;
  let jwks: TestApp;
  let providerKey: KeyLike;
  let otherKey: KeyLike;
  let publicPem: string;
  let jwksRequests = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256");
    providerKey = pair.privateKey;
    otherKey = (await generateKeyPair("RS256")).privateKey;
    publicPem = await exportSPKI(pair.publicKey);
    const body = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: "RS256", use: "sig" }] });
    jwksServer = http.createServer((req, res) => {
      jwksRequests++;
      if (req.url !== "/.well-known/jwks.json") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const { port } = jwksServer.address() as AddressInfo;
    jwks = await createTestApp({ JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
  });
  afterAll(async () => {
    await jwks?.dispose();
    jwksServer?.closeAllConnections();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  const rs256 = (claims: Record<string, unknown>, o: TokenOptions = {}) => sign(claims, { alg: "RS256", kid: KID, key: providerKey, ...o });

  it("accepts an RS256 token signed by a key in the provider's JWKS and provisions its subject", async () => {
    const sub = newSub("rs");
    const { viewer } = await jwks.ok(VIEWER, {}, await rs256({ name: "Key Set User" }, { sub }));
    expect(viewer).toMatchObject({ displayName: "Key Set User", role: "MEMBER", externalId: sub });
    expect(jwksRequests).toBeGreaterThan(0);
    // The same subject again is the same user.
    expect((await jwks.ok(VIEWER, {}, await rs256({}, { sub }))).viewer.id).toBe(viewer.id);
  });

  it.each<[string, () => Promise<string>]>([
    ["signed by another RSA key with the provider's kid", () => rs256({}, { key: otherKey })],
    ["signed by another RSA key with an unknown kid", () => rs256({}, { key: otherKey, kid: "unknown-key" })],
    ["signed with HS256 (shared secrets are off when a JWKS is configured)", () => sign({})],
    ["signed with HS256 using the provider's public key as the secret", () => sign({}, { key: new TextEncoder().encode(publicPem), kid: KID })],
    ["from another issuer", () => rs256({}, { iss: "https://evil.example.test/" })],
  ])("refuses a token %s", async (_case, make) => {
    const response = await jwks.gql(VIEWER, {}, await make());
    expect(response.status).toBe(401);
    expect(response.body).toEqual(refused.body);
  });
});
