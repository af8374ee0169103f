/**
 * Pages of chunks for many documents at once (Document.chunks in a list of documents): one statement per
 * distinct page shape (first, after), each document's page cut by a window function.
 */
import type { Knex } from "knex";
import type { DocumentChunk } from "./document.model";

export interface ChunkPageKey {
  documentId: string;
  first: number;
  /** Chunks after this position; -1 from the start. */
  after: number;
}

export const chunkPageKey = (key: ChunkPageKey): string => `${key.documentId}:${key.first}:${key.after}`;

export async function chunkPageBatch(knex: Knex, keys: readonly ChunkPageKey[]): Promise<DocumentChunk[][]> {
  const pages = new Map<string, DocumentChunk[]>(keys.map((key) => [chunkPageKey(key), []]));
  const shapes = new Map<string, ChunkPageKey[]>();
  for (const key of keys) shapes.set(`${key.first}:${key.after}`, [...(shapes.get(`${key.first}:${key.after}`) ?? []), key]);
  await Promise.all(
    [...shapes.values()].map(async (group) => {
      const { first, after } = group[0];
      const { rows } = await knex.raw(
        `select id, document_id as "documentId", position, content, char_start as "charStart", char_end as "charEnd", has_embedding as "hasEmbedding"
           from (select c.*, c.dimensions is not null as has_embedding, row_number() over (partition by c.document_id order by c.position) as n
                   from document_chunks c where c.document_id = any(?::uuid[]) and c.position > ?) page
          where n <= ? order by document_id, position`,
        [group.map((key) => key.documentId), after, first],
      );
      for (const row of rows as DocumentChunk[]) pages.get(`${row.documentId}:${first}:${after}`)!.push(row);
    }),
  );
  return keys.map((key) => pages.get(chunkPageKey(key))!);
}
