/**
 * Transcripts for the API: creating one (idempotent on requestId), reading one, opening its file for
 * download. A transcript is readable exactly when its conversation is (getConversation); otherwise it is
 * NOT_FOUND, like an unknown id.
 *
 * Small exports run inside the request and come back READY (or FAILED); an export of more than
 * TRANSCRIPT_INLINE_MAX_MESSAGES messages comes back PENDING and runs in the background (TranscriptJobs).
 * The size is judged from the seq range alone (seq has no gaps), so deciding costs no query.
 *
 * Retrying after FAILED. A requestId names one attempt, and its answer is final: the same requestId returns
 * the same transcript whatever its status, FAILED included, and starts nothing (as idempotency keys do at
 * payment and cloud APIs: they make a request safe to resend when its answer was lost, and FAILED is an
 * answer). To try a FAILED export again, say once the storage is back, create a new transcript: without a
 * requestId or with a new one. It is a new row and a new run; the FAILED one stays listed with its error.
 * Re-running the FAILED row in place was not chosen: `attempts` counts the runs of one creation (takeovers
 * give up after MAX_ATTEMPTS) and names the run's storage key, and a client-driven restart would blur both.
 */
import type { Actor } from "../actor";
import { viewerOf } from "../user/viewer";
import { BadUserInputError, ConflictError, mapDatabaseError, NotFoundError } from "../../graphql/errors";
import { checkText } from "../../graphql/json-input";
import { getConversation } from "../conversation/conversation.service";
import { Transcript } from "./transcript.model";
import { TranscriptStatus } from "./transcript.enums";
import type { CreateTranscriptInput } from "./transcript.input";
import type { TranscriptJobs } from "./transcript.jobs";
import type { StoredFile } from "./transcript.storage";

function jobsOf(ctx: Actor): TranscriptJobs {
  if (!ctx.transcripts) throw new Error("transcripts need a running server (TranscriptJobs)");
  return ctx.transcripts;
}

/** The transcript if the viewer may read its conversation, else NOT_FOUND. */
export async function getTranscript(ctx: Actor, id: string): Promise<Transcript> {
  viewerOf(ctx);
  const transcript = await ctx.loaders.transcriptById.load(id);
  if (!transcript) throw new NotFoundError("Transcript");
  await getConversation(ctx, transcript.conversationId).catch((error: unknown) => {
    throw error instanceof NotFoundError ? new NotFoundError("Transcript") : error;
  });
  return transcript;
}

function checkInput(input: CreateTranscriptInput): void {
  if (input.fromSeq != null && input.toSeq != null && input.toSeq < input.fromSeq) {
    throw new BadUserInputError("toSeq must not be less than fromSeq", { field: "toSeq" });
  }
  if (input.from && input.to && input.to <= input.from) throw new BadUserInputError("to must be later than from", { field: "to" });
  if (input.requestId != null) checkText(input.requestId, "requestId");
}

/** What a request asks for, as stored on the row; a retry must ask for the same. */
function requested(input: CreateTranscriptInput) {
  return {
    conversationId: input.conversationId,
    format: input.format,
    fromSeq: input.fromSeq ?? null,
    toSeq: input.toSeq ?? null,
    fromTime: input.from ?? null,
    toTime: input.to ?? null,
    includeToolCalls: input.includeToolCalls ?? true,
    includeSystem: input.includeSystem ?? true,
  };
}

function sameRequest(row: Transcript, asked: ReturnType<typeof requested>): boolean {
  const time = (value: Date | null) => value?.getTime() ?? null;
  return (
    row.conversationId === asked.conversationId &&
    row.format === asked.format &&
    row.fromSeq === asked.fromSeq &&
    row.toSeq === asked.toSeq &&
    time(row.fromTime) === time(asked.fromTime) &&
    time(row.toTime) === time(asked.toTime) &&
    row.includeToolCalls === asked.includeToolCalls &&
    row.includeSystem === asked.includeSystem
  );
}

/** The viewer's earlier transcript with this requestId, if it asked for the same; CONFLICT if not. */
async function retried(ctx: Actor, requestId: string, asked: ReturnType<typeof requested>): Promise<Transcript | undefined> {
  const earlier = await Transcript.query(ctx.db.knex).findOne({ createdBy: viewerOf(ctx).id, requestId });
  if (earlier && !sameRequest(earlier, asked)) {
    throw new ConflictError("This requestId was already used for a transcript with other settings");
  }
  return earlier;
}

export async function createTranscript(ctx: Actor, input: CreateTranscriptInput): Promise<Transcript> {
  const viewer = viewerOf(ctx);
  checkInput(input);
  const conversation = await getConversation(ctx, input.conversationId);
  const jobs = jobsOf(ctx);
  const asked = requested(input);
  if (input.requestId != null) {
    const earlier = await retried(ctx, input.requestId, asked);
    if (earlier) return earlier;
  }
  // Messages added after this moment are not part of the export, however long it runs.
  const snapshotSeq = Math.min(asked.toSeq ?? conversation.lastSeq, conversation.lastSeq);
  let transcript: Transcript;
  try {
    transcript = await Transcript.query(ctx.db.knex).insertAndFetch({
      ...asked,
      status: TranscriptStatus.PENDING,
      requestId: input.requestId ?? null,
      createdBy: viewer.id,
      snapshotSeq,
      // The lease of this process: the export starts here at once.
      attempts: 1,
      heartbeatAt: new Date(),
    });
  } catch (error) {
    // Lost a race with a concurrent retry of the same request: answer as the retry would have been.
    const mapped = mapDatabaseError(error);
    const earlier = mapped instanceof ConflictError && input.requestId != null ? await retried(ctx, input.requestId, asked) : undefined;
    if (earlier) return earlier;
    throw error;
  }
  const messages = Math.max(0, snapshotSeq - (asked.fromSeq ?? 1) + 1);
  if (messages > ctx.config.transcripts.inlineMaxMessages) {
    jobs.runInBackground(transcript);
    return transcript;
  }
  return (await jobs.run(transcript)) ?? transcript;
}

class TranscriptNotReadyError extends ConflictError {
  constructor(status: TranscriptStatus) {
    super(`The transcript is ${status.toUpperCase()}: only READY transcripts can be downloaded`);
    this.extensions.reason = "TRANSCRIPT_NOT_READY";
  }
}

/** The transcript's file, for GET /transcripts/:id/download. */
export async function openTranscriptFile(ctx: Actor, id: string): Promise<{ transcript: Transcript; file: StoredFile }> {
  const transcript = await getTranscript(ctx, id);
  if (transcript.status !== TranscriptStatus.READY) throw new TranscriptNotReadyError(transcript.status);
  return { transcript, file: await jobsOf(ctx).storage.get(transcript.storageKey!) };
}
