/**
 * `npm run bench:search`: searchMessages on the DESIGN.md workload (1,000 members × 10 conversations × 100
 * messages = 1,000,000 messages), its text English-like instead of the main benchmark's hex, through the GraphQL
 * HTTP API of a Parley server process in production mode.
 *
 * 1. A throwaway PostgreSQL cluster (or BENCH_DATABASE_URL: a database this script seeded before is reused as
 *    it is), Parley's migrations, then the workload (bench/workload.ts) whose messages are replaced by text drawn
 *    from a fixed vocabulary: 15 stop words and 383 content words, each word's rank k drawn with probability
 *    about 1/(k ln N) (Zipf, s = 1), so a few content words are in a quarter of all messages and most in well under
 *    1 %; plus 50 rare words (about 0.1 % of messages each). Text is made of fragments (20,000 of 8 to 14 words,
 *    three per message, about 170 characters), which keeps the million messages distinct and the seeding in SQL.
 *    Seeded with setseed, so every run holds the same text. The search index is dropped before the load and
 *    built afterwards with reindexMessageSearch (CREATE INDEX CONCURRENTLY, as operators would), and timed.
 * 2. How often each measured term occurs (counted through the index), and the plan PostgreSQL picks for each
 *    scenario's statement (EXPLAIN ANALYZE of the very statement the service issues, captured in-process).
 * 3. Per scenario (member or admin × rare or common term): a warm-up, then sequential requests (a random member
 *    of 100 with API keys, a random term of the set per request) until BENCH_SEARCH_REQUESTS requests or
 *    BENCH_SEARCH_SECONDS, whichever comes first; latency p50/p95/p99 as the client sees it.
 * Results: the "searchMessages" section of bench/results/search-<YYYY-MM-DD>.md (created, or that section
 * replaced; other sections of the file are kept).
 *
 * Env: BENCH_DATABASE_URL, BENCH_SEARCH_REQUESTS (200), BENCH_SEARCH_SECONDS (60), BENCH_SEARCH_WARMUP (5).
 */
import "reflect-metadata";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { loadConfig, type Config } from "../src/config";
import { createDatabase, type Database } from "../src/db/database";
import { createLogger } from "../src/logger";
import { actorFor } from "../src/modules/actor";
import { createApiKey, createUserKey } from "../src/modules/api-key/api-key.service";
import { Role } from "../src/modules/user/role.enum";
import { MESSAGE_SEARCH_INDEX, reindexMessageSearch, searchMessages } from "../src/modules/search/message-search.service";
import { percentile } from "./measure";
import { startCluster, stopCluster, type ClusterState } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { startServerProcess } from "../test/helpers/process";
import { seedWorkload, type SeedStep } from "./workload";

const REQUESTS = Number(process.env.BENCH_SEARCH_REQUESTS ?? 200);
const SECONDS = Number(process.env.BENCH_SEARCH_SECONDS ?? 60);
const WARMUP = Number(process.env.BENCH_SEARCH_WARMUP ?? 5);
const DB = "parley_bench_search";
const TOKENS = 100;
const FRAGMENTS = 20_000;
const SECTION = "## searchMessages";

