/**
 * `npm run cli -- export`: a conversation straight into a local file, through the same pipeline as the
 * API's transcripts, without a transcript row (an operator's copy, not a user's export). The file appears
 * only when complete.
 */
import type { Knex } from "knex";
import type { EncryptionConfig } from "../../config";
import { Conversation } from "../conversation/conversation.model";
import { writeFileAtomically } from "./disk.storage";
import { exportConversation, exportSpec, type ExportProgress, type ExportResult } from "./transcript.export";
import type { TranscriptFormat } from "./transcript.enums";

export interface FileExportOptions {
  format: TranscriptFormat;
  fromSeq?: number;
  toSeq?: number;
  from?: Date;
  to?: Date;
  includeToolCalls?: boolean;
  includeSystem?: boolean;
}

/** Exports the conversation into `file`; `onProgress` gets the seqs covered so far out of the range. */
export async function exportToFile(
  knex: Knex,
  encryption: EncryptionConfig | undefined,
  conversationId: string,
  options: FileExportOptions,
  file: string,
  onProgress?: (progress: { done: number; total: number }) => void,
): Promise<ExportResult> {
  const conversation = await Conversation.query(knex).findById(conversationId);
  if (!conversation) throw new Error(`No conversation ${conversationId}`);
  const fromSeq = options.fromSeq ?? 1;
  const toSeq = Math.min(options.toSeq ?? conversation.lastSeq, conversation.lastSeq);
  const spec = exportSpec(conversation, {
    id: null,
    format: options.format,
    createdAt: new Date(),
    createdBy: null,
    fromSeq,
    toSeq,
    from: options.from ?? null,
    to: options.to ?? null,
    includeToolCalls: options.includeToolCalls ?? true,
    includeSystem: options.includeSystem ?? true,
  });
  const total = Math.max(0, toSeq - fromSeq + 1);
  const report = (progress: ExportProgress) => onProgress?.({ done: Math.min(total, Math.max(0, progress.seq - fromSeq + 1)), total });
  return exportConversation(knex, encryption, spec, (body) => writeFileAtomically(file, body), report);
}
