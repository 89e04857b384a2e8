import { eq } from "drizzle-orm";
import { auditEntry } from "../audit";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { deadLetters, webhookEvents } from "../db/schema";
import { log } from "../log";
import { seal } from "../seal";
import { JobFailure } from "./failure";
import { webhookJobSchema } from "./job";

export interface DeadLetterInput {
  /** One row per dead job: the queue message id. */
  id: string;
  /** The job as it came off the queue, valid or not. */
  body: unknown;
  attempts: number;
  failure: JobFailure;
}

/** Who the dead job was for, read from its body as far as the body allows. */
function identify(input: DeadLetterInput) {
  const parsed = webhookJobSchema.safeParse(input.body);
  if (parsed.success) {
    const { eventId, provider, correlationId } = parsed.data;
    return { eventId, provider, correlationId };
  }
  return { eventId: `unknown:${input.id}`, provider: "unknown", correlationId: "unknown" };
}

/**
 * Writes the dead letter with its payload sealed, marks the event dead-lettered and audits it,
 * in one transaction. Writing the same dead letter again (a redelivered queue message) changes
 * nothing and returns false, so that operators are alerted once.
 */
export async function writeDeadLetter(
  db: Database,
  sealKey: CryptoKey,
  input: DeadLetterInput,
): Promise<boolean> {
  const now = Date.now();
  const who = identify(input);
  const { failure } = input;

  // The row, the status and the audit entry are written together, so a row means all three.
  const [existing] = await db
    .select({ id: deadLetters.id })
    .from(deadLetters)
    .where(eq(deadLetters.id, input.id));
  if (existing) return false;

  await db.batch([
    db
      .insert(deadLetters)
      .values({
        id: input.id,
        ...who,
        attempts: input.attempts,
        errorClass: failure.errorClass,
        errorCode: failure.code,
        errorMessage: failure.message,
        payloadSealed: await seal(sealKey, JSON.stringify(input.body), input.id),
        createdAt: now,
      })
      .onConflictDoNothing(),
    db
      .update(webhookEvents)
      .set({ status: "dead_lettered", attempts: input.attempts, updatedAt: now })
      .where(eq(webhookEvents.eventId, who.eventId)),
    auditEntry(
      db,
      {
        ...who,
        action: "dead_lettered",
        attempt: input.attempts,
        errorClass: failure.errorClass,
        errorCode: failure.code,
      },
      now,
    ),
  ]);
  log.warn("job dead-lettered", {
    ...who,
    attempt: input.attempts,
    errorClass: failure.errorClass,
    errorCode: failure.code,
  });
  return true;
}

/**
 * The failure recorded by the job's last attempt, and how many attempts it had, for a job
 * the queue gave up on.
 */
export async function lastFailure(
  db: Database,
  eventId: string | undefined,
): Promise<{ failure: JobFailure; attempts: number | null }> {
  const [row] = eventId
    ? await db
        .select({
          attempts: webhookEvents.attempts,
          errorClass: webhookEvents.lastErrorClass,
          errorCode: webhookEvents.lastErrorCode,
          errorMessage: webhookEvents.lastErrorMessage,
        })
        .from(webhookEvents)
        .where(eq(webhookEvents.eventId, eventId))
    : [];
  const failure = new JobFailure(
    row?.errorClass === "permanent" ? "permanent" : "retryable",
    row?.errorCode ?? "retries_exhausted",
    row?.errorMessage ?? "the queue gave up on the job after its last retry",
  );
  return { failure, attempts: row?.attempts || null };
}

/**
 * Tells the operators about a dead letter, where ALERT_WEBHOOK_URL is set. Metadata only;
 * the body is Slack-compatible (`text`) and carries the same fields as JSON. Best effort: the
 * dead letter is already stored, so a failed alert is logged, not retried.
 */
async function alertOperators(
  config: Config,
  alert: {
    deadLetterId: string;
    eventId: string;
    provider: string;
    correlationId: string;
    errorCode: string;
    attempts: number;
  },
): Promise<void> {
  if (!config.ALERT_WEBHOOK_URL) return;
  const text =
    `Dead letter ${alert.deadLetterId}: ${alert.provider} event failed with ` +
    `${alert.errorCode} after ${alert.attempts} attempt(s)`;
  try {
    const response = await fetch(config.ALERT_WEBHOOK_URL, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text, ...alert }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) throw new Error(`alert target answered ${response.status}`);
  } catch {
    log.error("alert failed", { eventId: alert.eventId, correlationId: alert.correlationId });
  }
}

/** Alerts the operators about a dead letter just stored, from what its body tells. */
export async function notifyOperators(config: Config, input: DeadLetterInput) {
  await alertOperators(config, {
    deadLetterId: input.id,
    ...identify(input),
    errorCode: input.failure.code,
    attempts: input.attempts,
  });
}
