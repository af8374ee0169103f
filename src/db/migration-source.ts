/**
 * knex records migration names with their file extension, so running the .ts files once and the compiled
 * .js files later looks like a corrupt migration directory. This source names migrations without the
 * extension, so both runs agree.
 */
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";

export const MIGRATIONS_DIR = path.resolve(__dirname, "../../migrations");
export const SEEDS_DIR = path.resolve(__dirname, "../../seeds");

const SOURCE_FILE = /\.(ts|js)$/;

export class ExtensionlessMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly dir: string = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<string[]> {
    return fs
      .readdirSync(this.dir)
      .filter((file) => SOURCE_FILE.test(file) && !file.endsWith(".d.ts"))
      .sort();
  }

  getMigrationName(file: string): string {
    return file.replace(SOURCE_FILE, "");
  }

  async getMigration(file: string): Promise<Knex.Migration> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.join(this.dir, file));
  }
}
