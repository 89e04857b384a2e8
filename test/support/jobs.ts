import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import type { WebhookJob } from "../../src/jobs/job";
import { importSealKey, unseal } from "../../src/seal";
import { TEST_BINDINGS } from "./bindings";
import { ACCOUNT_ID, textMessage } from "./deliveries";

export const JOBS_QUEUE = "webhook-jobs";
export const DEAD_LETTER_QUEUE = "webhook-jobs-dlq";

/**
 * The schedule wrangler.toml ships. The test bindings shorten it for the runtime-driven
 * consumer, so unit tests that assert delays pass this one explicitly.
 */
export const PRODUCTION_SCHEDULE = { RETRY_DELAYS_SECONDS: "60,300,900" } as const;

/** A job as the receiving route builds it, for a messaging item. */
export function jobFor(
  content: Record<string, unknown> = textMessage(),
  overrides: Partial<WebhookJob> = {},
): WebhookJob {
  const message = content.message as { mid?: string } | undefined;
  return {
    version: 1,
    eventId: message?.mid ?? `sha256:${crypto.randomUUID()}`,
    provider: "instagram",
    correlationId: crypto.randomUUID(),
    receivedAt: Date.now(),
    accountId: ACCOUNT_ID,
    source: "messaging",
    content,
    ...overrides,
  };
}

/** Stages an event's row as some request left it, received and updated at `at`. */
export async function insertEventRow(row: {
  eventId: string;
  correlationId: string;
  status: string;
  at: number;
  provider?: string;
}) {
  const columns = "event_id, provider, correlation_id, status, received_at, updated_at";
  await env.DB.prepare(`INSERT INTO webhook_events (${columns}) VALUES (?, ?, ?, ?, ?, ?)`)
    .bind(row.eventId, row.provider ?? "instagram", row.correlationId, row.status, row.at, row.at)
    .run();
}

/** The event's row as the receiving route leaves it once the job is sent. */
export async function claimEvent(job: WebhookJob, status = "queued") {
  const { eventId, provider, correlationId, receivedAt: at } = job;
  await insertEventRow({ eventId, provider, correlationId, status, at });
}

export interface Delivered {
  body: unknown;
  attempts?: number;
  id?: string;
}

export interface Decision {
  id: string;
  acked: boolean;
  retried: boolean;
  /** The delay the consumer asked for, read from a spy on `message.retry`. */
  delaySeconds: number | undefined;
}

/**
 * Runs the Worker's real queue handler on a batch and reports each message's decision, with
 * the delay of every retry (the queue result alone does not carry it).
 */
export async function runQueue(
  queue: string,
  messages: Delivered[],
  bindings: Partial<Env> = {},
): Promise<Decision[]> {
  const batch = createMessageBatch(
    queue,
    messages.map((message, index) => ({
      id: message.id ?? `msg-${crypto.randomUUID()}-${index}`,
      timestamp: new Date(),
      attempts: message.attempts ?? 1,
      body: message.body,
    })),
  );
  const retries = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const retryAll = vi.spyOn(batch, "retryAll");
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings });
  const result = await getQueueResult(batch, ctx);

  return batch.messages.map((message, index) => {
    const retry = retries[index]?.mock.calls[0] ?? retryAll.mock.calls[0];
    return {
      id: message.id,
      acked: result.ackAll || result.explicitAcks.includes(message.id),
      retried:
        result.retryBatch.retry ||
        result.retryMessages.some((retried) => retried.msgId === message.id),
      delaySeconds: retry?.[0]?.delaySeconds,
    };
  });
}

/** Runs one job through the consumer as the given attempt, with the production schedule. */
export async function attemptJob(job: unknown, attempts = 1, bindings: Partial<Env> = {}) {
  const [decision] = await runQueue(JOBS_QUEUE, [{ body: job, attempts }], {
    ...PRODUCTION_SCHEDULE,
    ...bindings,
  });
  if (!decision) throw new Error("the batch had no decision");
  return decision;
}

/**
 * The D1 binding with `batch()` failing, as during an outage; single statements still work,
 * so the test can read what was (not) written.
 */
export function d1WithFailingBatch(): D1Database {
  return new Proxy(env.DB, {
    get(target, property) {
      if (property === "batch") {
        return async () => {
          throw new Error("D1_ERROR: simulated outage");
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export interface EventRow {
  status: string;
  attempts: number;
  last_error_class: string | null;
  last_error_code: string | null;
  last_error_message: string | null;
}

const EVENT_COLUMNS = "status, attempts, last_error_class, last_error_code, last_error_message";

export function eventRow(eventId: string) {
  return env.DB.prepare(`SELECT ${EVENT_COLUMNS} FROM webhook_events WHERE event_id = ?`)
    .bind(eventId)
    .first<EventRow>();
}

export interface AuditRow {
  event_id: string;
  provider: string;
  correlation_id: string;
  action: string;
  attempt: number | null;
  reason: string | null;
  error_class: string | null;
  error_code: string | null;
}

/** The event's audit entries, oldest first, without ids and times. */
const AUDIT_COLUMNS =
  "event_id, provider, correlation_id, action, attempt, reason, error_class, error_code";

export async function auditTrail(eventId: string): Promise<AuditRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT ${AUDIT_COLUMNS} FROM audit_entries WHERE event_id = ? ORDER BY id`,
  )
    .bind(eventId)
    .all<AuditRow>();
  return results;
}

export interface DeadLetterRow {
  id: string;
  event_id: string;
  provider: string;
  correlation_id: string;
  attempts: number;
  error_class: string;
  error_code: string;
  error_message: string;
  payload_sealed: string;
  status: string;
}

const DEAD_LETTER_COLUMNS = [
  "id, event_id, provider, correlation_id, attempts",
  "error_class, error_code, error_message, payload_sealed, status",
].join(", ");

export async function deadLettersOf(eventId: string): Promise<DeadLetterRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters WHERE event_id = ?`,
  )
    .bind(eventId)
    .all<DeadLetterRow>();
  return results;
}

/** Opens a dead letter's payload as an operator would: the row id is the sealing context. */
export async function openDeadLetter(row: DeadLetterRow): Promise<unknown> {
  const key = await importSealKey(TEST_BINDINGS.DATA_ENCRYPTION_KEY);
  return JSON.parse(await unseal(key, row.payload_sealed, row.id));
}

/** Counts rows in a table that belong to the event, for "nothing was written" checks. */
export async function countRows(table: "messages" | "replies" | "dead_letters", eventId: string) {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE event_id = ?`)
    .bind(eventId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
