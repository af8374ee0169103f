/**
 * The two file formats. Both are written as the rows arrive (async generators of text), never built in
 * memory, and both keep a fixed field order so that two exports of the same data are byte for byte equal.
 *
 * JSON (schema "parley.transcript/v1", UTF-8): one object whose keys come in this order:
 *   schema, transcript { id, format, createdAt, createdBy, fromSeq, toSeq, from, to, includeToolCalls,
 *   includeSystem }, conversation { id, title, origin, status, ownerId, parameters, createdAt, updatedAt },
 *   messages [ one object per line: MESSAGE_FIELDS ], messageCount
 * messageCount comes last because it is known only at the end of the stream.
 *
 * CSV (RFC 4180, UTF-8 without BOM, CRLF line ends, a header row): CSV_COLUMNS. Fields holding a comma, a
 * quote or a line break are quoted, quotes doubled (csv-stringify). JSON-valued columns (tool_calls,
 * metadata) hold compact JSON. Against CSV/formula injection, a text cell that starts with = + - @, a tab
 * or a carriage return (or the full-width ＝ ＋ － ＠) gets a single quote (') put in front of it, which
 * spreadsheets show as text instead of evaluating; numbers are left alone. This changes such cells: the
 * JSON format is the lossless one.
 */
import { stringify } from "csv-stringify/sync";
import { TranscriptFormat } from "./transcript.enums";

/** A message as exported (plain text content, whatever its storage). */
export interface ExportMessage {
  seq: number;
  id: string;
  role: string;
  status: string;
  createdAt: Date;
  authorId: string | null;
  content: string;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
  latencyMs: number | null;
  /** null when the message has none, or when tool calls are excluded. */
  toolCalls: unknown;
  metadata: Record<string, unknown>;
}

/** The export's own description and its conversation's, written before the messages. */
export interface ExportHeader {
  transcript: {
    id: string | null;
    format: TranscriptFormat;
    createdAt: Date;
    createdBy: string | null;
    fromSeq: number;
    toSeq: number;
    from: Date | null;
    to: Date | null;
    includeToolCalls: boolean;
    includeSystem: boolean;
  };
  conversation: {
    id: string;
    title: string;
    origin: string;
    status: string;
    ownerId: string;
    parameters: Record<string, unknown>;
    createdAt: Date;
    updatedAt: Date;
  };
}

export const JSON_SCHEMA_ID = "parley.transcript/v1";

export const MESSAGE_FIELDS = [
  "seq",
  "id",
  "role",
  "status",
  "createdAt",
  "authorId",
  "content",
  "model",
  "promptTokens",
  "completionTokens",
  "costUsd",
  "latencyMs",
  "toolCalls",
  "metadata",
] as const satisfies readonly (keyof ExportMessage)[];

/** CSV header → message field. */
export const CSV_COLUMNS = [
  { header: "conversation_id", key: "conversationId" },
  { header: "seq", key: "seq" },
  { header: "message_id", key: "id" },
  { header: "created_at", key: "createdAt" },
  { header: "role", key: "role" },
  { header: "status", key: "status" },
  { header: "author_id", key: "authorId" },
  { header: "model", key: "model" },
  { header: "content", key: "content" },
  { header: "tool_calls", key: "toolCalls" },
  { header: "prompt_tokens", key: "promptTokens" },
  { header: "completion_tokens", key: "completionTokens" },
  { header: "cost_usd", key: "costUsd" },
  { header: "latency_ms", key: "latencyMs" },
  { header: "metadata", key: "metadata" },
] as const;

export const CONTENT_TYPES: Record<TranscriptFormat, string> = {
  [TranscriptFormat.JSON]: "application/json; charset=utf-8",
  [TranscriptFormat.CSV]: "text/csv; charset=utf-8",
};

/** Rows handed to csv-stringify at once: its per-call set-up is amortised, memory stays a batch. */
const CSV_BATCH = 500;

const CSV_OPTIONS = {
  columns: CSV_COLUMNS.map(({ header }) => header),
  record_delimiter: "\r\n",
  escape_formulas: true,
};

type CsvValue = string | number | null;

/** A message as CSV cells, in CSV_COLUMNS order: dates as ISO text, JSON values as compact JSON. */
function csvRecord(conversationId: string, message: ExportMessage): CsvValue[] {
  return CSV_COLUMNS.map(({ key }): CsvValue => {
    const value = key === "conversationId" ? conversationId : message[key];
    if (value == null) return null;
    if (value instanceof Date) return value.toISOString();
    if (typeof value === "object") return JSON.stringify(value);
    return value as string | number;
  });
}

export function serialize(format: TranscriptFormat, header: ExportHeader, messages: AsyncIterable<ExportMessage>): AsyncGenerator<string> {
  return format === TranscriptFormat.CSV ? csvLines(header, messages) : jsonDocument(header, messages);
}

function messageObject(message: ExportMessage): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const field of MESSAGE_FIELDS) ordered[field] = message[field];
  return ordered;
}

async function* jsonDocument(header: ExportHeader, messages: AsyncIterable<ExportMessage>): AsyncGenerator<string> {
  const { transcript: t, conversation: c } = header;
  const transcript = {
    id: t.id,
    format: t.format,
    createdAt: t.createdAt,
    createdBy: t.createdBy,
    fromSeq: t.fromSeq,
    toSeq: t.toSeq,
    from: t.from,
    to: t.to,
    includeToolCalls: t.includeToolCalls,
    includeSystem: t.includeSystem,
  };
  const conversation = {
    id: c.id,
    title: c.title,
    origin: c.origin,
    status: c.status,
    ownerId: c.ownerId,
    parameters: c.parameters,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
  yield `{"schema":${JSON.stringify(JSON_SCHEMA_ID)},\n"transcript":${JSON.stringify(transcript)},\n"conversation":${JSON.stringify(conversation)},\n"messages":[`;
  let count = 0;
  for await (const message of messages) {
    yield `${count === 0 ? "\n" : ",\n"}${JSON.stringify(messageObject(message))}`;
    count++;
  }
  yield `${count === 0 ? "" : "\n"}],\n"messageCount":${count}}\n`;
}

async function* csvLines(header: ExportHeader, messages: AsyncIterable<ExportMessage>): AsyncGenerator<string> {
  let batch: CsvValue[][] = [];
  let first = true;
  const flush = () => {
    const text = stringify(batch, { ...CSV_OPTIONS, header: first });
    first = false;
    batch = [];
    return text;
  };
  for await (const message of messages) {
    batch.push(csvRecord(header.conversation.id, message));
    if (batch.length === CSV_BATCH) yield flush();
  }
  // An export without messages still has its header row.
  if (batch.length > 0 || first) yield flush();
}
