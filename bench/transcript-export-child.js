// The export side of bench/transcript-export.ts, run as its own process from the compiled code in dist/
// (what `npm start` runs), so that its peak RSS is the export's and not the TypeScript loader's.
// argv: <format json|csv> <conversationId> <file>; DATABASE_URL names the database. Prints one JSON line.
require("reflect-metadata");
const path = require("node:path");
const dist = (file) => path.join(__dirname, "..", "dist", file);
const { loadConfig } = require(dist("src/config.js"));
const { createDatabase } = require(dist("src/db/database.js"));
const { exportToFile } = require(dist("src/modules/transcript/transcript.file.js"));

async function main([format, conversationId, file]) {
  const mb = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  const startRss = process.memoryUsage().rss;
  let peak = startRss;
  let peakHeap = 0;
  let peakExternal = 0;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peak = Math.max(peak, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapTotal);
    peakExternal = Math.max(peakExternal, usage.external);
  }, 50);
  const db = createDatabase(loadConfig());
  try {
    const started = process.hrtime.bigint();
    // rss when a quarter, half, three quarters and all of the messages are written: flat, or growing?
    const quarters = [];
    const result = await exportToFile(db.knex, undefined, conversationId, { format }, file, ({ done, total }) => {
      if (done >= ((quarters.length + 1) * total) / 4) quarters.push(mb(process.memoryUsage().rss));
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(
      JSON.stringify({
        format,
        messages: result.messageCount,
        bytes: result.fileSizeBytes,
        seconds,
        startRssMb: mb(startRss),
        rssByQuarterMb: quarters,
        peakSampledRssMb: mb(peak),
        peakHeapTotalMb: mb(peakHeap),
        peakExternalMb: mb(peakExternal),
        maxRssMb: mb(process.resourceUsage().maxRSS * 1024),
      }),
    );
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
