#!/usr/bin/env node
/**
 * Builds Parley Console (console/) into dist/console with esbuild: one JS and one CSS bundle under
 * assets/, named by content hash (so the server may cache them for a year), index.html naming them, and
 * manifest.json listing every file the server may serve (it serves nothing else). Text assets get .gz and
 * .br copies beside them. `npm run build` runs it, and `npm start` when console/ changed since the last build.
 *
 *   node scripts/build-console.js [--out DIR] [--if-stale]
 *
 * The new build is written beside the old one and swapped in by renames, so a running server never reads
 * half a build. Plain JavaScript, like start.js: it runs before anything is compiled.
 */
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");

const root = path.resolve(__dirname, "..");
const sourceDir = path.join(root, "console");
const defaultOut = path.join(root, "dist", "console");
/** What the build depends on besides console/ itself. */
const inputs = [sourceDir, __filename, path.join(root, "package-lock.json")];

function newestMtime(target) {
  const stat = fs.statSync(target, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return fs.readdirSync(target).reduce((newest, name) => Math.max(newest, newestMtime(path.join(target, name))), stat.mtimeMs);
}

/** True when outDir holds no build, or one older than its sources. */
function isStale(outDir = defaultOut) {
  const manifest = fs.statSync(path.join(outDir, "manifest.json"), { throwIfNoEntry: false });
  return !manifest || manifest.mtimeMs < Math.max(...inputs.map(newestMtime));
}

const TYPES = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
};
const COMPRESSIBLE = new Set([".js", ".css", ".map", ".txt", ".html", ".svg"]);

function compress(file) {
  const body = fs.readFileSync(file);
  const encodings = {};
  if (!COMPRESSIBLE.has(path.extname(file)) || body.length < 1024) return encodings;
  const gzip = zlib.gzipSync(body, { level: 9 });
  const brotli = zlib.brotliCompressSync(body, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  if (gzip.length < body.length) {
    fs.writeFileSync(`${file}.gz`, gzip);
    encodings.gzip = `${path.basename(file)}.gz`;
  }
  if (brotli.length < body.length) {
    fs.writeFileSync(`${file}.br`, brotli);
    encodings.br = `${path.basename(file)}.br`;
  }
  return encodings;
}

/** The package folder a bundled file comes from (node_modules/name or node_modules/@scope/name). */
function packageDir(input) {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return match ? match[1] : undefined;
}

/** licenses-<hash>.txt: each bundled package's name, version and licence text, as their licences ask. */
function writeLicenses(metafile, assetsDir) {
  const bundled = Object.values(metafile.outputs).flatMap((output) => Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0));
  const dirs = [...new Set(bundled.map(([file]) => packageDir(file)).filter(Boolean))].sort();
  const sections = dirs.map((dir) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, dir, "package.json"), "utf8"));
    const licenseFile = fs.readdirSync(path.join(root, dir)).find((name) => /^(licen[cs]e|copying)(\.|$)/i.test(name));
    const text = licenseFile ? fs.readFileSync(path.join(root, dir, licenseFile), "utf8").trim() : `License: ${pkg.license ?? "see the package"}`;
    return `${pkg.name} ${pkg.version}\n${"-".repeat(`${pkg.name} ${pkg.version}`.length)}\n${text}\n`;
  });
  const body = `Parley Console bundles the following packages.\n\n${sections.join("\n")}`;
  const hash = require("node:crypto").createHash("sha256").update(body).digest("hex").slice(0, 8).toUpperCase();
  fs.writeFileSync(path.join(assetsDir, `licenses-${hash}.txt`), body);
}

async function buildConsole({ outDir = defaultOut, log = console.error } = {}) {
  const esbuild = require("esbuild");
  const started = Date.now();
  const staging = `${outDir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  const assetsDir = path.join(staging, "assets");
  fs.mkdirSync(assetsDir, { recursive: true });
  try {
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { console: path.join(sourceDir, "src", "main.tsx") },
      outdir: assetsDir,
      entryNames: "[name]-[hash]",
      assetNames: "[name]-[hash]",
      bundle: true,
      format: "esm",
      platform: "browser",
      // Browsers of the last few years; nothing older is asked for.
      target: ["chrome111", "firefox113", "safari16.4", "edge111"],
      minify: true,
      sourcemap: "linked",
      legalComments: "none", // the licences of what is bundled go whole into a file of their own (below)
      jsx: "automatic",
      jsxImportSource: "preact",
      tsconfig: path.join(sourceDir, "tsconfig.json"),
      define: { "process.env.NODE_ENV": '"production"' },
      metafile: true,
      logLevel: "warning",
    });
    const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
    const js = outputs.find((name) => name.endsWith(".js"));
    const css = outputs.find((name) => name.endsWith(".css"));
    if (!js || !css) throw new Error(`esbuild produced no ${js ? "CSS" : "JS"} bundle`);

    writeLicenses(result.metafile, assetsDir);

    const template = fs.readFileSync(path.join(sourceDir, "index.html"), "utf8");
    const html = template.replace("{{js}}", `/console/assets/${js}`).replace("{{css}}", `/console/assets/${css}`);
    if (/\{\{\w+\}\}/.test(html)) throw new Error("console/index.html names a placeholder the build does not fill");
    fs.writeFileSync(path.join(staging, "index.html"), html);

    const assets = {};
    for (const name of fs.readdirSync(assetsDir).sort()) {
      const file = path.join(assetsDir, name);
      const type = TYPES[path.extname(name)];
      if (!type) throw new Error(`no content type known for ${name}`);
      assets[name] = { type, bytes: fs.statSync(file).size, encodings: compress(file) };
    }
    const index = { type: TYPES[".html"], bytes: Buffer.byteLength(html), encodings: compress(path.join(staging, "index.html")) };
    const manifest = { version: 1, builtAt: new Date().toISOString(), index, assets };
    fs.writeFileSync(path.join(staging, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

    // Swap: the old build moves aside, the new one takes its name, the old one goes.
    const old = `${outDir}.old-${process.pid}`;
    fs.mkdirSync(path.dirname(outDir), { recursive: true });
    if (fs.existsSync(outDir)) fs.renameSync(outDir, old);
    fs.renameSync(staging, outDir);
    fs.rmSync(old, { recursive: true, force: true });

    const size = (name) => `${(assets[name].bytes / 1024).toFixed(1)} kB` + (assets[name].encodings.br ? `, ${(fs.statSync(path.join(outDir, "assets", assets[name].encodings.br)).size / 1024).toFixed(1)} kB brotli` : "");
    log(`Parley Console built into ${path.relative(process.cwd(), outDir) || "."} in ${Date.now() - started} ms: ${js} (${size(js)}), ${css} (${size(css)})`);
    return manifest;
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

module.exports = { buildConsole, isStale, defaultOut };

if (require.main === module) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf("--out");
  const outDir = outIndex >= 0 ? path.resolve(args[outIndex + 1]) : defaultOut;
  if (args.includes("--if-stale") && !isStale(outDir)) process.exit(0);
  buildConsole({ outDir }).catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