const STOP_WORDS = ["the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "for", "on", "with", "as", "this"];
/** Content words, most frequent first: rank 1 here is drawn about as often as "the" is. */
const WORDS = `model answer question code error file data function message test value result user server request time
  problem example change version update string number list issue system output input python table query
  type class method config build project team design work help people thanks idea plan review report week
  day price cost order customer account email password login page button image text name date point step
  range support store search index cache memory disk network service client api token key field object array
  loop variable return import module package library install command script shell terminal branch commit merge
  release deploy docker container cluster node thread process task job queue event stream batch schedule
  meeting call note draft document letter story article book chapter summary title topic section paragraph
  sentence word language english spanish french german translate grammar spelling tone style voice audience
  reader writer author editor publish blog post comment reply share link video audio music song game player
  score level rule board card team coach season match goal sport health doctor patient symptom diet sleep
  exercise workout muscle weight sugar coffee water food recipe kitchen cook bake bread cheese chicken rice
  salad soup sauce garden plant flower tree seed soil rain weather winter summer spring autumn travel trip
  flight hotel ticket city country map road train car bike walk house room door window wall floor roof
  paint color light lamp chair desk phone laptop screen keyboard mouse battery charger cable printer camera
  photo picture frame size shape line circle square angle graph chart curve trend growth sales market
  budget invoice payment bank loan interest tax salary job career interview resume skill course class school
  student teacher exam grade homework lesson lecture science physics chemistry biology math history
  economics policy law contract court case vote election government city council office manager employee
  contractor vendor supplier partner friend family child parent brother sister birthday gift party holiday
  weekend morning evening night minute hour month year future past present reason cause effect risk
  benefit feature bug patch fix crash warning log trace debug profile benchmark latency throughput scale
  shard replica backup restore migration schema column row key constraint trigger view permission role
  owner group member admin guest session cookie header body route handler middleware template component
  state props hook render layout style theme font icon menu modal form label tooltip dialog widget chart`
  .split(/\s+/)
  .filter((word, index, all) => word && all.indexOf(word) === index);
const RARE_WORDS = `telescope saxophone origami glacier volcano lighthouse submarine harpsichord tarantula kaleidoscope
  porcupine trombone zeppelin archipelago meteorite chandelier labyrinth marzipan narwhal obelisk
  pterodactyl quicksand rhubarb sarcophagus tambourine ukulele walrus xylophone yodel zucchini
  avalanche boomerang catapult dandelion escalator flamingo gondola hammock igloo jellyfish
  kangaroo lasagna mandolin nebula octopus pelican quartz raccoon sundial tornado`
  .split(/\s+/)
  .filter(Boolean);
/** The terms searched: rare ones (about 0.1 % of messages) and the most common content words. */
const RARE_TERMS = ["telescope", "glacier", "saxophone", "lighthouse", "origami"];
const COMMON_TERMS = ["model", "answer", "question"];

const SEARCH = `query($q: String!) {
  searchMessages(query: $q, first: 20) { rank highlight message { id createdAt author { displayName } conversation { title } } }
}`;

const sqlList = (words: string[]) => `array[${words.map((word) => `'${word}'`).join(", ")}]`;

/** The statements that turn the workload's messages into English-like text; run inside seedWorkload's session. */
function textSteps(): { name: string; sql: string[] }[] {
  const vocabulary = [...STOP_WORDS, ...WORDS];
  const n = vocabulary.length;
  return [
    {
      name: `text fragments (${FRAGMENTS.toLocaleString("en")}, Zipf over ${n} words, + ${RARE_WORDS.length} rare words)`,
      sql: [
        "drop table if exists bench_search_fragments",
        "create table bench_search_fragments (id int primary key, text text not null)",
        // random() in the inner select list is drawn once per (fragment, position): that subquery is not flattened.
        `insert into bench_search_fragments (id, text)
         select f, string_agg(v.words[d.k], ' ' order by d.p)
         from (select f, p, least(${n}, floor(exp(random() * ln(${n + 1})))::int) as k
               from generate_series(1, ${FRAGMENTS}) f, generate_series(1, 8 + f % 7) p) d
         cross join (select ${sqlList(vocabulary)} as words) v
         group by f`,
        // About 2 % of fragments carry one rare word: with three fragments per message, each rare word lands in
        // about 0.1 % of the messages.
        `update bench_search_fragments set text = text || ' ' || (${sqlList(RARE_WORDS)})[1 + floor(random() * ${RARE_WORDS.length})::int]
         where random() < 0.02`,
      ],
    },
    {
      name: "messages as text (1,000,000, three fragments each)",
      sql: [
        "truncate messages cascade",
        "set session_replication_role = replica", // as in workload.ts: the rows reference existing rows by construction
        `insert into messages (conversation_id, seq, author_id, role, content, created_at, updated_at)
         select m.conversation_id, m.seq, m.author_id, m.role, f1.text || '. ' || f2.text || ', ' || f3.text, m.at, m.at
         from (select c.id as conversation_id, s as seq,
                      case when s % 2 = 1 then c.owner_id else a.id end as author_id,
                      case when s % 2 = 1 then 'user' else 'assistant' end as role,
                      c.created_at + s * interval '1 minute' as at,
                      1 + floor(random() * ${FRAGMENTS})::int as i1, 1 + floor(random() * ${FRAGMENTS})::int as i2,
                      1 + floor(random() * ${FRAGMENTS})::int as i3
               from conversations c
               cross join (select id from users where email = 'assistant@bench.test') a
               cross join lateral generate_series(1, 100) s) m
         join bench_search_fragments f1 on f1.id = m.i1
         join bench_search_fragments f2 on f2.id = m.i2
         join bench_search_fragments f3 on f3.id = m.i3`,
        "set session_replication_role = origin",
      ],
    },
  ];
}

interface Scenario {
  name: string;
  viewer: "member" | "admin";
  terms: string[];
}

interface Figures {
  scenario: Scenario;
  requests: number;
  errors: string[];
  hits: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const ms = (value: number) => value.toFixed(1);

async function seeded(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query("select to_regclass('bench_search_fragments') is not null as present");
  return rows[0].present;
}

/** Seeds the workload with text and builds the index; returns the seeding steps and the index build time. */
async function seed(url: string): Promise<{ steps: SeedStep[]; indexSeconds: number }> {
  const db = createDatabase(loadConfig({ DATABASE_URL: url }));
  try {
    await db.migrate();
    // One GIN build after the load is far faster than a million index insertions during it.
    await db.maintenance.raw(`drop index if exists ${MESSAGE_SEARCH_INDEX}`);
    const owner = new pg.Client({ connectionString: url });
    await owner.connect();
    let steps: SeedStep[];
    try {
      steps = await seedWorkload(owner, textSteps());
    } finally {
      await owner.end();
    }
    const t0 = performance.now();
    await reindexMessageSearch(db.maintenance, "english");
    const indexSeconds = (performance.now() - t0) / 1000;
    return { steps, indexSeconds };
  } finally {
    await db.close();
  }
}

/** Messages matching each term, counted through the index. */
async function termCounts(pool: pg.Pool, terms: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const term of terms) {
    const { rows } = await pool.query(
      "select count(*)::int as n from messages where content is not null and to_tsvector('english'::regconfig, content) @@ websearch_to_tsquery('english'::regconfig, $1)",
      [term],
    );
    counts.set(term, rows[0].n);
  }
  return counts;
}

/** The plan of the statement the service issues for `viewer` and `term`: EXPLAIN ANALYZE, scan nodes and time. */
async function planOf(db: Database, config: Config, viewer: { id: string; role: Role }, term: string): Promise<string> {
  const statements: { sql: string; bindings: unknown[] }[] = [];
  const listener = (query: { sql: string; bindings: unknown[] }) => void statements.push(query);
  db.knex.on("query", listener);
  try {
    await searchMessages(actorFor({ db, config, log: createLogger(config) }, { ...viewer, displayName: "bench" }), term, null, 20);
  } finally {
    db.knex.off("query", listener);
  }
  const search = statements.find((statement) => statement.sql.includes("ts_rank_cd"))!;
  // knex reports pg statements with their $n placeholders; raw() binds "?".
  const { rows } = await db.maintenance.raw(`explain (analyze, costs off) ${search.sql.replace(/\$\d+/g, "?")}`, search.bindings as never[]);
  const lines: string[] = rows.map((row: Record<string, string>) => row["QUERY PLAN"]);
  const scans = lines.filter((line) => /Scan|Join|Nested Loop/.test(line)).map((line) => line.trim().replace(/^->\s+/, "").replace(/\s+\(actual.*$/, ""));
  const time = lines.find((line) => line.startsWith("Execution Time"));
  return `${[...new Set(scans)].join("; ")} (${time})`;
}

async function run(url: string, token: string, term: string): Promise<{ ms: number; error?: string; hits: number }> {
  const t0 = performance.now();
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: SEARCH, variables: { q: term } }),
  });
  const body = (await response.json()) as { data?: { searchMessages: unknown[] }; errors?: { extensions?: { code?: string } }[] };
  const elapsed = performance.now() - t0;
  if (body.errors?.length) return { ms: elapsed, error: body.errors[0].extensions?.code ?? "ERROR", hits: 0 };
  return { ms: elapsed, hits: body.data!.searchMessages.length };
}

