import type { Knex } from "knex";
import { loadConfig } from "../src/config";

/**
 * Full-text search over messages (searchMessages): a GIN index on the text's tsvector in the configured
 * SEARCH_LANGUAGE. There is no tsvector column: the index alone holds the lexemes, so a change of language is a
 * new index (`npm run cli -- reindex-message-search`), never a rewrite of the table. The expression must be the
 * very one modules/search/message-search.service.ts queries with, or the planner cannot use the index.
 * Encrypted messages (content null) are left out of the index, as they are out of search.
 *
 * The planner takes no statistics from a partial index, and without them it guesses that any word is in 0.5 %
 * of the messages: it then walks a frequent word's whole posting list once per conversation of a member's
 * search (ten times 300,000 entries on the benchmark) where reading the member's 1,000 messages would do.
 * Statistics on the expression (PostgreSQL 14+) give it each word's real frequency; ANALYZE fills them now
 * rather than whenever autovacuum next gets to a large, mostly appended table.
 *
 * Built CONCURRENTLY, so a deploy on a large table does not block writers for the minutes the build takes;
 * that cannot run inside a transaction, hence `transaction: false`. PGlite accepts it too. CREATE STATISTICS
 * and ANALYZE do not block writers either.
 */
export const config = { transaction: false };

const INDEX = "messages_content_search_index";
const STATISTICS = "messages_content_search_stats";

export async function up(knex: Knex): Promise<void> {
  const language = loadConfig().knowledge.searchLanguage; // validated there as a plain identifier
  // A concurrent build that failed (or was cancelled) leaves an INVALID index of that name behind.
  await knex.raw(`drop index concurrently if exists ${INDEX}`);
  await knex.raw(`create index concurrently ${INDEX} on messages using gin (to_tsvector('${language}'::regconfig, content)) where content is not null`);
  await knex.raw(`create statistics if not exists ${STATISTICS} on (to_tsvector('${language}'::regconfig, content)) from messages`);
  await knex.raw("analyze messages");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop statistics if exists ${STATISTICS}`);
  await knex.raw(`drop index concurrently if exists ${INDEX}`);
  // reindex-message-search builds under this name first; a run cut short may have left it.
  await knex.raw(`drop index concurrently if exists messages_content_search_rebuild`);
}
