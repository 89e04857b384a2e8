import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import type { WebhookJob } from "../src/jobs/job";
import { TEST_BINDINGS } from "./support/bindings";
import { textMessage } from "./support/deliveries";
import {
  ALERT_URL,
  type GraphStandIn,
  graphError,
  installGraphStandIn,
} from "./support/graph-stand-in";
import {
  attemptJob,
  auditTrail,
  claimEvent,
  DEAD_LETTER_QUEUE,
  type Decision,
  d1WithFailingBatch,
  deadLettersOf,
  eventRow,
  jobFor,
  openDeadLetter,
  PRODUCTION_SCHEDULE,
  runQueue,
} from "./support/jobs";

const SENDER = "17841400000000911";
const TEXT = "results of my blood test attached";
const ALERTS = { ALERT_WEBHOOK_URL: ALERT_URL };

let graph: GraphStandIn;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

/**
 * A job as the dead-letter queue receives it: claimed, then failed on all four attempts
 * through the real job consumer, the last failure being a Graph code 2.
 */
async function exhaustedJob(): Promise<WebhookJob> {
  const job = jobFor(textMessage({ sender: SENDER, text: TEXT }));
  await claimEvent(job);
  graph.answerFor(SENDER, () => graphError(500, 2, { message: "(#2) Service temporarily down" }));
  for (const attempt of [1, 2, 3, 4]) await attemptJob(job, attempt);
  // From here on, count only what the dead-letter consumer does.
  graph.calls.length = 0;
  return job;
}

/** Runs the real queue handler on one dead-letter queue message. */
async function deadLetter(
  body: unknown,
  options: { id?: string; attempts?: number } = {},
  bindings: Partial<Env> = {},
): Promise<Decision> {
  const id = options.id ?? `dlq-${crypto.randomUUID()}`;
  const [decision] = await runQueue(DEAD_LETTER_QUEUE, [{ body, id, attempts: options.attempts }], {
    ...PRODUCTION_SCHEDULE,
    ...bindings,
  });
  if (!decision) throw new Error("the batch had no decision");
  return decision;
}