async function measure(url: string, scenario: Scenario, tokens: { member: string[]; admin: string }): Promise<Figures> {
  const token = () => (scenario.viewer === "admin" ? tokens.admin : pick(tokens.member));
  for (let i = 0; i < WARMUP; i++) await run(url, token(), pick(scenario.terms));
  const latencies: number[] = [];
  const errors: string[] = [];
  let hits = 0;
  const deadline = performance.now() + SECONDS * 1000;
  while (latencies.length < REQUESTS && performance.now() < deadline) {
    const result = await run(url, token(), pick(scenario.terms));
    latencies.push(result.ms);
    hits += result.hits;
    if (result.error) errors.push(result.error);
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    scenario,
    requests: latencies.length,
    errors,
    hits: hits / latencies.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
  };
}

/** Writes `lines` as the searchMessages section of the day's search results file, keeping other sections. */
function writeSection(lines: string[]): string {
  const date = new Date().toISOString().slice(0, 10);
  const file = path.join(__dirname, "results", `search-${date}.md`);
  const section = [SECTION, "", ...lines].join("\n").trimEnd() + "\n";
  let text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : `# Search benchmarks, ${date}\n`;
  const start = text.indexOf(`${SECTION}\n`);
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + SECTION.length);
    text = text.slice(0, start) + section + (next >= 0 ? "\n" + text.slice(next + 1) : "");
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

