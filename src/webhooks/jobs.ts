import type { WebhookJob } from "../jobs/job";
import type { DeliveredEvent } from "./delivery";

/**
 * One job per distinct event of a delivery. A delivery may repeat an event; the first copy
 * wins. Each job gets its own correlation id, which follows it through every attempt.
 */
export function buildJobs(events: DeliveredEvent[], receivedAt: number): WebhookJob[] {
  const seen = new Set<string>();
  const jobs: WebhookJob[] = [];
  for (const event of events) {
    if (seen.has(event.eventId)) continue;
    seen.add(event.eventId);
    jobs.push({
      version: 1,
      eventId: event.eventId,
      provider: "instagram",
      correlationId: crypto.randomUUID(),
      receivedAt,
      accountId: event.accountId,
      source: event.source,
      content: event.content,
    });
  }
  return jobs;
}
