#!/usr/bin/env node
/**
 * `npm start`: compiles the TypeScript when dist/ is missing or older than the sources (and bundles Parley
 * Console when console/ changed, scripts/build-console.js), then runs the
 * server (which applies migrations to the embedded database itself). `npm run discord` (argument
 * "discord") runs the Discord adapter alone the same way. Plain JavaScript on purpose: it must run before
 * anything is built.
 */
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const entry = path.join(root, "dist", "src", process.argv[2] === "discord" ? "discord/main.js" : "index.js");
const sources = ["src", "migrations", "seeds", "knexfile.ts", "tsconfig.json", "tsconfig.build.json", "package.json"];

function newestMtime(target) {
  const stat = fs.statSync(target, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return fs.readdirSync(target).reduce((newest, name) => Math.max(newest, newestMtime(path.join(target, name))), stat.mtimeMs);
}

const built = fs.statSync(entry, { throwIfNoEntry: false });
const newestSource = Math.max(...sources.map((name) => newestMtime(path.join(root, name))));
if (!built || built.mtimeMs < newestSource) {
  console.error("Building Parley (tsc)...");
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], {
    cwd: root,
    stdio: "inherit",
  });
  fs.utimesSync(entry, new Date(), new Date()); // tsc keeps unchanged outputs' times; mark the build as fresh
}
// Parley Console (console/ → dist/console), bundled by esbuild when its sources changed since the last build.
if (process.argv[2] !== "discord" && require("./build-console").isStale()) {
  console.error("Building Parley Console (esbuild)...");
  execFileSync(process.execPath, [path.join(__dirname, "build-console.js")], { cwd: root, stdio: "inherit" });
}
require(entry);
