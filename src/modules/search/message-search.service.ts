/**
 * searchMessages: full-text search over the messages a viewer may read, in the text search configuration
 * SEARCH_LANGUAGE (stemming and stop words of that language).
 *
 * The messages table has no tsvector column. A GIN expression index (migration 20261202000400) holds the
 * lexemes of `to_tsvector('<language>'::regconfig, content)`, and the search states that same expression, so
 * PostgreSQL finds the matches through the index (or, for a member's few thousand messages and a frequent
 * word, reads those messages: statistics on the expression let it tell the two apart). A change of
 * SEARCH_LANGUAGE needs the index rebuilt for the new language (reindexMessageSearch, `npm run cli --
 * reindex-message-search`); until then searches are right but read the whole table.
 *
 * Ranking parses the text of each match again (the index holds no positions): ranking
 * every match of a word in a quarter of a million messages took 4.7 s on the benchmark, past the statement
 * timeout. So only the RANKED_CANDIDATES newest matches are ranked; finding and ordering them needs no parsing
 * (the index answers a match of words exactly; only phrases are checked against the text). Below that many
 * matches, which is every search of a member and every search of a rare word, the ranking is over all of them.
 *
 * What is not searchable, by construction: encrypted messages (their content column is null; the index and the
 * search leave them out, since the database never sees their text) and a STREAMING reply until it ends (its
 * text lives in chunks until completeMessage/failMessage folds it into content).
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { viewerScope } from "../access/access.service";
import { getConversation } from "../conversation/conversation.service";
import { Message } from "../message/message.model";
import type { MessageSearchFilter } from "./message-search.input";
import { MessageSearchHit } from "./message-search.types";

export const MESSAGE_SEARCH_INDEX = "messages_content_search_index";
/** reindexMessageSearch builds the new index under this name, then swaps it in. */
export const REBUILD_INDEX = "messages_content_search_rebuild";
/** Longest query, in characters: enough for any phrase a person types, short of a pasted document. */
export const MAX_QUERY_LENGTH = 1000;
const DEFAULT_FIRST = 20;
/** Matches ranked at most, newest first: bounds a frequent word's search to about half a second on 1M messages. */
export const RANKED_CANDIDATES = 5000;
const STATISTICS = "messages_content_search_stats";

// Up to two short fragments around the matches, so a hit fits in a list row or a Discord line. ShortWord=0: by
// default a fragment may not start or end on a word of 3 letters or fewer, which leaves a match in short text
// ("a or b, quasar & co") with no context at all.
const HEADLINE_OPTIONS = 'StartSel=<b>, StopSel=</b>, MaxFragments=2, MaxWords=18, MinWords=6, ShortWord=0, FragmentDelimiter=" … "';

/**
 * The indexed expression, as SQL. The language is spliced in as a literal, not bound: the planner matches an
 * index by its expression, and a constant is what the index definition holds.
 */
export function searchVector(language: string, column = "content"): string {
  // config.ts admits only plain identifiers; checked again because this text goes into SQL as it is.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(language)) throw new Error(`"${language}" is not a text search configuration name`);
  return `to_tsvector('${language}'::regconfig, ${column})`;
}

/** The parsed query (one binding): quotes for phrases, OR, -word to exclude, as search boxes do. */
const tsquery = (language: string) => `websearch_to_tsquery('${language}'::regconfig, ?)`;

