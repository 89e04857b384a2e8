import { and, eq } from "drizzle-orm";
import { HTTPException } from "hono/http-exception";
import { auditEntry } from "../audit";
import type { Database } from "../db/client";
import { type DeadLetter, deadLetters, webhookEvents } from "../db/schema";
import { type WebhookJob, webhookJobSchema } from "../jobs/job";
import { errorName, log } from "../log";
import { unseal } from "../seal";
import { EnqueueError, jobBytes, MAX_JOB_BYTES, sendJobs } from "../webhooks/enqueue";

export interface Replayer {
  db: Database;
  sealKey: CryptoKey;
  queue: Queue<WebhookJob>;
}

export type ReplayOutcome =
  | { outcome: "replayed"; correlationId: string }
  /** Nothing sent: another request replayed it first, or it holds no job a queue can take. */
  | { outcome: "skipped"; reason: "already_replayed" | "invalid_job" | "too_large" }
  /** Nothing sent and the dead letter stays open: try again later, or fix the key. */
  | { outcome: "failed"; reason: "queue_unavailable" | "unreadable" };

/** In a bulk replay, an unexpected error fails one dead letter, not the whole request. */
type BulkOutcome = ReplayOutcome | { outcome: "failed"; reason: "internal" };

/**
 * Replays one dead letter as a fresh job: same event id, so the reply ledger still stops a
 * second reply, and a new correlation id, so the replay's attempts read apart from the dead
 * job's. The dead letter is claimed in D1 before the send, so that of two concurrent replays
 * only one sends; a failed send gives the claim back.
 */
export async function replayDeadLetter(r: Replayer, row: DeadLetter): Promise<ReplayOutcome> {
  if (row.status !== "open") return { outcome: "skipped", reason: "already_replayed" };

  // Checked before the claim, so that a hopeless dead letter is never marked replayed.
  const opened = await openJob(r.sealKey, row);
  if (opened === "unreadable") return { outcome: "failed", reason: "unreadable" };
  if (opened === "invalid_job") return { outcome: "skipped", reason: "invalid_job" };
  const job: WebhookJob = { ...opened, correlationId: crypto.randomUUID() };
  if (jobBytes(job) > MAX_JOB_BYTES) {
    return { outcome: "skipped", reason: "too_large" };
  }

  const now = Date.now();
  const [claimed] = await r.db
    .update(deadLetters)
    .set({ status: "replayed", replayedAt: now })
    .where(and(eq(deadLetters.id, row.id), eq(deadLetters.status, "open")))
    .returning({ id: deadLetters.id });
  if (!claimed) return { outcome: "skipped", reason: "already_replayed" };

  const fields = { eventId: job.eventId, correlationId: job.correlationId, provider: job.provider };
  try {
    // Marked queued before the send: once sent, the consumer may finish the job at any moment,
    // and a later write would undo the status it leaves.
    await r.db
      .update(webhookEvents)
      .set({ status: "queued", correlationId: job.correlationId, updatedAt: now })
      .where(eq(webhookEvents.eventId, job.eventId));
    await sendJobs(r.queue, [job]);
  } catch (error) {
    await giveBack(r.db, row, opened, job, now);
    if (!(error instanceof EnqueueError)) throw error;
    log.error("replay failed", { ...fields, errorClass: errorName(error.cause) });
    return { outcome: "failed", reason: "queue_unavailable" };
  }

  await auditEntry(r.db, { ...fields, action: "replayed", reason: `dead_letter:${row.id}` }).catch(
    (error) => log.error("replay audit failed", { ...fields, errorClass: errorName(error) }),
  );
  log.info("dead letter replayed", fields);
  return { outcome: "replayed", correlationId: job.correlationId };
}

/**
 * Replays dead letters one after another, each on its own: one that fails stays open and the
 * rest go on. The counts say what an operator must look at (`failed`) and what needs no
 * replay or cannot have one (`skipped`); `results` names each dead letter's outcome.
 */
export async function replayEach(r: Replayer, rows: DeadLetter[]) {
  const results: Array<{ id: string; eventId: string } & BulkOutcome> = [];
  for (const row of rows) {
    const result = await replayDeadLetter(r, row).catch((error): BulkOutcome => {
      log.error("replay failed", { eventId: row.eventId, errorClass: errorName(error) });
      return { outcome: "failed", reason: "internal" };
    });
    results.push({ id: row.id, eventId: row.eventId, ...result });
  }
  const count = (outcome: BulkOutcome["outcome"]) =>
    results.filter((result) => result.outcome === outcome).length;
  return {
    matched: rows.length,
    replayed: count("replayed"),
    skipped: count("skipped"),
    failed: count("failed"),
    results,
  };
}

/** The dead letter's payload as it came off the queue, or UNREADABLE if the key cannot open it. */
export async function openPayload(key: CryptoKey, row: DeadLetter): Promise<unknown> {
  let json: string;
  try {
    json = await unseal(key, row.payloadSealed, row.id);
  } catch {
    return UNREADABLE;
  }
  try {
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export const UNREADABLE = Symbol("unreadable");

/** The dead job, or why there is none: a seal the key cannot open, or a body that is no job. */
async function openJob(key: CryptoKey, row: DeadLetter) {
  const payload = await openPayload(key, row);
  if (payload === UNREADABLE) return "unreadable" as const;
  const parsed = webhookJobSchema.safeParse(payload);
  return parsed.success ? parsed.data : ("invalid_job" as const);
}

/** Undoes the claim and the event's move to queued, matching on what this replay wrote. */
async function giveBack(
  db: Database,
  row: DeadLetter,
  dead: WebhookJob,
  job: WebhookJob,
  at: number,
) {
  try {
    await db.batch([
      db
        .update(deadLetters)
        .set({ status: "open", replayedAt: null })
        .where(
          and(
            eq(deadLetters.id, row.id),
            eq(deadLetters.status, "replayed"),
            eq(deadLetters.replayedAt, at),
          ),
        ),
      db
        .update(webhookEvents)
        .set({ status: "dead_lettered", correlationId: dead.correlationId, updatedAt: Date.now() })
        .where(
          and(
            eq(webhookEvents.eventId, job.eventId),
            eq(webhookEvents.correlationId, job.correlationId),
          ),
        ),
    ]);
  } catch (error) {
    log.error("replay claim release failed", {
      eventId: job.eventId,
      correlationId: job.correlationId,
      errorClass: errorName(error),
    });
    throw new HTTPException(500, {
      message: `the job was not sent, but dead letter ${row.id} could not be reopened`,
    });
  }
}