describe("dead-letter consumer", () => {
  it("stores the job sealed, with the last retry's failure, and acknowledges", async () => {
    const job = await exhaustedJob();

    const decision = await deadLetter(job, { id: "dlq-stored" });

    expect(decision).toMatchObject({ acked: true, retried: false });
    const [row, ...others] = await deadLettersOf(job.eventId);
    expect(others).toHaveLength(0);
    expect(row).toMatchObject({
      id: "dlq-stored",
      event_id: job.eventId,
      provider: "instagram",
      correlation_id: job.correlationId,
      attempts: 4,
      error_class: "retryable",
      error_code: "graph_2",
      error_message: "Send API answered 500: (#2) Service temporarily down",
      status: "open",
    });
    expect(await openDeadLetter(row as NonNullable<typeof row>)).toEqual(job);
    for (const secret of [SENDER, TEXT, TEST_BINDINGS.INSTAGRAM_ACCESS_TOKEN]) {
      expect(JSON.stringify(row)).not.toContain(secret);
    }
    expect(graph.calls).toHaveLength(0);
  });

  it("marks the event dead-lettered and ends its audit trail there", async () => {
    const job = await exhaustedJob();

    await deadLetter(job);

    expect(await eventRow(job.eventId)).toMatchObject({ status: "dead_lettered", attempts: 4 });
    const trail = await auditTrail(job.eventId);
    expect(trail.map((entry) => [entry.action, entry.attempt])).toEqual([
      ["retry_scheduled", 1],
      ["retry_scheduled", 2],
      ["retry_scheduled", 3],
      ["retries_exhausted", 4],
      ["dead_lettered", 4],
    ]);
    expect(trail.at(-1)).toMatchObject({ error_class: "retryable", error_code: "graph_2" });
  });

  it("alerts operators with metadata only when ALERT_WEBHOOK_URL is set", async () => {
    const job = await exhaustedJob();

    await deadLetter(job, { id: "dlq-alerted" }, ALERTS);

    expect(graph.alerts).toEqual([
      {
        text: "Dead letter dlq-alerted: instagram event failed with graph_2 after 4 attempt(s)",
        deadLetterId: "dlq-alerted",
        eventId: job.eventId,
        provider: "instagram",
        correlationId: job.correlationId,
        errorCode: "graph_2",
        attempts: 4,
      },
    ]);
    const alert = JSON.stringify(graph.alerts);
    for (const secret of [SENDER, TEXT, TEST_BINDINGS.INSTAGRAM_ACCESS_TOKEN]) {
      expect(alert).not.toContain(secret);
    }
  });

  it("sends no alert and makes no request when ALERT_WEBHOOK_URL is unset", async () => {
    const job = await exhaustedJob();
    const fetches = () => graph.calls.length + graph.alerts.length;

    const decision = await deadLetter(job);

    expect(decision.acked).toBe(true);
    expect(fetches()).toBe(0);
  });

  it("keeps the dead letter acknowledged when the alert endpoint fails", async () => {
    const job = await exhaustedJob();
    graph.failAlerts(500);

    const decision = await deadLetter(job, { id: "dlq-alert-down" }, ALERTS);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.alerts).toHaveLength(1);
    expect(await deadLettersOf(job.eventId)).toHaveLength(1);
  });

  it("backs off, never acknowledging, while the row cannot be written", async () => {
    const job = await exhaustedJob();
    const broken = { DB: d1WithFailingBatch(), ...ALERTS };

    const delays: Array<number | undefined> = [];
    for (const attempts of [1, 2, 3, 7, 50]) {
      const decision = await deadLetter(job, { id: "dlq-outage", attempts }, broken);
      expect(decision).toMatchObject({ acked: false, retried: true });
      delays.push(decision.delaySeconds);
    }

    expect(delays).toEqual([60, 120, 240, 3_600, 3_600]);
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);
    expect(await eventRow(job.eventId)).toMatchObject({ status: "retrying" });
    expect(graph.alerts).toHaveLength(0);

    // Once D1 is back, the next delivery stores it.
    const recovered = await deadLetter(job, { id: "dlq-outage", attempts: 51 }, ALERTS);
    expect(recovered).toMatchObject({ acked: true, retried: false });
    expect(await deadLettersOf(job.eventId)).toHaveLength(1);
    expect(graph.alerts).toHaveLength(1);
  });

  it("backs off the same way while the configuration is broken", async () => {
    const job = await exhaustedJob();
    const broken = { DATA_ENCRYPTION_KEY: "" };

    const first = await deadLetter(job, { id: "dlq-config", attempts: 1 }, broken);
    const late = await deadLetter(job, { id: "dlq-config", attempts: 20 }, broken);

    expect(first).toMatchObject({ acked: false, retried: true, delaySeconds: 60 });
    expect(late).toMatchObject({ acked: false, retried: true, delaySeconds: 3_600 });
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);
  });

  it("writes a redelivered dead letter once: one row, one audit entry, one alert", async () => {
    const job = await exhaustedJob();

    const first = await deadLetter(job, { id: "dlq-twice" }, ALERTS);
    const again = await deadLetter(job, { id: "dlq-twice", attempts: 2 }, ALERTS);

    expect([first.acked, again.acked]).toEqual([true, true]);
    expect(await deadLettersOf(job.eventId)).toHaveLength(1);
    const trail = await auditTrail(job.eventId);
    expect(trail.filter((entry) => entry.action === "dead_lettered")).toHaveLength(1);
    expect(graph.alerts).toHaveLength(1);
  });

  it("stores a body that is not a job under an unknown event, still sealed", async () => {
    const body = { hello: "not a job", sender: SENDER };

    const decision = await deadLetter(body, { id: "dlq-garbage" });

    expect(decision.acked).toBe(true);
    const [row] = await deadLettersOf("unknown:dlq-garbage");
    expect(row).toMatchObject({ provider: "unknown", correlation_id: "unknown", attempts: 4 });
    expect(row?.payload_sealed).not.toContain(SENDER);
    expect(await openDeadLetter(row as NonNullable<typeof row>)).toEqual(body);
  });

  it("records a generic failure when the job's attempts left no failure behind", async () => {
    // E.g. every attempt failed before it could record anything (D1 down throughout).
    const job = jobFor(textMessage({ sender: SENDER }));
    await claimEvent(job);

    await deadLetter(job);

    const [row] = await deadLettersOf(job.eventId);
    expect(row).toMatchObject({
      attempts: 4,
      error_class: "retryable",
      error_code: "retries_exhausted",
    });
    expect(await eventRow(job.eventId)).toMatchObject({ status: "dead_lettered" });
  });
});
