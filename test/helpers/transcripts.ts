/**
 * Transcript helpers shared by the disk and S3 suites: create through the API, wait for a background
 * export (a bounded number of polls of transcript(id), never a clock), download, and hostile content.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { TestApp, TestUser } from "./server";

export const TRANSCRIPT_FIELDS = `id status format error messageCount fileSizeBytes sha256 requestId fromSeq toSeq from to
  includeToolCalls includeSystem downloadPath completedAt createdBy { id } conversation { id }`;
export const CREATE_TRANSCRIPT = `mutation($input: CreateTranscriptInput!) { createTranscript(input: $input) { ${TRANSCRIPT_FIELDS} } }`;
const GET_TRANSCRIPT = `query($id: UUID!) { transcript(id: $id) { ${TRANSCRIPT_FIELDS} } }`;

export interface TranscriptData {
  id: string;
  status: "PENDING" | "READY" | "FAILED";
  format: "JSON" | "CSV";
  error: string | null;
  messageCount: number | null;
  fileSizeBytes: number | null;
  sha256: string | null;
  requestId: string | null;
  downloadPath: string | null;
  [field: string]: unknown;
}

/** Texts that break naive CSV/JSON writers or spreadsheets (no NUL: PostgreSQL text cannot hold it). */
export const HOSTILE_TEXTS = [
  'He said "hi", then "bye"',
  "line one\nline two\r\nline three\rline four",
  "a,b,,c,",
  '""',
  "emoji 😀 family 👩‍👩‍👧‍👦 flag 🇵🇹",
  "bidi \u202Eevil\u202C zero\u200Bwidth e\u0301 bom\uFEFF nbsp\u00A0 line-sep\u2028 para-sep\u2029",
  "=cmd|' /C calc'!A0",
  "+1+1",
  "-2+3",
  "@SUM(A1:A2)",
  "\tstarts with a tab",
  "\rstarts with a carriage return",
  "＝HYPERLINK(\"x\")",
  "'=already quoted",
  " leading and trailing spaces ",
  "日本語のテキスト; عربى; עברית",
  "back\\slash and {\"json\": [1, 2]}",
];

/** The CSV rule: a cell starting with = + - @ tab CR (or full-width ＝ ＋ － ＠) gets a leading single quote. */
export function neutralised(text: string): string {
  return /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/.test(text) ? `'${text}` : text;
}

export const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

export async function createTranscript(app: TestApp, user: TestUser, input: Record<string, unknown>): Promise<TranscriptData> {
  return (await app.ok<{ createTranscript: TranscriptData }>(CREATE_TRANSCRIPT, { input }, user.token)).createTranscript;
}

export async function readTranscript(app: TestApp, user: TestUser, id: string): Promise<TranscriptData> {
  return (await app.ok<{ transcript: TranscriptData }>(GET_TRANSCRIPT, { id }, user.token)).transcript;
}

/** Polls transcript(id) until it is no longer PENDING, at most `polls` times. */
export async function settled(app: TestApp, user: TestUser, id: string, polls = 1200): Promise<TranscriptData> {
  for (let i = 0; i < polls; i++) {
    const transcript = await readTranscript(app, user, id);
    if (transcript.status !== "PENDING") return transcript;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`transcript ${id} is still PENDING after ${polls} polls`);
}

export interface Download {
  status: number;
  headers: Headers;
  bytes: Buffer;
}

export async function download(app: TestApp, id: string, token?: string, method = "GET"): Promise<Download> {
  const response = await fetch(`${app.url}/transcripts/${id}/download`, {
    method,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

/** Every file below `dir` (relative paths), temp files included. */
export function filesBelow(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((name) => fs.statSync(path.join(dir, name)).isFile()).sort();
}

/**
 * A conversation of `owner` with every role, tool calls, usage figures, hostile texts and one text of
 * 100,000 characters; the service writes the non-USER messages.
 */
export async function hostileConversation(app: TestApp, owner: TestUser, service: TestUser): Promise<string> {
  const { createConversation } = await app.ok(
    `mutation { createConversation(input: { title: "Export \\"me\\", please, 😀", parameters: { model: "m1", temperature: 0.2 } }) { id } }`,
    {},
    owner.token,
  );
  const id: string = createConversation.id;
  const add = (user: TestUser, input: Record<string, unknown>) =>
    app.ok(`mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`, { input: { conversationId: id, ...input } }, user.token);
  await add(service, { role: "SYSTEM", content: "You are terse, = and all." });
  for (const text of HOSTILE_TEXTS) await add(owner, { content: text, metadata: { note: text } });
  await add(service, {
    role: "ASSISTANT",
    content: "Calling a tool",
    toolCalls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"a,\\"b\\"\\n"}' } }],
    model: "gpt-test",
    promptTokens: 12,
    completionTokens: 34,
    costUsd: 0.00123,
    latencyMs: 456,
  });
  await add(service, { role: "TOOL", content: '{"result": "-42"}' });
  await add(service, { role: "ASSISTANT", content: `long ${"x,\"y\"\n".repeat(16_665)}`.slice(0, 100_000) });
  return id;
}