/** The text with &, < and > escaped, so that the highlight's <b> markers are its only markup (documents' highlights too). */
export const htmlEscaped = (column: string) => `replace(replace(replace(${column}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;

function checkedQuery(text: string): string {
  const query = text.trim();
  if (!query) throw new BadUserInputError("query must not be empty", { field: "query" });
  if ([...query].length > MAX_QUERY_LENGTH) throw new BadUserInputError(`query must be at most ${MAX_QUERY_LENGTH} characters`, { field: "query" });
  checkText(query, "query");
  return query;
}

function checkedFirst(ctx: Actor, first: number | null | undefined): number {
  const size = first ?? DEFAULT_FIRST;
  const max = ctx.config.maxPageSize;
  if (!Number.isInteger(size) || size < 1 || size > max) throw new BadUserInputError(`first must be between 1 and ${max}`, { field: "first", maxPageSize: max });
  return size;
}

/**
 * Why a search found nothing, when the reason is the query itself: websearch_to_tsquery drops stop words and
 * punctuation, and a query of only exclusions would match nearly every message (the search statement does
 * not run it). Asked only after an empty result, so a search that finds something costs one statement.
 */
async function assertSearchable(ctx: Actor, query: string): Promise<void> {
  const language = ctx.config.knowledge.searchLanguage;
  const { rows } = (await ctx.db.knex.raw(`select numnode(q) as nodes, querytree(q) as tree from ${tsquery(language)} q`, [query])) as {
    rows: { nodes: number; tree: string }[];
  };
  if (rows[0].nodes === 0) {
    throw new BadUserInputError(`The query has no words to search for: common words such as "the" or "and" (in ${language}) and punctuation are ignored`, {
      field: "query",
    });
  }
  if (rows[0].tree === "T") {
    throw new BadUserInputError("The query needs a word that results must contain: -word only excludes, and an OR with an excluded word matches nearly everything", {
      field: "query",
    });
  }
}

/** The best matches among the messages the viewer may read, most relevant first, then newest. */
export async function searchMessages(ctx: Actor, text: string, filter: MessageSearchFilter | null | undefined, first: number | null | undefined): Promise<MessageSearchHit[]> {
  viewerOf(ctx);
  const query = checkedQuery(text);
  const limit = checkedFirst(ctx, first);
  if (filter?.from && filter.to && !(filter.to > filter.from)) throw new BadUserInputError("to must be later than from", { field: "to" });
  // A conversation the viewer cannot read answers exactly as conversation(id) does, not with an empty list.
  if (filter?.conversationId) await getConversation(ctx, filter.conversationId);
  const scope = await viewerScope(ctx);
  const knex = ctx.db.knex;
  const language = ctx.config.knowledge.searchLanguage;
  const candidates = knex("messages as m")
    .join("conversations", "conversations.id", "m.conversationId")
    .select("m.*")
    .whereNotNull("m.content") // the index's predicate: encrypted messages are not in it
    .whereRaw(`${searchVector(language, "m.content")} @@ ${tsquery(language)}`, [query])
    // A constant condition, checked once before any row is read: an exclusions-only query is refused, not run.
    .whereRaw(`querytree(${tsquery(language)}) not in ('', 'T')`, [query])
    .modify(scope)
    .modify((q: Knex.QueryBuilder) => {
      if (filter?.conversationId) q.where("m.conversationId", filter.conversationId);
      if (filter?.role) q.where("m.role", filter.role);
      if (filter?.from) q.where("m.createdAt", ">=", filter.from);
      if (filter?.to) q.where("m.createdAt", "<", filter.to);
    })
    .orderBy([{ column: "m.createdAt", order: "desc" }, { column: "m.id", order: "desc" }])
    .limit(RANKED_CANDIDATES);
  const ranked = knex
    .select("c.*", knex.raw(`ts_rank_cd(${searchVector(language, "c.content")}, ${tsquery(language)}) as rank`, [query]))
    .from(candidates.as("c"))
    .orderBy([{ column: "rank", order: "desc" }, { column: "c.createdAt", order: "desc" }, { column: "c.id", order: "desc" }])
    .limit(limit);
  // ts_headline parses the whole text: the LIMIT inside keeps it to the rows returned.
  const rows: Record<string, unknown>[] = await knex
    .select("hits.*", knex.raw(`ts_headline('${language}'::regconfig, ${htmlEscaped("hits.content")}, ${tsquery(language)}, ?) as highlight`, [query, HEADLINE_OPTIONS]))
    .from(ranked.as("hits"))
    .orderBy([{ column: "hits.rank", order: "desc" }, { column: "hits.createdAt", order: "desc" }, { column: "hits.id", order: "desc" }]);
  if (!rows.length) await assertSearchable(ctx, query);
  return rows.map(({ rank, highlight, ...columns }) => {
    const message = Message.fromDatabaseJson(columns);
    ctx.loaders.messageById.prime(message.id, message);
    return Object.assign(new MessageSearchHit(), { rank: Number(rank), highlight: String(highlight), message });
  });
}

/** The language a message search index was built for (null: no such index). */
export async function indexLanguage(knex: Knex, name: string): Promise<string | null> {
  const { rows } = (await knex.raw("select pg_get_indexdef(to_regclass(?)) as definition", [name])) as { rows: { definition: string | null }[] };
  return rows[0]?.definition ? (/to_tsvector\('([^']+)'::regconfig/.exec(rows[0].definition)?.[1] ?? null) : null;
}

/**
 * (Re)builds the search index for `language` while the servers run: the new index is built CONCURRENTLY under
 * another name (writers go on), then the old one is dropped CONCURRENTLY and the new one takes its name; the
 * planner's statistics on the expression follow (see the migration). Run it on a knex without a statement
 * timeout (the build reads the whole table). Returns the language the index had before (null: there was none).
 */
export async function reindexMessageSearch(knex: Knex, language: string): Promise<{ previous: string | null; current: string }> {
  const previous = await indexLanguage(knex, MESSAGE_SEARCH_INDEX);
  // A run cut short leaves its index behind, perhaps INVALID (a failed concurrent build).
  await knex.raw(`drop index concurrently if exists ${REBUILD_INDEX}`);
  await knex.raw(`create index concurrently ${REBUILD_INDEX} on messages using gin (${searchVector(language)}) where content is not null`);
  await knex.raw(`drop index concurrently if exists ${MESSAGE_SEARCH_INDEX}`);
  // A rename takes only a brief SHARE UPDATE EXCLUSIVE lock (PostgreSQL 12 and later): writers are not held up.
  await knex.raw(`alter index ${REBUILD_INDEX} rename to ${MESSAGE_SEARCH_INDEX}`);
  await knex.raw(`drop statistics if exists ${STATISTICS}`);
  await knex.raw(`create statistics ${STATISTICS} on (${searchVector(language)}) from messages`);
  await knex.raw("analyze messages");
  return { previous, current: language };
}
