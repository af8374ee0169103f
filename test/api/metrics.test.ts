/**
 * recordMetrics and metrics: who may write and read, JSON round trips, newest-first keyset paging,
 * batch limits and all-or-none writes.
 */
import { randomUUID } from "node:crypto";
import { Role } from "../../src/modules/user/role.enum";
import { createTestApp, type TestApp, type TestUser } from "../helpers/server";

const RECORD = `mutation($input: [MetricInput!]!) { recordMetrics(input: $input) }`;
const LIST = `query($filter: MetricFilter, $first: Int, $after: String, $last: Int, $before: String) {
  metrics(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id clientBotId metricType data recordedAt createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}`;

interface MetricNode {
  id: string;
  clientBotId: string;
  metricType: string;
  data: unknown;
  recordedAt: string;
  createdAt: string;
}
interface MetricsPage {
  metrics: {
    edges: { cursor: string; node: MetricNode }[];
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
    totalCount: number;
  };
}

let app: TestApp;
let service: TestUser;
let otherService: TestUser;
let admin: TestUser;
let member: TestUser;

/** A client bot id nobody else in this file uses, so tests sharing the database do not see each other. */
const freshBot = () => `bot-${randomUUID()}`;

/** ISO time `minutes` after a fixed origin. */
const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1, 0, minutes)).toISOString();

async function storedRows(bot: string) {
  return app.database.db.knex("metrics").where({ clientBotId: bot }).orderBy("recordedAt");
}

beforeAll(async () => {
  app = await createTestApp();
  service = await app.makeUser(Role.SERVICE);
  otherService = await app.makeUser(Role.SERVICE);
  admin = await app.makeUser(Role.ADMIN);
  member = await app.makeUser(Role.MEMBER);
});
afterAll(() => app.dispose());

