/**
 * The retention policy through the API (issue 19.4): setSystemConfig(key: "retention") stores a valid policy and
 * refuses a bad one with BAD_USER_INPUT naming every problem, storing (and auditing) nothing. The pass itself is
 * tested in test/cli/retention.test.ts.
 */
import { loadConfig } from "../../src/config";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const SET = `mutation($value: JSON!) { setSystemConfig(key: "retention", value: $value) { key value } }`;

/** Seed 001's maintenance plan (logs 90 days, metrics a year) as README, Retention shows it. */
const README_POLICY = {
  archiveInactiveDays: { web: 90, discord: 30, api: null },
  deleteArchivedDays: 365,
  metricsDays: 365,
  auditLogDays: 90,
  backupLogDays: 90,
  resolvedAlertDays: 90,
  queryHistoryDays: 90,
};

let app: TestApp;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  admin = await app.makeUser(Role.ADMIN);
});

afterAll(async () => {
  await app?.dispose();
});

const stored = async () => (await app.database.db.knex("system_configs").where({ key: "retention" }).first("value"))?.value;
const audited = async () => Number((await app.database.db.knex("audit_logs").where({ action: "config.set", targetId: "retention" }).count({ n: "*" }))[0].n);

describe("setSystemConfig(key: \"retention\")", () => {
  it("stores a valid policy (README's) and returns it", async () => {
    expect(await app.ok(SET, { value: README_POLICY }, admin.token)).toEqual({ setSystemConfig: { key: "retention", value: README_POLICY } });
    expect(await stored()).toEqual(README_POLICY);
    expect(await audited()).toBe(1);
  });

  it.each([
    ["-3 days", { archiveInactiveDays: { web: -3 } }, "archiveInactiveDays.web must be a whole number of days from 1 to 36500, or null to keep forever; got -3"],
    ["0 days", { metricsDays: 0 }, "metricsDays must be a whole number of days from 1 to 36500, or null to keep forever; got 0"],
    ["1.5 days", { deleteArchivedDays: 1.5 }, "deleteArchivedDays must be a whole number of days from 1 to 36500, or null to keep forever; got 1.5"],
    ["a string", { metricsDays: "x" }, 'metricsDays must be a whole number of days from 1 to 36500, or null to keep forever; got "x"'],
    ["a number as text", { queryHistoryDays: "90" }, 'queryHistoryDays must be a whole number of days from 1 to 36500, or null to keep forever; got "90"'],
    ["more than a hundred years", { backupLogDays: 36_501 }, "backupLogDays must be a whole number of days from 1 to 36500"],
    ["an unknown key", { metricDays: 30 }, 'unknown key "metricDays" (known: archiveInactiveDays, deleteArchivedDays, metricsDays, auditLogDays, backupLogDays, resolvedAlertDays, queryHistoryDays, dataExportDays)'],
    ["an unknown origin", { archiveInactiveDays: { slack: 30 } }, 'archiveInactiveDays: unknown origin "slack" (known: web, discord, api)'],
    ["an origin in capitals", { archiveInactiveDays: { WEB: 30 } }, 'archiveInactiveDays: unknown origin "WEB"'],
    ["days for every origin at once", { archiveInactiveDays: 30 }, "archiveInactiveDays must be an object of days per origin"],
    ["an audit log kept under 30 days", { auditLogDays: 7 }, "auditLogDays must be a whole number of days from 30 to 36500 (at least 30: the audit log must outlive a change of this policy)"],
    ["not an object", [90], "it must be a JSON object"],
    ["a bare number", 90, "it must be a JSON object"],
  ])("refuses %s with BAD_USER_INPUT and stores nothing", async (_name, value, problem) => {
    const { body } = await app.gql(SET, { value }, admin.token);
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "value" });
    expect(body.errors![0].message).toContain(problem);
    expect(body.errors![0].message).toMatch(/^Bad retention policy: /);
    expect(await stored()).toEqual(README_POLICY);
    expect(await audited()).toBe(1);
  });

  it("names every problem of a policy at once", async () => {
    const { body } = await app.gql(SET, { value: { metricsDays: -1, archiveInactiveDays: { web: 2.5, irc: 3 }, forever: true } }, admin.token);
    expect(body.errors![0].extensions!.problems).toEqual([
      expect.stringContaining('unknown key "forever"'),
      expect.stringContaining("archiveInactiveDays.web must be"),
      expect.stringContaining('unknown origin "irc"'),
      expect.stringContaining("metricsDays must be"),
    ]);
    expect(await stored()).toEqual(README_POLICY);
  });

  it("takes an empty object to keep everything again", async () => {
    await app.ok(SET, { value: {} }, admin.token);
    expect(await stored()).toEqual({});
    await app.ok(SET, { value: README_POLICY }, admin.token);
  });

  it("is for admins only", async () => {
    const member = await app.makeUser(Role.MEMBER);
    expect(await app.errorCode(SET, { value: README_POLICY }, member.token)).toBe("FORBIDDEN");
  });
});

describe("RETENTION_INTERVAL_MINUTES", () => {
  it("defaults to an hour, 0 turns the job off, and nonsense (or more than setInterval can wait) is refused", () => {
    expect(loadConfig({}).retentionIntervalMinutes).toBe(60);
    expect(loadConfig({ RETENTION_INTERVAL_MINUTES: "0" }).retentionIntervalMinutes).toBe(0);
    expect(loadConfig({ RETENTION_INTERVAL_MINUTES: "1440" }).retentionIntervalMinutes).toBe(1440);
    for (const bad of ["-1", "1.5", "hourly", "40000"]) {
      expect(() => loadConfig({ RETENTION_INTERVAL_MINUTES: bad })).toThrow(/RETENTION_INTERVAL_MINUTES must be an integer from 0 to 35791/);
    }
  });
});
