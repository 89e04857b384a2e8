import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WebhookJob } from "../src/jobs/job";
import { delivery, postWebhook, recordingQueue, textMessage } from "./support/deliveries";
import { slowQueue } from "./support/faults";
import { installGraphStandIn } from "./support/graph-stand-in";
import { countRows, JOBS_QUEUE, PRODUCTION_SCHEDULE, runQueue } from "./support/jobs";

type Item = ReturnType<typeof textMessage>;

/** How long the queue takes to accept a batch: long enough for the requests to overlap. */
const ENQUEUE_MS = 40;

function items(prefix: string, count: number): Item[] {
  return Array.from({ length: count }, (_, i) => textMessage({ mid: `${prefix}-${i}` }));
}

/** How many jobs the queue got for each event. */
function jobsPerEvent(sent: WebhookJob[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of sent) counts.set(job.eventId, (counts.get(job.eventId) ?? 0) + 1);
  return counts;
}

function expectOneJobEach(sent: WebhookJob[], ids: string[]) {
  const counts = jobsPerEvent(sent);
  expect([...counts.keys()].sort()).toEqual([...ids].sort());
  expect([...counts.values()].every((count) => count === 1)).toBe(true);
}

/** Posts again, one at a time, each delivery that was asked to come back, until none is. */
async function redeliverRefused(
  bodies: unknown[],
  statuses: number[],
  queue: Queue<WebhookJob>,
  rounds = 5,
) {
  let pending = bodies.filter((_, i) => statuses[i] !== 200);
  for (let round = 0; round < rounds && pending.length > 0; round++) {
    const refused: unknown[] = [];
    for (const body of pending) {
      const response = await postWebhook(body, { bindings: { JOBS: queue } });
      if (response.status !== 200) refused.push(body);
    }
    pending = refused;
  }
  return pending;
}

describe("the same delivery arriving many times at once", () => {
  it("enqueues one job per event when 20 copies arrive together", async () => {
    const messages = items("mid-burst", 3);
    const ids = messages.map((message) => message.message.mid);
    const body = delivery(messages);
    const { queue: recording, sent } = recordingQueue();
    const queue = slowQueue(recording, ENQUEUE_MS);

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => postWebhook(body, { bindings: { JOBS: queue } })),
    );
    const statuses = responses.map((response) => response.status);

    // 503 means another copy holds the claim and has not yet confirmed its job.
    expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    expectOneJobEach(sent, ids);

    const refused = statuses.filter((status) => status === 503).length;
    for (let i = 0; i < refused; i++) {
      const again = await postWebhook(body, { bindings: { JOBS: queue } });
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual({ received: 0, duplicates: 3 });
    }
    expectOneJobEach(sent, ids);
  });

  it("enqueues one job per event when overlapping deliveries arrive together", async () => {
    const messages = items("mid-overlap", 6);
    const ids = messages.map((message) => message.message.mid);
    // Each delivery carries three neighbouring events, so every event is in three deliveries.
    const bodies = Array.from({ length: 12 }, (_, i) =>
      delivery([0, 1, 2].map((offset) => messages[(i + offset) % messages.length] as Item)),
    );
    const { queue: recording, sent } = recordingQueue();
    const queue = slowQueue(recording, ENQUEUE_MS);

    const responses = await Promise.all(
      bodies.map((body) => postWebhook(body, { bindings: { JOBS: queue } })),
    );
    const statuses = responses.map((response) => response.status);

    expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    expect(statuses).toContain(503);
    expect(await redeliverRefused(bodies, statuses, queue)).toHaveLength(0);
    expectOneJobEach(sent, ids);
  });

  it("loses and repeats nothing when the queue fails some sends during the burst", async () => {
    const messages = items("mid-burst-flaky", 4);
    const ids = messages.map((message) => message.message.mid);
    const body = delivery(messages);
    const { queue: healthy, sent } = recordingQueue();
    let failures = 3;
    const flaky = {
      sendBatch: (batch: Iterable<MessageSendRequest<WebhookJob>>) => {
        if (failures > 0) {
          failures -= 1;
          return Promise.reject(new Error("Queue sendBatch failed: simulated outage"));
        }
        return healthy.sendBatch(batch);
      },
    } as unknown as Queue<WebhookJob>;
    const slow = slowQueue(flaky, ENQUEUE_MS);

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => postWebhook(body, { bindings: { JOBS: slow } })),
    );
    const statuses = responses.map((response) => response.status);

    expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    const bodies = statuses.map(() => body);
    expect(await redeliverRefused(bodies, statuses, slow)).toHaveLength(0);
    expect(failures).toBe(0);
    expectOneJobEach(sent, ids);
  });
});

describe("copies of one job consumed at once", () => {
  let graph: ReturnType<typeof installGraphStandIn>;
  beforeEach(() => {
    graph = installGraphStandIn();
  });
  afterEach(() => graph.restore());

  it("replies once when two invocations run the same job at the same time", async () => {
    // Queues delivers at least once, and a claim taken over after its lease makes a second
    // job for the event: either way two invocations can hold the same event at once.
    const { queue, sent } = recordingQueue();
    await postWebhook(delivery([textMessage({ mid: "mid-two-runs" })]), {
      bindings: { JOBS: queue },
    });
    const [job] = sent;

    const runs = await Promise.all(
      [1, 2].map(() => runQueue(JOBS_QUEUE, [{ body: job }], PRODUCTION_SCHEDULE)),
    );
    const decisions = runs.flat();

    expect(graph.calls).toHaveLength(1);
    expect(await countRows("replies", "mid-two-runs")).toBe(1);
    // The run that lost the race is not acknowledged blindly: it comes back to check.
    expect(decisions.filter((decision) => decision.acked)).toHaveLength(1);
    expect(decisions.filter((decision) => decision.retried)).toHaveLength(1);

    const [again] = await runQueue(JOBS_QUEUE, [{ body: job, attempts: 2 }]);
    expect(again).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
  });
});
