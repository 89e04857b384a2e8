import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import { REPLY_LEASE_MS } from "../src/jobs/reply-ledger";
import { CLAIM_LEASE_MS } from "../src/webhooks/claim";
import { delivery, postWebhook, recordingQueue, textMessage } from "./support/deliveries";
import {
  type D1Fault,
  type D1FaultPlan,
  failWritesTo,
  faultyD1,
  limitedQueue,
  unavailableD1,
  writesTo,
} from "./support/faults";
import {
  ALERT_URL,
  type GraphAnswer,
  graphError,
  installGraphStandIn,
} from "./support/graph-stand-in";
import {
  claimEvent,
  DEAD_LETTER_QUEUE,
  type DeadLetterRow,
  type Delivered,
  deadLettersOf,
  insertEventRow,
  JOBS_QUEUE,
  jobFor,
  openDeadLetter,
  PRODUCTION_SCHEDULE,
  runQueue,
} from "./support/jobs";

let graph: ReturnType<typeof installGraphStandIn>;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

async function eventRows(ids: string[]) {
  const marks = ids.map(() => "?").join(",");
  const { results } = await env.DB.prepare(
    `SELECT event_id, status, last_error_code FROM webhook_events WHERE event_id IN (${marks})`,
  )
    .bind(...ids)
    .all<{ event_id: string; status: string; last_error_code: string | null }>();
  return results;
}

async function eventStatus(id: string) {
  const [row] = await eventRows([id]);
  return row?.status;
}

async function ledgerRows(eventId: string) {
  const { results } = await env.DB.prepare("SELECT * FROM replies WHERE event_id = ?")
    .bind(eventId)
    .all<{ status: string; provider_message_id: string | null }>();
  return results;
}

/** A plan that fails the batch recording the sent reply: the event's last writes. */
function finalWrite(fault: D1Fault): D1FaultPlan {
  return (call) => (call.kind === "batch" && writesTo(call, "replies") ? fault : undefined);
}

/** Moves a reply's claim back past its lease, as if its run had died. */
async function ageReplyClaim(eventId: string) {
  await env.DB.prepare("UPDATE replies SET claimed_at = ? WHERE event_id = ?")
    .bind(Date.now() - REPLY_LEASE_MS - 1_000, eventId)
    .run();
}

/** Runs jobs through the consumer with the retry schedule wrangler.toml ships. */
function consume(messages: Delivered[], bindings: Partial<Env> = {}) {
  return runQueue(JOBS_QUEUE, messages, { ...PRODUCTION_SCHEDULE, ...bindings });
}

/** Moves claims back in time, as if the lease had run out. */
async function ageClaims(ids: string[]) {
  const past = Date.now() - CLAIM_LEASE_MS - 1_000;
  for (const id of ids) {
    await env.DB.prepare("UPDATE webhook_events SET updated_at = ? WHERE event_id = ?")
      .bind(past, id)
      .run();
  }
}

function messages(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => textMessage({ mid: `${prefix}-${i}` }));
}

