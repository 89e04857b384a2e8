import type { Config } from "../config";
import type { Database } from "../db/client";
import { notifyOperators, writeDeadLetter } from "../jobs/dead-letter";
import { JobFailure } from "../jobs/failure";
import type { WebhookJob } from "../jobs/job";
import { importSealKey } from "../seal";

/** Cloudflare Queues: at most 100 messages and 256 KB per `sendBatch`. */
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 250_000;
/** A job over this size cannot be sent at all (the per-message limit is 128 KB). */
export const MAX_JOB_BYTES = 120_000;

const encoder = new TextEncoder();
/**
 * Sizes already taken: the route checks each job's size, then packing reads it again. Jobs are
 * not changed once built, so a size stays true.
 */
const sizes = new WeakMap<WebhookJob, number>();

/** A job's size as Queues counts it: UTF-8 bytes, which non-Latin text takes 2 to 4 of. */
export function jobBytes(job: WebhookJob): number {
  let size = sizes.get(job);
  if (size === undefined) {
    size = encoder.encode(JSON.stringify(job)).byteLength;
    sizes.set(job, size);
  }
  return size;
}

/** The jobs that `sendJobs` could not send, when it stopped. */
export class EnqueueError extends Error {
  override name = "EnqueueError";
  constructor(
    readonly unsent: WebhookJob[],
    override readonly cause: unknown,
  ) {
    super("sending jobs to the queue failed");
  }
}

/**
 * Sends jobs in as few batches as the queue's limits allow. A failed batch stops the send:
 * the error lists every job from that batch on, none of which were sent.
 * https://developers.cloudflare.com/queues/platform/limits/
 */
export async function sendJobs(queue: Queue<WebhookJob>, jobs: WebhookJob[]): Promise<void> {
  const batches = packBatches(jobs);
  for (const [index, batch] of batches.entries()) {
    try {
      await queue.sendBatch(batch.map((job) => ({ body: job, contentType: "json" })));
    } catch (error) {
      throw new EnqueueError(batches.slice(index).flat(), error);
    }
  }
}

function packBatches(jobs: WebhookJob[]): WebhookJob[][] {
  const batches: WebhookJob[][] = [];
  let current: WebhookJob[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const size = jobBytes(job) + 100;
    if (current.length === MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Keeps jobs too large for a queue message as dead letters, and alerts operators, so that
 * someone sees them: refusing the delivery would only have Meta redeliver it until it gives up.
 */
export async function deadLetterOversized(
  db: Database,
  config: Config,
  jobs: WebhookJob[],
  waitUntil: (task: Promise<unknown>) => void,
): Promise<void> {
  if (jobs.length === 0) return;
  const sealKey = await importSealKey(config.DATA_ENCRYPTION_KEY);
  const failure = new JobFailure(
    "permanent",
    "job_too_large",
    `the event is larger than the ${MAX_JOB_BYTES} bytes a queue message holds`,
  );
  for (const job of jobs) {
    // One id per event, so that writing it again after a lost response changes nothing.
    const input = { id: `ingest:${job.eventId}`, body: job, attempts: 0, failure };
    if (await writeDeadLetter(db, sealKey, input)) waitUntil(notifyOperators(config, input));
  }
}
