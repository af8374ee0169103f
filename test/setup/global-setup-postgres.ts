import { execFileSync } from "node:child_process";
import path from "node:path";
import knexFactory from "knex";
import { loadConfig } from "../../src/config";
import { createDatabase } from "../../src/db/database";
import { saveState, startCluster } from "./pg-cluster";
import { TEMPLATE_DB, withDatabase } from "./pg-urls";

/** Starts (or connects to) PostgreSQL and migrates a template database that every test file clones. */
export default async function globalSetup(): Promise<void> {
  // pgvector before any cluster starts (installing its build headers may upgrade the server binaries).
  if (!process.env.TEST_DATABASE_URL) execFileSync(path.resolve(__dirname, "../../scripts/install-pgvector.sh"), { stdio: "inherit" });
  const state = await startCluster();
  saveState(state);
  process.env.PARLEY_TEST_PG_ADMIN_URL = state.adminUrl;
  const admin = knexFactory({ client: "pg", connection: state.adminUrl });
  try {
    await admin.raw(`drop database if exists ${TEMPLATE_DB}`);
    await admin.raw(`create database ${TEMPLATE_DB}`);
  } finally {
    await admin.destroy();
  }
  const db = createDatabase(loadConfig({ DATABASE_URL: withDatabase(state.adminUrl, TEMPLATE_DB) }));
  try {
    await db.migrate();
  } finally {
    await db.close();
  }
}
