/**
 * How fast is searchDocuments over 100,000 chunks of 384 dimensions, through the HNSW index and exactly?
 *
 * A throwaway PostgreSQL cluster (pgvector built by scripts/install-pgvector.sh) gets the real migrations and
 * 1,000 documents × 100 chunks in 10 guild knowledge bases: each chunk's vector drawn as described at LATENT,
 * each chunk's text 30 words from a 500-word vocabulary. The HNSW index is built after the rows are in (a bulk
 * build, as an operator re-indexing would), and its build time reported.
 *
 * Then, through the GraphQL API of an in-process server, one request at a time (latency, not throughput):
 * - vector search over everything an admin reads (100,000 chunks), HNSW vs exact (`exact: true`);
 * - vector search in one guild (10,000 of the 100,000: the index walks on past other guilds' rows);
 * - hybrid search (text + vector) in one guild; text alone over everything.
 * and recall@10 of the index against the exact answer for the same queries.
 *
 * Run:   npm run bench:search-documents   (BENCH_CHUNKS=20000 for a shorter run)
 * Output: bench/results/search-documents-<YYYY-MM-DD>.md (also printed).
 */
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import knexFactory from "knex";
import { loadConfig } from "../src/config";
import { createDatabase } from "../src/db/database";
import { startServer } from "../src/server/app";
import { createApiKey } from "../src/modules/api-key/api-key.service";
import { ensureVectorIndex } from "../src/modules/knowledge/vector-index";
import { startCluster, stopCluster } from "../test/setup/pg-cluster";
import { withDatabase } from "../test/setup/pg-urls";
import { percentile, writeResults } from "./measure";

const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 100_000);
const DIMENSIONS = 384;
const GUILDS = 10;
const CHUNKS_PER_DOCUMENT = 100;
/**
 * Real embeddings have a low intrinsic dimension: they vary along a few dozen directions of meaning. So each
 * vector here is a random point of a 24-dimensional space, mapped into 384 dimensions by one fixed random
 * matrix, plus a little noise. (Vectors uniform in all 384 dimensions would be nearly equidistant from one
 * another, where "the 10 nearest" means little and every ANN index looks bad.)
 */
const LATENT = 24;
const LATENT_NOISE = 0.02;
const VOCABULARY = Array.from({ length: 500 }, (_, w) => `w${w}${["alpha", "beta", "gamma", "delta", "omega"][w % 5]}`);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 200);
const DB_NAME = "parley_bench_search";

/** A deterministic generator, so every run asks the same queries. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const draw = random(7);
/** A standard normal draw (Box–Muller). */
const normal = () => Math.sqrt(-2 * Math.log(1 - draw())) * Math.cos(2 * Math.PI * draw());
const PROJECTION = Array.from({ length: DIMENSIONS }, () => Float64Array.from({ length: LATENT }, normal));

function embedding(noise: number): number[] {
  const z = Array.from({ length: LATENT }, normal);
  return Array.from(PROJECTION, (row) => {
    let x = 0;
    for (let j = 0; j < LATENT; j++) x += row[j] * z[j];
    return Number((x / Math.sqrt(LATENT) + normal() * noise).toFixed(5));
  });
}

/** 30 words, Zipf-like: the square of a uniform number favours the first words of the vocabulary. */
function sentence(): string {
  return Array.from({ length: 30 }, () => VOCABULARY[Math.floor(500 * draw() ** 2)]).join(" ");
}

