/**
 * How much memory and time does exporting a 1,000,000-message conversation take?
 *
 * A throwaway PostgreSQL cluster (or DATABASE_URL's server) gets the real migrations and one conversation
 * of 1,000,000 messages, seeded with one set-based INSERT … SELECT generate_series (about 200 characters
 * each, with quotes, commas, line breaks, emoji and formula-like starts, alternating user/assistant, some
 * with tool calls). Each format is then exported by a child process (bench/transcript-export-child.js, on
 * the compiled code in dist/ that `npm start` runs) through the same pipeline as the API (`exportToFile`:
 * keyset pages → serializer → sha256 → file), so that the child's peak RSS is the export's alone: the
 * kernel's maximum resident set (process.resourceUsage().maxRSS) plus rss sampled every 50 ms, and the
 * resident set right after start-up for comparison.
 *
 * Run:   node -r @swc-node/register bench/transcript-export.ts
 *        (BENCH_MESSAGES=100000 for a shorter run; DATABASE_URL=postgres://… to use an existing server, which
 *        needs CREATEDB)
 * Output: bench/results/transcript-export-<YYYY-MM-DD>.md (also printed).
 */
import "reflect-metadata";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import knexFactory from "knex";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { TranscriptFormat } from "../src/modules/transcript/transcript.enums";
import { type ClusterState, startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
const DB_NAME = "parley_bench_transcripts";
const RSS_LIMIT_MB = 200;

interface ChildResult {
  format: string;
  messages: number;
  bytes: number;
  seconds: number;
  startRssMb: number;
  rssByQuarterMb: number[];
  peakSampledRssMb: number;
  peakHeapTotalMb: number;
  maxRssMb: number;
}

function runChild(url: string, format: TranscriptFormat, conversationId: string, file: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(__dirname, "transcript-export-child.js"), format, conversationId, file], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    proc.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    proc.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`export child exited with ${code}: ${stdout}`));
      resolve(JSON.parse(stdout.trim().split("\n").pop()!) as ChildResult);
    });
  });
}

async function seed(url: string): Promise<string> {
  const db = createDatabase(loadConfig({ DATABASE_URL: url }));
  try {
    await db.migrate();
    const knex = db.knex;
    const [user] = await knex("users").insert({ displayName: "bench" }).returning("id");
    const [conversation] = await knex("conversations").insert({ ownerId: user.id, title: "1M messages" }).returning("id");
    const started = Date.now();
    await knex.raw(
      `insert into messages (conversation_id, seq, author_id, role, content, tool_calls, model, prompt_tokens, completion_tokens, cost_usd, created_at)
       select ?, s, ?, case when s % 2 = 1 then 'user' else 'assistant' end,
              (array['=SUM(A1) ', '+1 ', '-x ', '@me ', ''])[1 + s % 5] || 'Message ' || s
                || ': "quoted", commas, a line break' || chr(10) || 'and an emoji 😀. '
                || repeat('lorem ipsum dolor sit amet ', 5),
              case when s % 10 = 0 then '[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]'::jsonb end,
              case when s % 2 = 0 then 'gpt-bench' end,
              case when s % 2 = 0 then 100 end, case when s % 2 = 0 then 50 end, case when s % 2 = 0 then 0.0001 end,
              timestamptz '2026-01-01' + s * interval '1 second'
         from generate_series(1, ?) s`,
      [conversation.id, user.id, MESSAGES],
    );
    await knex("conversations").where({ id: conversation.id }).update({ lastSeq: MESSAGES, messageCount: MESSAGES });
    await knex.raw("analyze messages");
    console.log(`seeded ${MESSAGES} messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return conversation.id;
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  // The export child runs the compiled code, as production does.
  execFileSync("npm", ["run", "build"], { cwd: path.join(__dirname, ".."), stdio: "inherit" });
  let cluster: ClusterState | undefined;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "parley-bench-export-"));
  try {
    const serverUrl = process.env.DATABASE_URL ?? (cluster = await startCluster()).adminUrl;
    const admin = knexFactory({ client: "pg", connection: serverUrl });
    try {
      await admin.raw(`drop database if exists ${DB_NAME}`);
      await admin.raw(`create database ${DB_NAME}`);
    } finally {
      await admin.destroy();
    }
    const url = withDatabase(serverUrl, DB_NAME);
    const conversationId = await seed(url);
    const results: ChildResult[] = [];
    for (const format of [TranscriptFormat.JSON, TranscriptFormat.CSV]) {
      const result = await runChild(url, format, conversationId, path.join(out, `export.${format}`));
      console.log(JSON.stringify(result));
      results.push(result);
    }
    const serverVersion = await (async () => {
      const k = knexFactory({ client: "pg", connection: url });
      try {
        return ((await k.raw("show server_version")) as { rows: { server_version: string }[] }).rows[0].server_version;
      } finally {
        await k.destroy();
      }
    })();
    const date = new Date().toISOString().slice(0, 10);
    const rows = results.map(
      (r) =>
        `| ${r.format.toUpperCase()} | ${r.messages.toLocaleString("en")} | ${(r.bytes / 1024 / 1024).toFixed(1)} MiB | ${r.seconds.toFixed(1)} s | ` +
        `${Math.round(r.messages / r.seconds).toLocaleString("en")} | ${r.startRssMb} MB | ${r.rssByQuarterMb.join(" / ")} MB | ` +
        `${r.peakSampledRssMb} MB | ${r.maxRssMb} MB | ${r.peakHeapTotalMb} MB | ${r.maxRssMb < RSS_LIMIT_MB ? "yes" : "NO"} |`,
    );
    const report = `# Transcript export of one ${MESSAGES.toLocaleString("en")}-message conversation (${date})

Command: \`node -r @swc-node/register bench/transcript-export.ts\`. Machine: ${os.cpus().length} cores, shared with other
work while it ran; Node ${process.version}; PostgreSQL ${serverVersion} (throwaway cluster, fsync off), same machine.

Data: one conversation of ${MESSAGES.toLocaleString("en")} messages seeded with one INSERT … SELECT generate_series: about
200 characters each with quotes, commas, a line break, an emoji and (every fifth message) no formula start, else
\`=\`, \`+\`, \`-\` or \`@\` at the start; alternating user/assistant; every tenth with a tool call.

Each export ran in a child process (\`bench/transcript-export-child.js\`, on the compiled \`dist/\` code that
\`npm start\` runs) through the API's pipeline (\`exportToFile\`: keyset pages of 1,000 rows in seq
order → serializer → sha256 → file written through a temp file and a rename). Peak RSS is the child's whole
process: the kernel's maximum resident set (\`process.resourceUsage().maxRSS\`), and the largest of \`rss\` sampled
every 50 ms; "at start" is the resident set after loading the code, before the export; "at ¼ … end" is rss
when that share of the messages was written (flat means memory does not grow with the export); "V8 heap" is
the largest heapTotal sampled (garbage included: V8 collects the old generation lazily).

| format | messages | file | time | messages/s | RSS at start | RSS at ¼ / ½ / ¾ / end | peak RSS (sampled) | peak RSS (maxRSS) | V8 heap | under ${RSS_LIMIT_MB} MB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join("\n")}
`;
    fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
    const file = path.join(__dirname, "results", `transcript-export-${date}.md`);
    fs.writeFileSync(file, report);
    console.log(`\n${report}\nwritten to ${file}`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    if (cluster) stopCluster(cluster);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
