import type { WebhookJob } from "../jobs/job";

/** Cloudflare Queues: at most 100 messages and 256 KB per `sendBatch`. */
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 250_000;
/** A job over this size cannot be sent at all (the per-message limit is 128 KB). */
export const MAX_JOB_BYTES = 120_000;

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
    const size = JSON.stringify(job).length + 100;
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