async function main(): Promise<void> {
  execInstall();
  const cluster = await startCluster(["-c maintenance_work_mem=1GB", "-c max_parallel_maintenance_workers=2"]);
  const admin = knexFactory({ client: "pg", connection: cluster.adminUrl });
  await admin.raw(`drop database if exists ${DB_NAME}`);
  await admin.raw(`create database ${DB_NAME}`);
  await admin.destroy();
  const url = withDatabase(cluster.adminUrl, DB_NAME);
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: "warn", PORT: "0", HOST: "127.0.0.1", RATE_LIMIT_ENABLED: "false", DATABASE_STATEMENT_TIMEOUT_MS: "0" });
  const db = createDatabase(config);
  const lines: string[] = [];
  try {
    await db.migrate();
    const knex = db.maintenance;
    const seedStarted = Date.now();
    const [owner] = await knex("users").insert({ displayName: "bench-admin", role: "admin" }).returning("id");
    await knex.raw(`insert into knowledge_bases (scope, guild_id, embedding_model, dimensions)
      select 'guild', (100000000000000000 + g)::text, 'bench-384', ${DIMENSIONS} from generate_series(1, ${GUILDS}) g`);
    const documents = Math.ceil(CHUNKS / CHUNKS_PER_DOCUMENT);
    await knex.raw(
      `insert into documents (knowledge_base_id, external_id, title, language, size_bytes, content_sha256, chunk_count, embedding_model, created_by)
       select kb.id, 'doc-' || d, 'Document ' || d, 'english', 3000, repeat('0', 64), ${CHUNKS_PER_DOCUMENT}, 'bench-384', ?
         from generate_series(1, ${documents}) d
         join knowledge_bases kb on kb.guild_id = (100000000000000000 + 1 + d % ${GUILDS})::text`,
      [owner.id],
    );
    const documentRows: { id: string; knowledgeBaseId: string }[] = await knex("documents").select("id", "knowledgeBaseId").orderBy("externalId");
    for (let start = 0; start < documentRows.length; start += 10) {
      const batch = documentRows.slice(start, start + 10).flatMap((doc) =>
        Array.from({ length: CHUNKS_PER_DOCUMENT }, (_, position) => ({ doc, position, content: sentence(), embedding: embedding(LATENT_NOISE) })),
      );
      await knex.raw(
        `insert into document_chunks (document_id, knowledge_base_id, position, content, search_vector, dimensions, embedding)
         select t.document_id, t.knowledge_base_id, t.position, t.content, to_tsvector('english', t.content), ${DIMENSIONS}, t.embedding::vector
           from unnest(?::uuid[], ?::uuid[], ?::int[], ?::text[], ?::text[]) as t(document_id, knowledge_base_id, position, content, embedding)`,
        [
          batch.map((row) => row.doc.id),
          batch.map((row) => row.doc.knowledgeBaseId),
          batch.map((row) => row.position),
          batch.map((row) => row.content),
          batch.map((row) => `[${row.embedding.join(",")}]`),
        ],
      );
    }
    await knex.raw("analyze");
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    const [{ n }] = await knex("document_chunks").count({ n: "*" });
    const indexStarted = Date.now();
    await ensureVectorIndex(knex, DIMENSIONS);
    const indexSeconds = (Date.now() - indexStarted) / 1000;
    const { rows: size } = await knex.raw(`select pg_size_pretty(pg_relation_size('document_chunks_embedding_${DIMENSIONS}_index')) as s`);

    const queries = Array.from({ length: QUERIES }, () => embedding(LATENT_NOISE));
    const texts = Array.from({ length: QUERIES }, (_, i) => `${VOCABULARY[(i * 7) % 40]} ${VOCABULARY[(i * 13) % 200]}`);

    const server = await startServer({ config, db });
    const token = (await createApiKey(db.knex, owner.id, "bench")).secret;
    const endpoint = `http://127.0.0.1:${server.port}/graphql`;
    const SEARCH = `query($q: String, $e: [Float!], $f: DocumentSearchFilter, $exact: Boolean) {
      searchDocuments(query: $q, embedding: $e, filter: $f, first: 10, exact: $exact) { chunk { id } } }`;
    const ask = async (variables: Record<string, unknown>): Promise<string[]> => {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: SEARCH, variables }),
      });
      const body = (await response.json()) as { data?: { searchDocuments: { chunk: { id: string } }[] }; errors?: unknown };
      if (!body.data) throw new Error(JSON.stringify(body.errors));
      return body.data.searchDocuments.map((hit) => hit.chunk.id);
    };
    const guild = { scope: { kind: "GUILD", guildId: "100000000000000001" } };
    const measure = async (name: string, variablesOf: (i: number) => Record<string, unknown>) => {
      for (let i = 0; i < 10; i++) await ask(variablesOf(i)); // warm-up: plans, buffers, JIT
      const times: number[] = [];
      const answers: string[][] = [];
      for (let i = 0; i < QUERIES; i++) {
        const started = performance.now();
        answers.push(await ask(variablesOf(i)));
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      return { name, p50: percentile(times, 50), p95: percentile(times, 95), answers };
    };
    const results = [
      await measure(`vector, all ${n} chunks, HNSW`, (i) => ({ e: queries[i] })),
      await measure(`vector, all ${n} chunks, exact`, (i) => ({ e: queries[i], exact: true })),
      await measure("vector, one guild (1/10), HNSW", (i) => ({ e: queries[i], f: guild })),
      await measure("vector, one guild (1/10), exact", (i) => ({ e: queries[i], f: guild, exact: true })),
      await measure("hybrid (text + vector), one guild, HNSW", (i) => ({ q: texts[i], e: queries[i], f: guild })),
      await measure(`text only, all ${n} chunks`, (i) => ({ q: texts[i] })),
    ];
    const recall = (approximate: string[][], exact: string[][]) => {
      let found = 0;
      let total = 0;
      approximate.forEach((ids, i) => {
        const truth = new Set(exact[i]);
        total += truth.size;
        found += ids.filter((id) => truth.has(id)).length;
      });
      return total ? found / total : 1;
    };
    await server.dispose();

    lines.push(
      `# searchDocuments over ${n} chunks of ${DIMENSIONS} dimensions — ${new Date().toISOString().slice(0, 10)}`,
      "",
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}; PostgreSQL 15 (throwaway cluster, fsync off) with pgvector, ` +
        "server and client in one process, one request at a time. `npm run bench:search-documents`.",
      "",
      `Data: ${documents} documents × ${CHUNKS_PER_DOCUMENT} chunks in ${GUILDS} guild knowledge bases; vectors = random points of a ${LATENT}-dimensional ` +
        `space mapped into ${DIMENSIONS} dimensions by a fixed random matrix, plus noise (see the script); ` +
        `30 words a chunk from a 500-word vocabulary. Seeded in ${seedSeconds.toFixed(0)} s; HNSW index (m 16, ef_construction 64, the defaults) ` +
        `built in ${indexSeconds.toFixed(0)} s, ${size[0].s}.`,
      "",
      `${QUERIES} queries per row (after 10 warm-up), first: 10, through POST /graphql:`,
      "",
      "| search | p50 ms | p95 ms |",
      "|---|---:|---:|",
      ...results.map((r) => `| ${r.name} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`),
      "",
      `Recall@10 of the HNSW index against the exact answer: all chunks ${(recall(results[0].answers, results[1].answers) * 100).toFixed(1)} %, ` +
        `one guild ${(recall(results[2].answers, results[3].answers) * 100).toFixed(1)} % (hnsw.iterative_scan = relaxed_order, ef_search = 50).`,
    );
  } finally {
    await db.close();
    stopCluster(cluster);
  }
  writeResults("search-documents-", lines);
}

/** pgvector must be in place before the cluster starts (see scripts/install-pgvector.sh). */
function execInstall(): void {
  execFileSync(path.resolve(__dirname, "../scripts/install-pgvector.sh"), { stdio: "inherit" });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