async function main(): Promise<void> {
  const started = performance.now();
  let cluster: ClusterState | undefined;
  let url = process.env.BENCH_DATABASE_URL;
  if (!url) {
    cluster = await startCluster();
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query(`create database ${DB}`);
    await admin.end();
    url = withDatabase(cluster.adminUrl, DB);
  }
  try {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on("error", () => undefined);
    let steps: SeedStep[] = [];
    let indexSeconds: number | undefined;
    if (await seeded(pool)) console.error("reusing the seeded database");
    else {
      console.error("seeding 1,000,000 messages...");
      ({ steps, indexSeconds } = await seed(url));
    }
    const { rows: sizes } = await pool.query(
      `select (select count(*)::int from messages) as messages, pg_size_pretty(pg_relation_size('messages')) as heap,
              pg_size_pretty(pg_relation_size('${MESSAGE_SEARCH_INDEX}')) as index, (select avg(length(content))::int from messages) as length`,
    );
    const { rows: sample } = await pool.query("select content from messages order by conversation_id, seq limit 2");
    const counts = await termCounts(pool, [...RARE_TERMS, ...COMMON_TERMS]);

    // API keys for 100 members (their 1,000 messages each) and an admin.
    const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: "silent" });
    const db = createDatabase(config);
    const { rows: members } = await pool.query<{ id: string }>("select id from users where role = 'member' order by email limit $1", [TOKENS]);
    const memberTokens: string[] = [];
    for (const member of members) memberTokens.push((await createApiKey(db.knex, member.id, "bench search")).secret);
    const admin = await createUserKey(db.knex, "Search bench admin", Role.ADMIN);

    const scenarios: Scenario[] = [
      { name: "member, rare term", viewer: "member", terms: RARE_TERMS },
      { name: "member, common term", viewer: "member", terms: COMMON_TERMS },
      { name: "admin, rare term", viewer: "admin", terms: RARE_TERMS },
      { name: "admin, common term", viewer: "admin", terms: COMMON_TERMS },
    ];
    const server = await startServerProcess(
      { NODE_ENV: "production", LOG_LEVEL: "info", DATABASE_URL: url, RATE_LIMIT_PER_IP: "1000000000", RATE_LIMIT_MEMBER: "1000000000", RATE_LIMIT_ADMIN: "1000000000" },
      120_000,
    );
    const figures: Figures[] = [];
    try {
      for (const scenario of scenarios) {
        console.error(`measuring ${scenario.name}...`);
        figures.push(await measure(server.url, scenario, { member: memberTokens, admin: admin.secret }));
        const last = figures[figures.length - 1];
        console.error(`  p50 ${ms(last.p50)} ms, p95 ${ms(last.p95)} ms over ${last.requests} requests, ${last.errors.length} errors`);
      }
    } finally {
      await server.stop();
    }
    const plans = new Map<string, string>();
    for (const scenario of scenarios) {
      const viewer = scenario.viewer === "admin" ? { id: admin.user.id, role: Role.ADMIN } : { id: members[0].id, role: Role.MEMBER };
      plans.set(scenario.name, await planOf(db, config, viewer, scenario.terms[0]));
      console.error(`${scenario.name} (${scenario.terms[0]}): ${plans.get(scenario.name)}`);
    }
    await db.close();
    await pool.end();

    const cpu = os.cpus();
    const share = (term: string) => `${term} ${counts.get(term)!.toLocaleString("en")} (${((100 * counts.get(term)!) / sizes[0].messages).toFixed(2)} %)`;
    const lines = [
      `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; PostgreSQL 15 ` +
        "(throwaway cluster, fsync off, default settings otherwise), Parley (NODE_ENV=production, pool 10, statement timeout 5 s) and the client on the same cores.",
      `Data: the DESIGN.md workload, ${sizes[0].messages.toLocaleString("en")} messages of English-like text (${STOP_WORDS.length} stop words + ${WORDS.length} content words drawn Zipf-like, ` +
        `${RARE_WORDS.length} rare words; ${sizes[0].length} characters on average; heap ${sizes[0].heap}, search index ${sizes[0].index}). ` +
        `A member reads 10 conversations, 1,000 messages; the admin reads all.`,
      steps.length
        ? `Seeded in ${steps.reduce((sum, step) => sum + step.seconds, 0).toFixed(1)} s (${steps.map((step) => `${step.step} ${step.seconds.toFixed(1)} s`).join("; ")}); ` +
          `search index built CONCURRENTLY afterwards, with its statistics (reindexMessageSearch), in ${indexSeconds!.toFixed(1)} s.`
        : "Reused a database seeded by an earlier run.",
      `Sample text: "${sample[0].content}"`,
      "",
      `Terms (messages matching, of all): rare: ${RARE_TERMS.map(share).join(", ")}; common: ${COMMON_TERMS.map(share).join(", ")}.`,
      "",
      `Requests: \`searchMessages(query, first: 20) { rank highlight message { id createdAt author { displayName } conversation { title } } }\` over HTTP, ` +
        `one at a time (latency as a lone client sees it), a random term of the set and (members) a random one of ${TOKENS} members per request; ` +
        `${WARMUP} warm-up requests, then up to ${REQUESTS} requests or ${SECONDS} s.`,
      "",
      "| scenario | requests | errors | hits / request | p50 ms | p95 ms | p99 ms | mean ms |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
      ...figures.map(
        (f) =>
          `| ${f.scenario.name} | ${f.requests} | ${f.errors.length ? `${f.errors.length} (${[...new Set(f.errors)].join(", ")})` : 0} | ${f.hits.toFixed(1)} | ${ms(f.p50)} | ${ms(f.p95)} | ${ms(f.p99)} | ${ms(f.mean)} |`,
      ),
      "",
      "Plans (EXPLAIN ANALYZE of the statement the service issues, first term of each set, after the runs above warmed the cache):",
      "",
      ...scenarios.map((scenario) => `- ${scenario.name}: ${plans.get(scenario.name)}`),
      "",
      `Total run time ${((performance.now() - started) / 60_000).toFixed(1)} min.`,
    ];
    console.log([SECTION, "", ...lines].join("\n"));
    console.error(`written to ${writeSection(lines)}`);
  } finally {
    if (cluster) stopCluster(cluster);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
