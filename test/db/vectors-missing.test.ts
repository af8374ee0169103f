/**
 * A PostgreSQL where pgvector cannot be had (here: the migrating role may not create extensions, as on a managed
 * server before the operator enabled it): the migration still succeeds, documents and full-text search work,
 * and everything that needs a vector answers FEATURE_UNAVAILABLE naming the extension. Once the extension exists,
 * `npm run cli -- enable-vectors` adds the vector columns and vectors work. PostgreSQL only (PGlite bundles pgvector).
 */
import { randomBytes } from "node:crypto";
import knexFactory, { type Knex } from "knex";
import { createDatabase } from "../../src/db/database";
import { Role } from "../../src/modules/user/role.enum";
import { testConfig, type TestDatabase } from "../helpers/db";
import { createTestApp, type TestApp } from "../helpers/server";
import { parleyCli } from "../helpers/cli";
import { withDatabase } from "../setup/pg-urls";

const suffix = randomBytes(4).toString("hex");
const role = `parley_novec_${suffix}`;
const database = `parley_novec_${suffix}`;
const adminUrl = () => process.env.PARLEY_TEST_PG_ADMIN_URL!;
let admin: Knex;
let ownerUrl: string;

const UPSERT = `mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { id chunkCount embeddingModel } }`;
const SEARCH = `query($query: String, $embedding: [Float!]) { searchDocuments(query: $query, embedding: $embedding) { document { title } } }`;
const CONFIGURE = `mutation { configureKnowledgeBase(input: { scope: { kind: GLOBAL }, embeddingModel: "m", dimensions: 3 }) { dimensions } }`;

async function appOn(url: string): Promise<TestApp> {
  const config = testConfig(url);
  const shared: TestDatabase = { db: createDatabase(config), config, url, dispose: async () => undefined };
  const app = await createTestApp({}, shared);
  const dispose = app.dispose;
  app.dispose = async () => {
    await dispose();
    await shared.db.close();
  };
  return app;
}

beforeAll(async () => {
  admin = knexFactory({ client: "pg", connection: adminUrl() });
  await admin.raw(`create role ${role} login`);
  await admin.raw(`create database ${database} owner ${role}`);
  const url = new URL(withDatabase(adminUrl(), database));
  url.username = role;
  ownerUrl = url.toString();
});
afterAll(async () => {
  await admin.raw(`drop database if exists ${database} with (force)`);
  await admin.raw(`drop role if exists ${role}`);
  await admin.destroy();
});

describe("without pgvector", () => {
  it("migrates, keeps documents and full-text search, and refuses vectors naming the extension; enable-vectors then turns them on", async () => {
    const migrated = await parleyCli(["migrate"], { DATABASE_URL: ownerUrl, LOG_LEVEL: "warn" });
    expect(migrated.code).toBe(0);
    expect(migrated.stdout + migrated.stderr).toMatch(/pgvector is missing/);

    let app = await appOn(ownerUrl);
    try {
      const admin = await app.makeUser(Role.ADMIN, "admin");
      const stored = (await app.ok(UPSERT, { input: { scope: { kind: "GLOBAL" }, title: "Plain", text: "plain text about otters" } }, admin.token)).upsertDocument;
      expect(stored).toMatchObject({ chunkCount: 1, embeddingModel: null });
      expect((await app.ok(SEARCH, { query: "otters" }, admin.token)).searchDocuments).toEqual([{ document: { title: "Plain" } }]);
      for (const [query, variables] of [
        [UPSERT, { input: { scope: { kind: "GLOBAL" }, title: "Vec", chunks: [{ text: "x", embedding: [1, 0, 0] }] } }],
        [SEARCH, { embedding: [1, 0, 0] }],
        [CONFIGURE, {}],
      ] as const) {
        const { body } = await app.gql(query, variables, admin.token);
        expect(body.errors?.[0]).toMatchObject({ extensions: { code: "FEATURE_UNAVAILABLE", missing: "vector" } });
        expect(body.errors?.[0].message).toMatch(/"vector" \(pgvector\)/);
      }
    } finally {
      await app.dispose();
    }

    // Still refused while the extension is missing; the operator installs it (as a superuser), then enables.
    expect((await parleyCli(["enable-vectors"], { DATABASE_URL: ownerUrl })).code).not.toBe(0);
    const superuser = knexFactory({ client: "pg", connection: withDatabase(adminUrl(), database) });
    try {
      await superuser.raw("create extension vector");
    } finally {
      await superuser.destroy();
    }
    const enabled = await parleyCli(["enable-vectors"], { DATABASE_URL: ownerUrl });
    expect([enabled.code, enabled.stdout]).toEqual([0, expect.stringMatching(/pgvector is enabled/)]);

    app = await appOn(ownerUrl);
    try {
      const admin = await app.makeUser(Role.ADMIN, "admin2");
      const input = { scope: { kind: "GLOBAL" }, title: "Vec", embeddingModel: "m", chunks: [{ text: "x", embedding: [1, 0, 0] }] };
      expect((await app.ok(UPSERT, { input }, admin.token)).upsertDocument).toMatchObject({ chunkCount: 1, embeddingModel: "m" });
      expect((await app.ok(SEARCH, { embedding: [1, 0.1, 0] }, admin.token)).searchDocuments).toEqual([{ document: { title: "Vec" } }]);
    } finally {
      await app.dispose();
    }
  });
});
