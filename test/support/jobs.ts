import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import type { WebhookJob } from "../../src/jobs/job";
import { ACCOUNT_ID, textMessage } from "./deliveries";

export const JOBS_QUEUE = "webhook-jobs";
export const DEAD_LETTER_QUEUE = "webhook-jobs-dlq";

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

export interface Delivered {
  body: unknown;
  attempts?: number;
  id?: string;
}

/**
 * Runs the Worker's real queue handler on a batch and reports each message's decision, with
 * the delay of every retry (the queue result alone does not carry it).
 */
export async function runQueue(queue: string, messages: Delivered[], bindings: Partial<Env> = {}) {
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
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings });
  const result = await getQueueResult(batch, ctx);

  return batch.messages.map((message, index) => {
    const retry = retries[index]?.mock.calls[0];
    return {
      id: message.id,
      acked: result.explicitAcks.includes(message.id),
      retried: result.retryMessages.some((retried) => retried.msgId === message.id),
      delaySeconds: retry?.[0]?.delaySeconds,
    };
  });
}