describe("receiving a delivery while D1 fails", () => {
  it("answers 5xx, sends no job and leaves no claim while D1 is unavailable", async () => {
    const items = messages("mid-d1-down", 2);
    const ids = items.map((item) => item.message.mid);
    const { queue, sent } = recordingQueue();

    const response = await postWebhook(delivery(items), {
      bindings: { DB: unavailableD1().db, JOBS: queue },
    });

    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(sent).toHaveLength(0);
    expect(await eventRows(ids)).toHaveLength(0);

    const redelivery = await postWebhook(delivery(items), { bindings: { JOBS: queue } });
    expect(redelivery.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(ids);
  });

  it("leaves no claim when the claim batch fails part-way, because D1 rolls it back", async () => {
    const items = messages("mid-claim-part", 3);
    const ids = items.map((item) => item.message.mid);
    const { queue, sent } = recordingQueue();
    // Every later call fails too, so only D1's own rollback can leave no claim behind.
    const d1 = faultyD1((call) => (call.index === 0 ? { failAtStatement: 2 } : "unavailable"));

    const response = await postWebhook(delivery(items), { bindings: { DB: d1.db, JOBS: queue } });

    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(d1.calls[0]?.sql).toHaveLength(3);
    expect(sent).toHaveLength(0);
    expect(await eventRows(ids)).toHaveLength(0);

    const redelivery = await postWebhook(delivery(items), { bindings: { JOBS: queue } });
    expect(await redelivery.json()).toEqual({ received: 3, duplicates: 0 });
    expect(sent.map((job) => job.eventId)).toEqual(ids);
  });

  it("releases its claims when the claim commits but its response is lost", async () => {
    const items = messages("mid-claim-lost", 2);
    const ids = items.map((item) => item.message.mid);
    const { queue, sent } = recordingQueue();
    const d1 = faultyD1((call) => (call.index === 0 ? "response-lost" : undefined));

    const response = await postWebhook(delivery(items), { bindings: { DB: d1.db, JOBS: queue } });

    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(sent).toHaveLength(0);
    expect(await eventRows(ids)).toHaveLength(0);

    const redelivery = await postWebhook(delivery(items), { bindings: { JOBS: queue } });
    expect(redelivery.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(ids);
  });

  it("releases its claims when looking up the events it did not claim fails", async () => {
    const seen = textMessage({ mid: "mid-lookup-seen" });
    const fresh = messages("mid-lookup-new", 2);
    const { queue, sent } = recordingQueue();
    await postWebhook(delivery([seen]), { bindings: { JOBS: queue } });
    // Call 0 claims the new events; call 1 reads the status of the one already claimed.
    const d1 = faultyD1((call) => (call.index === 1 ? "unavailable" : undefined));

    const response = await postWebhook(delivery([seen, ...fresh]), {
      bindings: { DB: d1.db, JOBS: queue },
    });

    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(d1.calls[1]?.kind).toBe("statement");
    expect(sent.map((job) => job.eventId)).toEqual(["mid-lookup-seen"]);
    const freshIds = fresh.map((item) => item.message.mid);
    expect(await eventRows(freshIds)).toHaveLength(0);

    const redelivery = await postWebhook(delivery([seen, ...fresh]), {
      bindings: { JOBS: queue },
    });
    expect(await redelivery.json()).toEqual({ received: 2, duplicates: 1 });
    expect(sent.map((job) => job.eventId)).toEqual(["mid-lookup-seen", ...freshIds]);
  });

  it("asks for a redelivery when a claim it lost vanishes before it looks at it", async () => {
    // Another request holds the claim, then gives it back (its enqueue failed) just after
    // this request's insert lost to it.
    await insertEventRow({
      eventId: "mid-vanishing",
      correlationId: "other",
      status: "received",
      at: Date.now(),
    });
    const release = () =>
      env.DB.prepare("DELETE FROM webhook_events WHERE correlation_id = 'other'").run();
    const d1 = faultyD1((call) => (call.index === 1 ? { before: release } : undefined));
    const { queue, sent } = recordingQueue();
    const body = delivery([textMessage({ mid: "mid-vanishing" })]);

    const response = await postWebhook(body, { bindings: { DB: d1.db, JOBS: queue } });

    // Not a duplicate: nobody holds the event any more, so only a redelivery can enqueue it.
    expect(response.status).toBe(503);
    const redelivery = await postWebhook(body, { bindings: { JOBS: queue } });
    expect(redelivery.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(["mid-vanishing"]);
  });

  it("lets claims lapse when the queue and then the claim release both fail", async () => {
    const items = messages("mid-release-fails", 2);
    const ids = items.map((item) => item.message.mid);
    const broken = recordingQueue({ failAfterBatches: 0 });
    // The claim succeeds; everything after it (release, marking) fails.
    const d1 = faultyD1((call) => (call.index === 0 ? undefined : "unavailable"));

    const response = await postWebhook(delivery(items), {
      bindings: { DB: d1.db, JOBS: broken.queue },
    });
    expect(response.status).toBe(503);

    // The claims are stuck until their lease runs out: a redelivery meanwhile is refused...
    const healthy = recordingQueue();
    const early = await postWebhook(delivery(items), { bindings: { JOBS: healthy.queue } });
    expect(early.status).toBe(503);
    expect(healthy.sent).toHaveLength(0);

    // ...and the first one after it is enqueued.
    await ageClaims(ids);
    const late = await postWebhook(delivery(items), { bindings: { JOBS: healthy.queue } });
    expect(late.status).toBe(200);
    expect(healthy.sent.map((job) => job.eventId)).toEqual(ids);
  });

  it("answers 200 when only marking events queued fails, and enqueues each once", async () => {
    const item = textMessage({ mid: "mid-mark-fails" });
    const { queue, sent } = recordingQueue();
    const d1 = faultyD1((call) => (call.index === 0 ? undefined : "unavailable"));

    const response = await postWebhook(delivery([item]), { bindings: { DB: d1.db, JOBS: queue } });

    expect(response.status).toBe(200);
    expect(sent).toHaveLength(1);
    expect(await eventStatus("mid-mark-fails")).toBe("received");

    // Within the lease a redelivery is asked to come back later, not enqueued again.
    const again = await postWebhook(delivery([item]), { bindings: { JOBS: queue } });
    expect(again.status).toBe(503);
    expect(sent).toHaveLength(1);

    // Once the job has run, the event is no longer a claim that a redelivery could take over.
    const [job] = sent;
    await consume([{ body: job }]);
    await ageClaims(["mid-mark-fails"]);
    const later = await postWebhook(delivery([item]), { bindings: { JOBS: queue } });
    expect(await later.json()).toEqual({ received: 0, duplicates: 1 });
    expect(sent).toHaveLength(1);
    expect(graph.calls).toHaveLength(1);
  });
});

describe("receiving a delivery larger than the queue takes", () => {
  it("refuses, like the real queue, a message over 128 KB and a batch over 256 KB", async () => {
    const job = (text: string) => jobFor(textMessage({ text }));
    const oversized = [{ body: job("a".repeat(130_000)) }];
    // 100 jobs of 1,000 CJK characters: 1,100 UTF-16 units but 3,000 bytes each.
    const wide = Array.from({ length: 100 }, () => ({ body: job("漢".repeat(1_000)) }));

    for (const batch of [oversized, wide]) {
      await expect(env.JOBS.sendBatch(batch)).rejects.toThrow();
      await expect(limitedQueue().queue.sendBatch(batch)).rejects.toThrow();
    }
  });

  it("enqueues 100 messages in CJK script within the queue's byte limits", async () => {
    const items = Array.from({ length: 100 }, (_, i) =>
      textMessage({ mid: `mid-cjk-${i}`, text: "予約をお願いします。".repeat(100) }),
    );
    const { queue, sent } = limitedQueue();

    const response = await postWebhook(delivery(items), { bindings: { JOBS: queue } });

    expect(response.status).toBe(200);
    expect(sent).toHaveLength(100);
  });

  it("keeps an event too large for a queue message as a dead letter and answers 200", async () => {
    const big = { ...textMessage({ mid: "mid-too-large" }), extra: "x".repeat(200_000) };
    const small = textMessage({ mid: "mid-beside-large" });
    const { queue, sent } = limitedQueue();
    const bindings = { JOBS: queue, ALERT_WEBHOOK_URL: ALERT_URL };

    const response = await postWebhook(delivery([big, small]), { bindings });

    expect(response.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(["mid-beside-large"]);
    expect(await eventStatus("mid-too-large")).toBe("dead_lettered");
    const [row] = await deadLettersOf("mid-too-large");
    expect(row).toMatchObject({ error_class: "permanent", error_code: "job_too_large" });
    expect(await openDeadLetter(row as DeadLetterRow)).toMatchObject({ content: big });
    expect(graph.alerts).toMatchObject([{ eventId: "mid-too-large", errorCode: "job_too_large" }]);

    const redelivery = await postWebhook(delivery([big, small]), { bindings });
    expect(await redelivery.json()).toEqual({ received: 0, duplicates: 2 });
    expect(await deadLettersOf("mid-too-large")).toHaveLength(1);
  });

  it("answers 503 and keeps nothing when the oversized event's dead letter fails", async () => {
    const big = { ...textMessage({ mid: "mid-too-large-2" }), extra: "x".repeat(200_000) };
    const small = textMessage({ mid: "mid-beside-large-2" });
    const { queue, sent } = limitedQueue();
    const d1 = faultyD1(failWritesTo("dead_letters", "unavailable"));

    const response = await postWebhook(delivery([big, small]), {
      bindings: { DB: d1.db, JOBS: queue },
    });

    expect(response.status).toBe(503);
    expect(sent).toHaveLength(0);
    expect(await eventRows(["mid-too-large-2", "mid-beside-large-2"])).toHaveLength(0);

    const redelivery = await postWebhook(delivery([big, small]), { bindings: { JOBS: queue } });
    expect(await redelivery.json()).toEqual({ received: 2, duplicates: 0 });
    expect(sent.map((job) => job.eventId)).toEqual(["mid-beside-large-2"]);
    expect(await deadLettersOf("mid-too-large-2")).toHaveLength(1);
  });
});

describe("consuming a job while D1 fails", () => {
  it("retries a job when D1 fails before the reply, and the retry replies once", async () => {
    const job = jobFor(textMessage({ mid: "mid-consume-d1-down" }));
    await claimEvent(job);

    const [first] = await consume([{ body: job }], { DB: unavailableD1().db });

    expect(first).toMatchObject({ acked: false, retried: true, delaySeconds: 60 });
    expect(graph.calls).toHaveLength(0);
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);

    const [second] = await consume([{ body: job, attempts: 2 }]);
    expect(second).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(1);
    expect(await eventStatus(job.eventId)).toBe("processed");
  });

  it("sends again once the reply's claim lapses, when the write after a send failed", async () => {
    const job = jobFor(textMessage({ mid: "mid-ledger-write-fails" }));
    await claimEvent(job);
    const d1 = faultyD1(finalWrite("unavailable"));

    const [first] = await consume([{ body: job }], { DB: d1.db });

    expect(first).toMatchObject({ acked: false, retried: true });
    expect(graph.calls).toHaveLength(1);
    expect(await ledgerRows(job.eventId)).toMatchObject([{ status: "sending" }]);
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);

    // While the claim holds, another attempt waits for it rather than sending.
    const [second] = await consume([{ body: job, attempts: 2 }]);
    expect(second).toMatchObject({ acked: false, retried: true });
    expect(second?.delaySeconds).toBeGreaterThanOrEqual(REPLY_LEASE_MS / 1000);
    expect(graph.calls).toHaveLength(1);

    // The at-least-once window: nothing recorded that the send succeeded, so the attempt
    // after the lease cannot tell it from a run that died before sending, and sends again.
    await ageReplyClaim(job.eventId);
    const [third] = await consume([{ body: job, attempts: 3 }]);
    expect(third).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(2);
    expect(await ledgerRows(job.eventId)).toMatchObject([{ status: "sent" }]);
    expect(await eventStatus(job.eventId)).toBe("processed");
  });

  it("does not reply again when the final write committed but its response was lost", async () => {
    const job = jobFor(textMessage({ mid: "mid-ledger-response-lost" }));
    await claimEvent(job);
    const d1 = faultyD1(finalWrite("response-lost"));

    const [first] = await consume([{ body: job }], { DB: d1.db });
    expect(first).toMatchObject({ acked: false, retried: true });

    const [second] = await consume([{ body: job, attempts: 2 }]);
    expect(second).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
    expect(await ledgerRows(job.eventId)).toMatchObject([{ status: "sent" }]);
  });

  it("replies once when the reply's claim committed but its response was lost", async () => {
    const job = jobFor(textMessage({ mid: "mid-claim-response-lost" }));
    await claimEvent(job);
    const d1 = faultyD1((call) =>
      call.kind === "statement" && writesTo(call, "replies") ? "response-lost" : undefined,
    );

    const [first] = await consume([{ body: job }], { DB: d1.db });
    expect(first).toMatchObject({ acked: false, retried: true });
    expect(graph.calls).toHaveLength(0);

    await ageReplyClaim(job.eventId);
    const [second] = await consume([{ body: job, attempts: 2 }]);
    expect(second).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
  });

  it("records a failed single D1 statement as a database error, like a failed batch", async () => {
    const job = jobFor(textMessage({ mid: "mid-statement-fails" }));
    await claimEvent(job);
    // The reply's claim is a statement of its own; the ORM wraps what D1 throws for it.
    const d1 = faultyD1((call) =>
      call.kind === "statement" && writesTo(call, "replies") ? "unavailable" : undefined,
    );

    const [decision] = await consume([{ body: job }], { DB: d1.db });

    expect(decision).toMatchObject({ acked: false, retried: true });
    expect(await eventRows([job.eventId])).toMatchObject([{ last_error_code: "d1_error" }]);
  });

  it("does not reply again to a job redelivered after its reply but before its ack", async () => {
    const job = jobFor(textMessage({ mid: "mid-unacked" }));
    await claimEvent(job);

    await consume([{ body: job }]);
    const [redelivered] = await consume([{ body: job, attempts: 2 }]);

    expect(redelivered).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(1);
  });

  it("retries a permanent failure whose dead letter fails, then stores it once", async () => {
    const job = jobFor(textMessage({ mid: "mid-dead-letter-write-fails" }));
    await claimEvent(job);
    graph.answer(graphError(400, 190), graphError(400, 190));
    const d1 = faultyD1(failWritesTo("dead_letters", "unavailable"));

    const [first] = await consume([{ body: job, id: "msg-dlw" }], { DB: d1.db });
    expect(first).toMatchObject({ acked: false, retried: true });
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);

    const [second] = await consume([{ body: job, id: "msg-dlw", attempts: 2 }]);
    expect(second).toMatchObject({ acked: true, retried: false });
    expect(await deadLettersOf(job.eventId)).toHaveLength(1);
    expect(await eventStatus(job.eventId)).toBe("dead_lettered");
  });
});

describe("consuming a dead letter while D1 fails", () => {
  it("retries with a growing delay, and stores the dead letter once after recovery", async () => {
    const job = jobFor(textMessage({ mid: "mid-dlq-d1-down" }));
    await claimEvent(job);
    const down = unavailableD1().db;

    const [first] = await runQueue(DEAD_LETTER_QUEUE, [{ id: "dlq-1", body: job }], { DB: down });
    const [third] = await runQueue(DEAD_LETTER_QUEUE, [{ id: "dlq-1", body: job, attempts: 3 }], {
      DB: down,
    });
    expect(first).toMatchObject({ acked: false, retried: true, delaySeconds: 60 });
    expect(third).toMatchObject({ acked: false, retried: true, delaySeconds: 240 });
    expect(await deadLettersOf(job.eventId)).toHaveLength(0);

    const healthy = { id: "dlq-1", body: job, attempts: 4 };
    expect((await runQueue(DEAD_LETTER_QUEUE, [healthy]))[0]).toMatchObject({ acked: true });
    // The queue may deliver it once more; the row stays single.
    expect((await runQueue(DEAD_LETTER_QUEUE, [healthy]))[0]).toMatchObject({ acked: true });
    expect(await deadLettersOf(job.eventId)).toHaveLength(1);
    expect(await eventStatus(job.eventId)).toBe("dead_lettered");
  });
});

interface GraphCase {
  name: string;
  answer: () => GraphAnswer;
  code: string;
  delaySeconds?: number;
}

const html = (status: number) =>
  new Response("<html><body>Bad gateway</body></html>", {
    status,
    headers: { "content-type": "text/html" },
  });

const RETRYABLE: GraphCase[] = [
  { name: "a timeout", answer: () => "timeout", code: "timeout" },
  { name: "a connection reset", answer: () => "reset", code: "network" },
  { name: "a 500 with an HTML body", answer: () => html(500), code: "http_500" },
  {
    name: "a 502 with an empty body",
    answer: () => new Response(null, { status: 502 }),
    code: "http_502",
  },
  {
    name: "a 503 with a body that is not JSON",
    answer: () => new Response("{", { status: 503 }),
    code: "http_503",
  },
  {
    name: "a 429 without Retry-After",
    answer: () => new Response(null, { status: 429 }),
    code: "http_429",
    delaySeconds: 60,
  },
  {
    name: "a 429 with Retry-After: 600",
    answer: () => new Response(null, { status: 429, headers: { "retry-after": "600" } }),
    code: "http_429",
    delaySeconds: 600,
  },
  {
    name: "a 429 with a shorter Retry-After than the schedule",
    answer: () => new Response(null, { status: 429, headers: { "retry-after": "5" } }),
    code: "http_429",
    delaySeconds: 60,
  },
  {
    name: "a 500 with an unknown code",
    answer: () => graphError(500, 99_999),
    code: "graph_99999",
  },
  {
    name: "a permanent code marked transient",
    answer: () => graphError(400, 100, { transient: true }),
    code: "graph_100",
  },
  ...[1, 2, 4, 17, 32, 341, 368, 613].map((code) => ({
    name: `code ${code}`,
    answer: () => graphError(code === 1 || code === 2 ? 500 : 400, code),
    code: `graph_${code}`,
  })),
];

const PERMANENT: GraphCase[] = [
  ...[10, 100, 190, 200, 299].map((code) => ({
    name: `code ${code}`,
    answer: () => graphError(code === 10 || code >= 200 ? 403 : 400, code),
    code: `graph_${code}`,
  })),
  { name: "code 190 on a 500", answer: () => graphError(500, 190), code: "graph_190" },
  { name: "a 400 with an HTML body", answer: () => html(400), code: "http_400" },
  {
    name: "a 404 with an empty body",
    answer: () => new Response(null, { status: 404 }),
    code: "http_404",
  },
];

describe("Graph API answers, one decision each", () => {
  let next = 0;
  async function runAgainst(answer: GraphAnswer, attempts = 1) {
    next += 1;
    const job = jobFor(textMessage({ mid: `mid-graph-${next}` }));
    await claimEvent(job);
    graph.answer(answer);
    const [decision] = await consume([{ body: job, attempts }]);
    const [event] = await eventRows([job.eventId]);
    return { job, decision, event, deadLetters: await deadLettersOf(job.eventId) };
  }

  it.each(RETRYABLE)("retries after $name", async ({ answer, code, delaySeconds }) => {
    const { decision, event, deadLetters } = await runAgainst(answer());

    expect(decision).toMatchObject({ acked: false, retried: true });
    if (delaySeconds !== undefined) expect(decision?.delaySeconds).toBe(delaySeconds);
    expect(graph.calls).toHaveLength(1);
    expect(event).toMatchObject({ status: "retrying", last_error_code: code });
    expect(deadLetters).toHaveLength(0);
  });

  it.each(PERMANENT)("dead-letters at once after $name", async ({ answer, code }) => {
    const { decision, event, deadLetters } = await runAgainst(answer());

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(1);
    expect(event?.status).toBe("dead_lettered");
    expect(deadLetters).toMatchObject([{ error_class: "permanent", error_code: code }]);
  });

  it("hands the job to the queue for its dead letter when the last attempt fails", async () => {
    const { job, decision, event, deadLetters } = await runAgainst(graphError(503, 2), 4);

    expect(decision).toMatchObject({ retried: true, acked: false });
    expect(event?.status).toBe("retrying");
    expect(deadLetters).toHaveLength(0);
    const audit = await env.DB.prepare(
      "SELECT action FROM audit_entries WHERE event_id = ? ORDER BY id DESC LIMIT 1",
    )
      .bind(job.eventId)
      .first<{ action: string }>();
    expect(audit?.action).toBe("retries_exhausted");
  });

  it("sends again after a timeout, since Graph may have delivered the reply or not", async () => {
    const { job, decision } = await runAgainst("timeout");
    expect(decision).toMatchObject({ retried: true });
    // The failed run gave its claim back: the next attempt does not wait for the lease.
    expect(await ledgerRows(job.eventId)).toHaveLength(0);

    const [again] = await consume([{ body: job, attempts: 2 }]);

    expect(again).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(2);
  });

  it.each([
    ["a body without message_id", () => Response.json({ recipient_id: "x" })],
    ["an HTML body", () => html(200)],
    ["an empty body", () => new Response(null, { status: 200 })],
  ])("counts a 200 with %s as sent: no retry and no second send", async (_, answer) => {
    const { job, decision, event } = await runAgainst(answer());

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(event?.status).toBe("processed");
    expect(await ledgerRows(job.eventId)).toMatchObject([
      { status: "sent", provider_message_id: null },
    ]);

    const [again] = await consume([{ body: job, attempts: 2 }]);
    expect(again).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
  });
});
