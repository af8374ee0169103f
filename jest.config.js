// The same suites run twice: once against a real PostgreSQL server and once against embedded PGlite.
// PARLEY_TEST_DB=postgres|pglite narrows a run to one of them.
const swc = ["@swc/jest", {
  jsc: {
    parser: { syntax: "typescript", decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    target: "es2022",
  },
  module: { type: "commonjs" },
}];

const project = (db) => ({
  displayName: db,
  testEnvironment: "node",
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  // Several server processes on one database need a database server: not the embedded PGlite. The browser
  // suites (test/browser) test the page, not the database: they run once, on PostgreSQL.
  testPathIgnorePatterns: db === "pglite" ? ["/node_modules/", "<rootDir>/test/server/processes\\.test\\.ts$", "<rootDir>/test/server/pgbouncer\\.test\\.ts$", "<rootDir>/test/server/crash\\.test\\.ts$", "<rootDir>/test/server/outage\\.test\\.ts$", "<rootDir>/test/server/slow-database\\.test\\.ts$", "<rootDir>/test/db/vectors-missing\\.test\\.ts$", "<rootDir>/test/browser/"] : ["/node_modules/"],
  transform: { "^.+\\.(t|j)s$": swc },
  globalSetup: `<rootDir>/test/setup/global-setup-${db}.ts`,
  globalTeardown: `<rootDir>/test/setup/global-teardown-${db}.ts`,
  setupFiles: ["reflect-metadata", `<rootDir>/test/setup/env-${db}.ts`],
});

const only = process.env.PARLEY_TEST_DB;
module.exports = {
  projects: ["postgres", "pglite"].filter((db) => !only || only === db).map(project),
  testTimeout: 60000,
  // At least two test files at once: jest's default (cores - 1) is one on a 2-core machine, which leaves a core
  // idle while a file waits on PostgreSQL, a child process or the network. Measured on 2 cores: the suite's
  // files add up to 2,312 s and ran in 1,162 s of wall time with two workers.
  maxWorkers: Math.max(2, require("node:os").availableParallelism() - 1),
};
