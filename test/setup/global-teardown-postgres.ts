import knexFactory from "knex";
import { clearState, loadState, stopCluster } from "./pg-cluster";
import { TEMPLATE_DB } from "./pg-urls";

export default async function globalTeardown(): Promise<void> {
  const state = loadState();
  if (state.dataDir) stopCluster(state);
  else {
    // An external server (TEST_DATABASE_URL): leave it as we found it.
    const admin = knexFactory({ client: "pg", connection: state.adminUrl });
    try {
      await admin.raw(`drop database if exists ${TEMPLATE_DB}`);
    } finally {
      await admin.destroy();
    }
  }
  clearState();
}
