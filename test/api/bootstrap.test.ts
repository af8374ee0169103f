import { authenticateApiKey, bootstrapAdmin } from "../../src/modules/api-key/api-key.service";
import { Role } from "../../src/modules/user/role.enum";
import { createTestDatabase, type TestDatabase } from "../helpers/db";

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.dispose());

describe("first start of an empty database", () => {
  it("creates one admin with a working key, and nothing on later starts", async () => {
    const first = await bootstrapAdmin(database.db.knex);
    expect(first).toBeDefined();
    expect(await authenticateApiKey(database.db.knex, first!.secret)).toMatchObject({ role: Role.ADMIN, displayName: "admin" });
    expect(await bootstrapAdmin(database.db.knex)).toBeUndefined();
    expect(await database.db.knex("users").count({ n: "*" }).first()).toEqual({ n: 1 });
  });
});