describe("recordMetrics", () => {
  it("stores every metric of a service and returns how many it stored", async () => {
    const bot = freshBot();
    const input = [
      { clientBotId: bot, metricType: "latency", data: { ms: 120 }, recordedAt: at(1) },
      { clientBotId: bot, metricType: "latency", data: { ms: 80 }, recordedAt: at(2) },
      { clientBotId: bot, metricType: "tokens", data: { prompt: 10, completion: 20 }, recordedAt: at(3) },
    ];
    const data = await app.ok(RECORD, { input }, service.token);
    expect(data.recordMetrics).toBe(3);

    const rows = await storedRows(bot);
    expect(rows.map((row) => ({ metricType: row.metricType, metricData: row.metricData, recordedBy: row.recordedBy }))).toEqual([
      { metricType: "latency", metricData: { ms: 120 }, recordedBy: service.user.id },
      { metricType: "latency", metricData: { ms: 80 }, recordedBy: service.user.id },
      { metricType: "tokens", metricData: { prompt: 10, completion: 20 }, recordedBy: service.user.id },
    ]);
    expect(rows.map((row) => (row.recordedAt as Date).toISOString())).toEqual([at(1), at(2), at(3)]);
  });

  it("round-trips nested JSON data unchanged, through the database and back through the API", async () => {
    const bot = freshBot();
    const payload = {
      text: "héllo 👋 \"quoted\" \\ back",
      int: 42,
      float: 0.125,
      negative: -7,
      yes: true,
      no: false,
      nothing: null,
      list: [1, "two", { three: [3] }],
      nested: { deeper: { deepest: { value: "x" } } },
      empty: {},
    };
    await app.ok(RECORD, { input: [{ clientBotId: bot, metricType: "json", data: payload, recordedAt: at(5) }] }, service.token);

    const [row] = await storedRows(bot);
    expect(row.metricData).toEqual(payload);
    const { metrics } = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot } }, service.token);
    expect(metrics.edges).toHaveLength(1);
    expect(metrics.edges[0].node).toMatchObject({ clientBotId: bot, metricType: "json", data: payload, recordedAt: at(5) });
  });

  it("stores {} when data is omitted or null", async () => {
    const bot = freshBot();
    await app.ok(
      RECORD,
      {
        input: [
          { clientBotId: bot, metricType: "omitted", recordedAt: at(1) },
          { clientBotId: bot, metricType: "null", data: null, recordedAt: at(2) },
        ],
      },
      service.token,
    );
    const rows = await storedRows(bot);
    expect(rows.map((row) => row.metricData)).toEqual([{}, {}]);
  });

  it("defaults recordedAt to the time of the call", async () => {
    const bot = freshBot();
    const before = Date.now();
    await app.ok(RECORD, { input: [{ clientBotId: bot, metricType: "now" }] }, service.token);
    const after = Date.now();
    const [row] = await storedRows(bot);
    const recordedAt = (row.recordedAt as Date).getTime();
    expect(recordedAt).toBeGreaterThanOrEqual(before);
    expect(recordedAt).toBeLessThanOrEqual(after);
  });

  it("returns 0 and stores nothing for an empty list", async () => {
    const [{ n: before }] = await app.database.db.knex("metrics").count({ n: "*" });
    const data = await app.ok(RECORD, { input: [] }, service.token);
    expect(data.recordMetrics).toBe(0);
    const [{ n: after }] = await app.database.db.knex("metrics").count({ n: "*" });
    expect(Number(after)).toBe(Number(before));
  });

  it("lets an admin record metrics", async () => {
    const bot = freshBot();
    expect((await app.ok(RECORD, { input: [{ clientBotId: bot, metricType: "t" }] }, admin.token)).recordMetrics).toBe(1);
    expect(await storedRows(bot)).toHaveLength(1);
  });

  it("refuses a member with FORBIDDEN and stores nothing", async () => {
    const bot = freshBot();
    expect(await app.errorCode(RECORD, { input: [{ clientBotId: bot, metricType: "t" }] }, member.token)).toBe("FORBIDDEN");
    expect(await storedRows(bot)).toHaveLength(0);
  });

  it("refuses a call without a token with 401 UNAUTHENTICATED", async () => {
    const bot = freshBot();
    const { status, body } = await app.gql(RECORD, { input: [{ clientBotId: bot, metricType: "t" }] });
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    expect(await storedRows(bot)).toHaveLength(0);
  });

  describe("invalid input is BAD_USER_INPUT and stores nothing of the batch", () => {
    const cases: [string, (bot: string) => Record<string, unknown>][] = [
      ["an empty clientBotId", () => ({ clientBotId: "", metricType: "t" })],
      ["an empty metricType", (bot) => ({ clientBotId: bot, metricType: "" })],
      ["a clientBotId over 200 characters", () => ({ clientBotId: "b".repeat(201), metricType: "t" })],
      ["data that is an array", (bot) => ({ clientBotId: bot, metricType: "t", data: [1, 2] })],
      ["data that is a string", (bot) => ({ clientBotId: bot, metricType: "t", data: "text" })],
      ["data that is a number", (bot) => ({ clientBotId: bot, metricType: "t", data: 5 })],
      ["data with a NUL character", (bot) => ({ clientBotId: bot, metricType: "t", data: { s: "a\u0000b" } })],
      ["a malformed recordedAt", (bot) => ({ clientBotId: bot, metricType: "t", recordedAt: "yesterday" })],
      ["a clientBotId with a NUL character", () => ({ clientBotId: "bot\u0000x", metricType: "t" })],
      ["data over 64 KiB of JSON", (bot) => ({ clientBotId: bot, metricType: "t", data: { big: "x".repeat(70 * 1024) } })],
    ];
    it.each(cases)("rejects %s after valid items", async (_name, bad) => {
      const bot = freshBot();
      const input = [{ clientBotId: bot, metricType: "ok", data: { fine: true } }, bad(bot), { clientBotId: bot, metricType: "ok" }];
      const { body } = await app.gql(RECORD, { input }, service.token);
      expect(body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
      expect(body.data?.recordMetrics ?? null).toBeNull();
      expect(await storedRows(bot)).toHaveLength(0);
      // The empty clientBotId case would be stored under "": make sure nothing was.
      expect(await app.database.db.knex("metrics").where({ recordedBy: service.user.id, clientBotId: "" })).toHaveLength(0);
    });
  });
});

