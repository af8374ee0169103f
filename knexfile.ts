/**
 * Used by the knex CLI (`npx knex migrate:latest`, `npx knex migrate:rollback --all`, ...). It reads the same
 * settings as the server: DATABASE_URL set means that PostgreSQL server, unset means the embedded PGlite
 * folder (which is locked: stop the server before running the CLI against it).
 */
import { loadConfig, loadEnvFile } from "./src/config";
import { knexSetup } from "./src/db/knex-config";

loadEnvFile();
// Migrations may run long: no statement timeout (see KnexPurpose).
export default knexSetup(loadConfig(), "maintenance").config;
