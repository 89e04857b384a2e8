import type { Env } from "../env";
import { errorName, log } from "../log";
import { type Consumer, loadConsumer } from "./consumer";
import { lastFailure, notifyOperators, writeDeadLetter } from "./dead-letter";
import { webhookJobSchema } from "./job";

/** max_retries of the dead-letter consumer in wrangler.toml. */
const DEAD_LETTER_MAX_RETRIES = 100;

/**
 * The dead-letter queue's backoff, doubling from a minute up to an hour. With max_retries = 100
 * (wrangler.toml) a dead letter outlives days of outage or misconfiguration.
 */
export function deadLetterRetrySeconds(attempts: number): number {
  return Math.min(60 * 2 ** (Math.max(attempts, 1) - 1), 3_600);
}

/** Consumes the dead-letter queue: jobs whose last retry failed. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  let deps: Consumer;
  try {
    deps = await loadConsumer(env);
  } catch (error) {
    log.error("dead-letter consumer misconfigured", {
      errorClass: errorName(error),
      reason: String(error),
    });
    // The same backoff as a failed write: a flat delay would use up max_retries in hours.
    for (const message of batch.messages) {
      message.retry({ delaySeconds: deadLetterRetrySeconds(message.attempts) });
    }
    return;
  }
  await Promise.all(
    batch.messages.map(async (message) => {
      const job = webhookJobSchema.safeParse(message.body);
      try {
        const last = await lastFailure(deps.db, job.data?.eventId);
        // The job's own attempts, not the dead-letter queue's count.
        const attempts = last.attempts ?? deps.config.RETRY_DELAYS_SECONDS.length + 1;
        const input = { id: message.id, body: message.body, attempts, failure: last.failure };
        const stored = await writeDeadLetter(deps.db, deps.sealKey, input);
        message.ack();
        if (stored) await notifyOperators(deps.config, input);
      } catch (error) {
        const delaySeconds = deadLetterRetrySeconds(message.attempts);
        const last = message.attempts > DEAD_LETTER_MAX_RETRIES;
        log.error(last ? "dead letter lost after its last retry" : "dead letter write failed", {
          eventId: job.data?.eventId,
          correlationId: job.data?.correlationId,
          errorClass: errorName(error),
          attempt: message.attempts,
          delaySeconds,
        });
        message.retry({ delaySeconds });
      }
    }),
  );
}