describe("metrics", () => {
  /** Records `times.length` metrics for a fresh bot with the given recordedAt minutes; returns the bot. */
  async function seed(user: TestUser, times: number[], metricType = "m"): Promise<string> {
    const bot = freshBot();
    const input = times.map((minutes, index) => ({ clientBotId: bot, metricType, data: { index }, recordedAt: at(minutes) }));
    await app.ok(RECORD, { input }, user.token);
    return bot;
  }

  it("reads back newest first", async () => {
    const bot = await seed(service, [3, 1, 4, 2]);
    const { metrics } = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot } }, service.token);
    expect(metrics.edges.map((edge) => edge.node.recordedAt)).toEqual([at(4), at(3), at(2), at(1)]);
    expect(metrics.edges.map((edge) => edge.node.data)).toEqual([{ index: 2 }, { index: 0 }, { index: 3 }, { index: 1 }]);
    expect(metrics.totalCount).toBe(4);
    expect(metrics.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
  });

  it("pages forwards with first/after without gaps or repeats", async () => {
    const bot = await seed(service, [1, 2, 3, 4, 5]);
    const seen: string[] = [];
    let after: string | null = null;
    const pages: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const result: MetricsPage = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot }, first: 2, after }, service.token);
      const { edges, pageInfo, totalCount } = result.metrics;
      expect(totalCount).toBe(5);
      seen.push(...edges.map((edge) => edge.node.recordedAt));
      pages.push(pageInfo.hasNextPage);
      expect(pageInfo.startCursor).toBe(edges[0]?.cursor ?? null);
      expect(pageInfo.endCursor).toBe(edges[edges.length - 1]?.cursor ?? null);
      expect(pageInfo.hasPreviousPage).toBe(after !== null);
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    expect(seen).toEqual([at(5), at(4), at(3), at(2), at(1)]);
    expect(pages).toEqual([true, true, false]);
  });

  it("pages through metrics that share one recordedAt by id, without gaps or repeats", async () => {
    const bot = await seed(service, [7, 7, 7, 7, 7]);
    const ids: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const result: MetricsPage = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot }, first: 2, after }, service.token);
      ids.push(...result.metrics.edges.map((edge) => edge.node.id));
      if (!result.metrics.pageInfo.hasNextPage) break;
      after = result.metrics.pageInfo.endCursor;
    }
    const all = await app.database.db.knex("metrics").where({ clientBotId: bot }).orderBy("id", "desc").pluck("id");
    expect(ids).toEqual(all);
    expect(new Set(ids).size).toBe(5);
  });

  it("pages backwards with last/before, keeping newest-first order within a page", async () => {
    const bot = await seed(service, [1, 2, 3, 4, 5]);
    const oldest = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot }, last: 2 }, service.token);
    expect(oldest.metrics.edges.map((edge) => edge.node.recordedAt)).toEqual([at(2), at(1)]);
    expect(oldest.metrics.pageInfo.hasPreviousPage).toBe(true);
    const newer = await app.ok<MetricsPage>(
      LIST,
      { filter: { clientBotId: bot }, last: 2, before: oldest.metrics.pageInfo.startCursor },
      service.token,
    );
    expect(newer.metrics.edges.map((edge) => edge.node.recordedAt)).toEqual([at(4), at(3)]);
    expect(newer.metrics.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
  });

  it("filters by metricType and by the [from, to) time range", async () => {
    const bot = freshBot();
    await app.ok(
      RECORD,
      {
        input: [
          { clientBotId: bot, metricType: "latency", recordedAt: at(10) },
          { clientBotId: bot, metricType: "latency", recordedAt: at(20) },
          { clientBotId: bot, metricType: "latency", recordedAt: at(30) },
          { clientBotId: bot, metricType: "errors", recordedAt: at(20) },
        ],
      },
      service.token,
    );
    const byType = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot, metricType: "errors" } }, service.token);
    expect(byType.metrics.edges.map((edge) => [edge.node.metricType, edge.node.recordedAt])).toEqual([["errors", at(20)]]);
    expect(byType.metrics.totalCount).toBe(1);

    const range = await app.ok<MetricsPage>(
      LIST,
      { filter: { clientBotId: bot, metricType: "latency", from: at(10), to: at(30) } },
      service.token,
    );
    // from is inclusive, to is exclusive.
    expect(range.metrics.edges.map((edge) => edge.node.recordedAt)).toEqual([at(20), at(10)]);
    expect(range.metrics.totalCount).toBe(2);

    const none = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot, from: at(31) } }, service.token);
    expect(none.metrics).toMatchObject({ edges: [], totalCount: 0, pageInfo: { startCursor: null, endCursor: null, hasNextPage: false } });
  });

  it("shows a service only its own metrics, and an admin everyone's", async () => {
    const type = `shared-${randomUUID()}`;
    const mine = await seed(service, [1, 2], type);
    const theirs = await seed(otherService, [3], type);

    const own = await app.ok<MetricsPage>(LIST, { filter: { metricType: type } }, service.token);
    expect(own.metrics.edges.map((edge) => edge.node.clientBotId)).toEqual([mine, mine]);
    expect(own.metrics.totalCount).toBe(2);

    // Even when asking for the other service's bot by name.
    const asked = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: theirs } }, service.token);
    expect(asked.metrics).toMatchObject({ edges: [], totalCount: 0 });

    const all = await app.ok<MetricsPage>(LIST, { filter: { metricType: type } }, admin.token);
    expect(all.metrics.edges.map((edge) => edge.node.clientBotId)).toEqual([theirs, mine, mine]);
    expect(all.metrics.totalCount).toBe(3);
  });

  it("answers first: 0 with an empty page that still counts the matches", async () => {
    const bot = await seed(service, [1, 2]);
    const { metrics } = await app.ok<MetricsPage>(LIST, { filter: { clientBotId: bot }, first: 0 }, service.token);
    expect(metrics).toMatchObject({ edges: [], totalCount: 2, pageInfo: { startCursor: null, endCursor: null } });
  });

  it("refuses a member with FORBIDDEN", async () => {
    const { body } = await app.gql(LIST, {}, member.token);
    expect(body.errors?.map((error) => error.extensions?.code)).toEqual(["FORBIDDEN"]);
    expect(body.data).toBeNull();
  });

  it("rejects a forged cursor and an oversized page with BAD_USER_INPUT", async () => {
    expect(await app.errorCode(LIST, { first: 2, after: "not-a-cursor" }, service.token)).toBe("BAD_USER_INPUT");
    const forged = Buffer.from(JSON.stringify(["2026-01-01T00:00:00.000Z", "'; drop table metrics; --"])).toString("base64url");
    expect(await app.errorCode(LIST, { first: 2, after: forged }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(LIST, { first: 101 }, service.token)).toBe("BAD_USER_INPUT");
    expect(await app.errorCode(LIST, { first: 1, last: 1 }, service.token)).toBe("BAD_USER_INPUT");
  });
});

