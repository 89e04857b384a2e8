import { eq } from "drizzle-orm";
import { auditEntry } from "../audit";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { webhookEvents } from "../db/schema";
import type { Env } from "../env";
import { errorName, log } from "../log";
import { type Consumer, loadConsumer } from "./consumer";
import { notifyOperators, writeDeadLetter } from "./dead-letter";
import { classifyFailure, type JobFailure } from "./failure";
import { type WebhookJob, webhookJobSchema } from "./job";
import { processJob } from "./process";
import { hasRetriesLeft, retryDelaySeconds } from "./retry";

/** Used when the configuration itself is broken: keep the jobs and look again later. */
const CONFIG_RETRY_SECONDS = 300;

/**
 * Consumes a batch of jobs. Every message gets its own explicit decision and the handler never
 * throws: a throw would retry the whole batch, acknowledged messages included.
 */
export async function consumeJobs(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  let deps: Consumer;
  try {
    deps = await loadConsumer(env);
  } catch (error) {
    log.error("job consumer misconfigured", {
      errorClass: errorName(error),
      reason: String(error),
    });
    batch.retryAll({ delaySeconds: CONFIG_RETRY_SECONDS });
    return;
  }
  // Copies of one job in a batch run one after another, so that a copy finds the reply the
  // first one recorded instead of racing it to the Send API.
  await Promise.all(
    copiesByEvent(batch.messages).map(async (copies) => {
      for (const message of copies) await decide(message, deps);
    }),
  );
}

function copiesByEvent(messages: readonly Message<unknown>[]): Message<unknown>[][] {
  const groups = new Map<string, Message<unknown>[]>();
  for (const message of messages) {
    const eventId = (message.body as { eventId?: unknown } | null)?.eventId;
    const key = typeof eventId === "string" ? `event:${eventId}` : `message:${message.id}`;
    groups.set(key, [...(groups.get(key) ?? []), message]);
  }
  return [...groups.values()];
}

async function decide(message: Message<unknown>, deps: Consumer): Promise<void> {
  const attempt = message.attempts;
  const parsed = webhookJobSchema.safeParse(message.body);
  if (!parsed.success) {
    await deadLetterNow(message, deps, classifyFailure(parsed.error));
    return;
  }

  const job = parsed.data;
  const fields = {
    eventId: job.eventId,
    correlationId: job.correlationId,
    provider: job.provider,
    attempt,
  };
  try {
    const started = Date.now();
    const outcome = await processJob(job, { ...deps, attempt });
    message.ack();
    log.info("job done", {
      ...fields,
      status: outcome.status,
      reason: outcome.status === "skipped" ? outcome.reason : undefined,
      durationMs: Date.now() - started,
    });
  } catch (error) {
    const failure = classifyFailure(error);
    if (failure.errorClass === "permanent") {
      await deadLetterNow(message, deps, failure);
      return;
    }
    const delaySeconds = retryDelaySeconds(
      attempt,
      deps.config.RETRY_DELAYS_SECONDS,
      failure.retryAfterSeconds,
    );
    await recordRetry(deps.db, job, attempt, failure, deps.config).catch(() =>
      log.error("recording a retry failed", fields),
    );
    message.retry({ delaySeconds });
    // After the last attempt the queue hands the job to the dead-letter queue instead.
    const final = !hasRetriesLeft(attempt, deps.config.RETRY_DELAYS_SECONDS);
    log.warn(final ? "job retries exhausted" : "job retry scheduled", {
      ...fields,
      delaySeconds,
      errorClass: failure.errorClass,
      errorCode: failure.code,
    });
  }
}

/** A permanent failure goes to the dead letter at once; only if that write fails, retry. */
async function deadLetterNow(message: Message<unknown>, deps: Consumer, failure: JobFailure) {
  const input = { id: message.id, body: message.body, attempts: message.attempts, failure };
  let stored: boolean;
  try {
    stored = await writeDeadLetter(deps.db, deps.sealKey, input);
    message.ack();
  } catch (error) {
    log.error("dead letter write failed", {
      errorClass: errorName(error),
      errorCode: failure.code,
    });
    message.retry({
      delaySeconds: retryDelaySeconds(message.attempts, deps.config.RETRY_DELAYS_SECONDS),
    });
    return;
  }
  if (stored) await notifyOperators(deps.config, input);
}

/** Keeps the failure on the event (the dead-letter consumer reads it) and audits the retry. */
async function recordRetry(
  db: Database,
  job: WebhookJob,
  attempt: number,
  failure: JobFailure,
  config: Config,
) {
  const now = Date.now();
  const final = !hasRetriesLeft(attempt, config.RETRY_DELAYS_SECONDS);
  await db.batch([
    db
      .update(webhookEvents)
      .set({
        status: "retrying",
        attempts: attempt,
        lastErrorClass: failure.errorClass,
        lastErrorCode: failure.code,
        lastErrorMessage: failure.message,
        updatedAt: now,
      })
      .where(eq(webhookEvents.eventId, job.eventId)),
    auditEntry(
      db,
      {
        eventId: job.eventId,
        provider: job.provider,
        correlationId: job.correlationId,
        action: final ? "retries_exhausted" : "retry_scheduled",
        attempt,
        errorClass: failure.errorClass,
        errorCode: failure.code,
      },
      now,
    ),
  ]);
}
