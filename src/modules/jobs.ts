/** How a background job (a sweep, an export) tells whoever watches (the metrics) how a run went. */
export type JobOutcome = "ok" | "failed";
export type JobObserver = (job: string, outcome: JobOutcome, seconds: number) => void;