describe("recordMetrics batch limit", () => {
  let small: TestApp;
  let bot: TestUser;

  beforeAll(async () => {
    small = await createTestApp({ MAX_METRICS_BATCH: "3" });
    bot = await small.makeUser(Role.SERVICE);
  });
  afterAll(() => small.dispose());

  it("accepts a batch of exactly the limit", async () => {
    const id = freshBot();
    const input = [1, 2, 3].map((n) => ({ clientBotId: id, metricType: "t", recordedAt: at(n) }));
    expect((await small.ok(RECORD, { input }, bot.token)).recordMetrics).toBe(3);
    expect(await small.database.db.knex("metrics").where({ clientBotId: id })).toHaveLength(3);
  });

  it("refuses a batch over the limit with PAYLOAD_TOO_LARGE and stores none of it", async () => {
    const id = freshBot();
    const input = [1, 2, 3, 4].map((n) => ({ clientBotId: id, metricType: "t", recordedAt: at(n) }));
    const { status, body } = await small.gql(RECORD, { input }, bot.token);
    expect(status).toBe(413);
    expect(body.errors?.map((error) => error.extensions?.code)).toEqual(["PAYLOAD_TOO_LARGE"]);
    expect(await small.database.db.knex("metrics").where({ clientBotId: id })).toHaveLength(0);
  });
});
