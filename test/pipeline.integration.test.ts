import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { delivery, signature, textMessage, WEBHOOK_URL } from "./support/deliveries";
import { type GraphStandIn, graphError, installGraphStandIn } from "./support/graph-stand-in";
import { auditTrail, deadLettersOf, eventRow, openDeadLetter } from "./support/jobs";

/**
 * The Worker as the runtime runs it: its fetch entry point with the real JOBS queue, whose
 * consumer and dead-letter consumer the runtime invokes on its own (vitest.config.ts sets
 * maxBatchTimeout 0; the test bindings set no delay between attempts).
 */
// `exports` is typed from wrangler's generated GlobalProps, which this project does not use.
const worker = (exports as unknown as { default: Fetcher }).default;

async function postSigned(body: unknown): Promise<Response> {
  const raw = JSON.stringify(body);
  return worker.fetch(WEBHOOK_URL, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hub-signature-256": await signature(raw) },
    body: raw,
  });
}

/** Polls until `read` gives a value `done` accepts; the queue works on its own schedule. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

let graph: GraphStandIn;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

describe("a delivery through the real queue", () => {
  it("is stored, answered exactly once and marked processed", async () => {
    const sender = "17841400000000042";
    const message = textMessage({ mid: "mid-e2e-ok", sender, text: "Can I book a visit?" });

    const response = await postSigned(delivery([message]));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: 1, duplicates: 0 });

    const event = await until(
      () => eventRow("mid-e2e-ok"),
      (row) => row?.status === "processed",
    );
    expect(event).toMatchObject({ status: "processed", attempts: 1 });
    // Give a stray second delivery of the job time to show itself before counting replies.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(graph.callsTo(sender)).toHaveLength(1);
    expect(graph.callsTo(sender)[0]?.url).toBe("https://graph.test/v26.0/me/messages");
    expect((await auditTrail("mid-e2e-ok")).map((entry) => entry.action)).toEqual(["processed"]);
  });

  it("tries a failing recipient 4 times, then stores the job as a dead letter", async () => {
    const sender = "17841400000000500";
    graph.answerFor(sender, () => graphError(500, 2, { message: "(#2) Service unavailable" }));
    const message = textMessage({ mid: "mid-e2e-dead", sender });

    const response = await postSigned(delivery([message]));
    expect(response.status).toBe(200);

    const [row] = await until(
      () => deadLettersOf("mid-e2e-dead"),
      (rows) => rows.length > 0,
    );
    expect(row).toMatchObject({
      event_id: "mid-e2e-dead",
      attempts: 4,
      error_class: "retryable",
      error_code: "graph_2",
      status: "open",
    });
    expect(await openDeadLetter(row as NonNullable<typeof row>)).toMatchObject({
      eventId: "mid-e2e-dead",
      content: message,
    });
    expect(graph.callsTo(sender)).toHaveLength(4);
    expect(await eventRow("mid-e2e-dead")).toMatchObject({ status: "dead_lettered" });
    expect((await auditTrail("mid-e2e-dead")).map((entry) => entry.action)).toEqual([
      "retry_scheduled",
      "retry_scheduled",
      "retry_scheduled",
      "retries_exhausted",
      "dead_lettered",
    ]);
  });
});
