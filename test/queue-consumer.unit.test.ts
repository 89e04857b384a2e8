import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256Hex } from "../src/bytes";
import { PLACEHOLDER_REPLY } from "../src/instagram/reply-policy";
import { fitToBytes } from "../src/instagram/send-api";
import type { WebhookJob } from "../src/jobs/job";
import { importSealKey, unseal } from "../src/seal";
import { TEST_BINDINGS } from "./support/bindings";
import { ACCOUNT_ID, textMessage } from "./support/deliveries";
import {
  type GraphAnswer,
  type GraphStandIn,
  graphError,
  installGraphStandIn,
} from "./support/graph-stand-in";
import {
  attemptJob,
  auditTrail,
  claimEvent,
  countRows,
  d1WithFailingBatch,
  deadLettersOf,
  eventRow,
  JOBS_QUEUE,
  jobFor,
  openDeadLetter,
  PRODUCTION_SCHEDULE,
  runQueue,
} from "./support/jobs";

const HOUR_MS = 60 * 60 * 1000;

let graph: GraphStandIn;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

/** A job for a new text message whose event the receiving route has claimed and enqueued. */
async function claimedJob(content: Record<string, unknown> = textMessage()) {
  const job = jobFor(content);
  await claimEvent(job);
  return job;
}

/** A messaging item from a user that is not a plain message (reads, reactions, ...). */
function userItem(fields: Record<string, unknown>) {
  return {
    sender: { id: "17841400000000077" },
    recipient: { id: ACCOUNT_ID },
    timestamp: Date.now(),
    ...fields,
  };
}

describe("job consumer, a text message", () => {
  it("stores the message sealed, replies once, records the reply and acknowledges", async () => {
    const sender = "17841400000000042";
    const job = await claimedJob(
      textMessage({ mid: "mid-hello", text: "I need an appointment", sender }),
    );

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toEqual([
      {
        url: `${TEST_BINDINGS.GRAPH_API_BASE_URL}/${TEST_BINDINGS.GRAPH_API_VERSION}/me/messages`,
        method: "POST",
        authorization: `Bearer ${TEST_BINDINGS.INSTAGRAM_ACCESS_TOKEN}`,
        body: { recipient: { id: sender }, message: { text: PLACEHOLDER_REPLY } },
      },
    ]);

    const conversationId = await sha256Hex(`instagram:${ACCOUNT_ID}:${sender}`);
    const conversation = await env.DB.prepare("SELECT * FROM conversations WHERE id = ?")
      .bind(conversationId)
      .first();
    expect(conversation).toMatchObject({
      provider: "instagram",
      account_id: ACCOUNT_ID,
      participant_id: sender,
    });

    const message = await env.DB.prepare("SELECT * FROM messages WHERE provider_message_id = ?")
      .bind("mid-hello")
      .first<{ text_sealed: string; kind: string; event_id: string; conversation_id: string }>();
    expect(message).toMatchObject({
      kind: "text",
      event_id: "mid-hello",
      conversation_id: conversationId,
    });
    expect(message?.text_sealed).not.toContain("appointment");
    const key = await importSealKey(TEST_BINDINGS.DATA_ENCRYPTION_KEY);
    expect(await unseal(key, message?.text_sealed ?? "", "mid-hello")).toBe(
      "I need an appointment",
    );
    // Bound to its row: the sealed text does not open under another event's id.
    await expect(unseal(key, message?.text_sealed ?? "", "mid-other")).rejects.toThrow();

    const reply = await env.DB.prepare("SELECT * FROM replies WHERE event_id = ?")
      .bind("mid-hello")
      .first<{ provider_message_id: string; conversation_id: string; text_sealed: string }>();
    expect(reply).toMatchObject({
      provider_message_id: "graph-mid-1",
      conversation_id: conversationId,
    });
    expect(await unseal(key, reply?.text_sealed ?? "", "reply:mid-hello")).toBe(PLACEHOLDER_REPLY);

    expect(await eventRow("mid-hello")).toMatchObject({ status: "processed", attempts: 1 });
    expect(await auditTrail("mid-hello")).toEqual([
      {
        event_id: "mid-hello",
        provider: "instagram",
        correlation_id: job.correlationId,
        action: "processed",
        attempt: 1,
        reason: null,
        error_class: null,
        error_code: null,
      },
    ]);
  });

  it("answers a message whose timestamp Meta gave in seconds", async () => {
    const seconds = Math.floor(Date.now() / 1000);
    const job = await claimedJob({ ...textMessage(), timestamp: seconds });

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(1);
    expect(await eventRow(job.eventId)).toMatchObject({ status: "processed" });
    const stored = await env.DB.prepare("SELECT sent_at FROM messages WHERE event_id = ?")
      .bind(job.eventId)
      .first();
    expect(stored).toEqual({ sent_at: seconds * 1000 });
  });

  it("cuts a reply over Meta's 1000-byte limit on a character boundary", () => {
    // The policy's placeholder is short; the limit guards whatever a later policy returns.
    const long = "é".repeat(600);
    const fitted = fitToBytes(long);
    expect(new TextEncoder().encode(fitted).byteLength).toBeLessThanOrEqual(1000);
    expect(fitted.endsWith("...")).toBe(true);
    expect(fitted.slice(0, -3)).toBe("é".repeat(498));
  });
});

describe("job consumer, events that get no reply", () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    [
      "an echo of the business's own message",
      {
        sender: { id: ACCOUNT_ID },
        recipient: { id: "17841400000000077" },
        timestamp: Date.now(),
        message: { mid: "mid-echo", text: "Thanks for your message!", is_echo: true },
      },
      "echo",
    ],
    ["a read receipt", userItem({ read: { mid: "mid-read" } }), "read"],
    [
      "a reaction",
      userItem({ reaction: { mid: "mid-r", action: "react", reaction: "love", emoji: "❤" } }),
      "reaction",
    ],
    [
      "a deleted message",
      userItem({ message: { mid: "mid-deleted", is_deleted: true } }),
      "deleted",
    ],
    [
      "an unsupported message",
      userItem({ message: { mid: "mid-unsupported", is_unsupported: true } }),
      "unsupported",
    ],
    [
      "an edit",
      userItem({ message_edit: { mid: "mid-edited", text: "new text", num_edit: 1 } }),
      "edit",
    ],
    [
      "a referral",
      userItem({ referral: { ref: "ad", source: "ADS", type: "OPEN_THREAD" } }),
      "referral",
    ],
    ["an item of an unknown kind", userItem({ something_new: {} }), "unknown_kind"],
  ];

  it.each(cases)(
    "skips %s: no reply, status skipped, audited with the reason, acknowledged",
    async (_, content, reason) => {
      const job = await claimedJob(content);

      const decision = await attemptJob(job);

      expect(decision).toMatchObject({ acked: true, retried: false });
      expect(graph.calls).toHaveLength(0);
      expect(await eventRow(job.eventId)).toMatchObject({ status: "skipped", attempts: 1 });
      expect(await auditTrail(job.eventId)).toEqual([
        expect.objectContaining({ action: "skipped", reason, attempt: 1 }),
      ]);
      expect(await countRows("replies", job.eventId)).toBe(0);
    },
  );

  it("skips a change (a comment, not a messaging item) without replying", async () => {
    const job = jobFor(
      { field: "comments", value: { id: "c-1", text: "nice" } },
      { source: "changes" },
    );
    await claimEvent(job);

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(0);
    expect(await eventRow(job.eventId)).toMatchObject({ status: "skipped" });
    expect(await auditTrail(job.eventId)).toEqual([
      expect.objectContaining({ action: "skipped", reason: "not_a_message" }),
    ]);
  });
});

describe("job consumer, attachments and postbacks", () => {
  it("records an attachment without text and answers it per the reply policy", async () => {
    const sender = "17841400000000043";
    const job = await claimedJob(
      userItem({
        sender: { id: sender },
        message: {
          mid: "mid-photo",
          attachments: [{ type: "image", payload: { url: "https://cdn.test/x.jpg" } }],
        },
      }),
    );

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false });
    const message = await env.DB.prepare(
      "SELECT kind, text_sealed FROM messages WHERE provider_message_id = ?",
    )
      .bind("mid-photo")
      .first();
    expect(message).toEqual({ kind: "attachment", text_sealed: null });
    expect(graph.calls.map((call) => call.body)).toEqual([
      { recipient: { id: sender }, message: { text: PLACEHOLDER_REPLY } },
    ]);
    expect(await countRows("replies", "mid-photo")).toBe(1);
    expect(await eventRow("mid-photo")).toMatchObject({ status: "processed" });
  });

  it("records a postback with its title sealed and answers it", async () => {
    const job = await claimedJob(
      userItem({ postback: { mid: "mid-postback", title: "Book a visit", payload: "BOOK" } }),
    );

    expect(await attemptJob(job)).toMatchObject({ acked: true });

    const message = await env.DB.prepare(
      "SELECT kind, text_sealed FROM messages WHERE provider_message_id = ?",
    )
      .bind("mid-postback")
      .first<{ kind: string; text_sealed: string }>();
    expect(message?.kind).toBe("postback");
    const key = await importSealKey(TEST_BINDINGS.DATA_ENCRYPTION_KEY);
    expect(await unseal(key, message?.text_sealed ?? "", job.eventId)).toBe("Book a visit");
    expect(graph.calls).toHaveLength(1);
  });
});

describe("job consumer, redelivered jobs", () => {
  it("does not reply again when the same job is processed twice", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-twice" }));

    const first = await attemptJob(job);
    const second = await attemptJob(job);

    expect([first.acked, second.acked]).toEqual([true, true]);
    expect(graph.calls).toHaveLength(1);
    expect(await countRows("replies", "mid-twice")).toBe(1);
    expect(await countRows("messages", "mid-twice")).toBe(1);
    expect(await eventRow("mid-twice")).toMatchObject({ status: "processed" });
  });

  it("does not reply again on attempt 2 after a first attempt that succeeded", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-attempt-2" }));

    await attemptJob(job, 1);
    const again = await attemptJob(job, 2);

    expect(again).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(1);
    expect((await auditTrail("mid-attempt-2")).at(-1)).toMatchObject({
      action: "processed",
      attempt: 2,
      reason: "already_replied",
    });
  });

  it("replies once when one batch carries the same job twice", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-same-batch" }));

    const decisions = await runQueue(JOBS_QUEUE, [{ body: job }, { body: job }], {
      ...PRODUCTION_SCHEDULE,
    });

    expect(decisions.map((decision) => decision.acked)).toEqual([true, true]);
    expect(graph.calls).toHaveLength(1);
    expect(await countRows("replies", "mid-same-batch")).toBe(1);
  });

  it("replies after a first attempt that failed before sending, and only then", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-after-failure" }));
    graph.answer(new Response("upstream error", { status: 502 }));

    expect(await attemptJob(job, 1)).toMatchObject({ retried: true, acked: false });
    expect(await attemptJob(job, 2)).toMatchObject({ acked: true, retried: false });
    expect(await attemptJob(job, 3)).toMatchObject({ acked: true, retried: false });

    expect(graph.calls).toHaveLength(2);
    expect(await countRows("replies", "mid-after-failure")).toBe(1);
    expect(await eventRow("mid-after-failure")).toMatchObject({ status: "processed" });
  });
});

describe("job consumer, two runs of one job at once", () => {
  it("sends one reply when a second run starts while the first is still sending", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-overlap" }));
    graph.answer({ successAfterMs: 150 });

    const [first, second] = await Promise.all([
      attemptJob(job, 1),
      new Promise((resolve) => setTimeout(resolve, 30)).then(() => attemptJob(job, 1)),
    ]);

    expect(graph.calls).toHaveLength(1);
    expect(first).toMatchObject({ acked: true });
    // The second run backs off for the reply lease and finds the reply sent next time.
    expect(second).toMatchObject({ retried: true, delaySeconds: 60 });
    expect(await attemptJob(job, 2)).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
    expect(await countRows("replies", "mid-overlap")).toBe(1);
  });

  it("takes over a reply whose sending run died, once its lease has lapsed", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-died-sending" }));
    const longAgo = Date.now() - 5 * 60_000;
    await env.DB.prepare(
      "INSERT INTO replies (event_id, conversation_id, status, claimed_at, text_sealed) " +
        "VALUES (?, 'c', 'sending', ?, 'v1.a.b')",
    )
      .bind("mid-died-sending", longAgo)
      .run();

    expect(await attemptJob(job, 2)).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(1);
    expect(
      await env.DB.prepare("SELECT status, provider_message_id FROM replies WHERE event_id = ?")
        .bind("mid-died-sending")
        .first(),
    ).toEqual({ status: "sent", provider_message_id: "graph-mid-1" });
  });

  it("gives the reply back after a failed send, so that the next attempt sends", async () => {
    const job = await claimedJob(textMessage({ mid: "mid-release" }));
    graph.answer(graphError(503, 2));

    expect(await attemptJob(job, 1)).toMatchObject({ retried: true });
    expect(await countRows("replies", "mid-release")).toBe(0);
    expect(await attemptJob(job, 2)).toMatchObject({ acked: true });
    expect(graph.calls).toHaveLength(2);
  });
});

describe("job consumer, a message the user deleted", () => {
  it("erases the stored text of the deleted message and sends nothing", async () => {
    const original = await claimedJob(textMessage({ mid: "mid-to-delete", text: "my diagnosis" }));
    await attemptJob(original);
    const deletion = jobFor(
      { ...textMessage(), message: { mid: "mid-to-delete", is_deleted: true } },
      { eventId: "sha256:deletion-of-mid-to-delete" },
    );
    await claimEvent(deletion);

    expect(await attemptJob(deletion)).toMatchObject({ acked: true });

    const row = await env.DB.prepare(
      "SELECT text_sealed FROM messages WHERE provider_message_id = ?",
    )
      .bind("mid-to-delete")
      .first();
    expect(row).toEqual({ text_sealed: null });
    expect(graph.calls).toHaveLength(1);
    expect((await auditTrail(deletion.eventId)).at(-1)).toMatchObject({
      action: "skipped",
      reason: "deleted",
    });
  });
});

const RETRYABLE: Array<[string, () => GraphAnswer, string]> = [
  ["a 500 without a Graph body", () => new Response("upstream error", { status: 500 }), "http_500"],
  ["a 429 without a Graph body", () => new Response(null, { status: 429 }), "http_429"],
  ["a 408 from a proxy on the way", () => new Response(null, { status: 408 }), "http_408"],
  ["a 503 with an unlisted Graph code", () => graphError(503, 9999), "graph_9999"],
  ["a timeout", () => "timeout", "timeout"],
  ["a connection reset", () => "reset", "network"],
  ...[1, 2, 4, 17, 32, 341, 368, 613].map((code): [string, () => GraphAnswer, string] => [
    `Graph code ${code} (on a 400)`,
    () => graphError(400, code),
    `graph_${code}`,
  ]),
  [
    "is_transient: true on a code outside both lists",
    () => graphError(400, 1200, { transient: true }),
    "graph_1200",
  ],
];

describe("job consumer, failures worth another attempt", () => {
  it.each(RETRYABLE)(
    "retries %s after 60, 300 and 900 s, then once more for the dead letter",
    async (_, answer, errorCode) => {
      const job = await claimedJob();
      graph.answerFor(senderOf(job), answer);

      for (const [attempt, delay] of [
        [1, 60],
        [2, 300],
        [3, 900],
      ] as const) {
        const decision = await attemptJob(job, attempt);
        expect(decision).toMatchObject({ acked: false, retried: true, delaySeconds: delay });
        expect((await auditTrail(job.eventId)).at(-1)).toMatchObject({
          action: "retry_scheduled",
          attempt,
          error_class: "retryable",
          error_code: errorCode,
        });
        expect(await eventRow(job.eventId)).toMatchObject({
          status: "retrying",
          attempts: attempt,
          last_error_class: "retryable",
          last_error_code: errorCode,
        });
      }

      // The queue moves the job to the dead-letter queue after this retry (max_retries = 3).
      const last = await attemptJob(job, 4);
      expect(last).toMatchObject({ acked: false, retried: true });
      expect((await auditTrail(job.eventId)).at(-1)).toMatchObject({
        action: "retries_exhausted",
        attempt: 4,
        error_code: errorCode,
      });
      expect(graph.calls).toHaveLength(4);
      expect(await countRows("replies", job.eventId)).toBe(0);
      expect(await countRows("dead_letters", job.eventId)).toBe(0);
    },
  );
});

function senderOf(job: WebhookJob): string {
  return (job.content.sender as { id: string }).id;
}

/** One attempt of a fresh job whose single Graph call gets `answer`. */
async function attemptWithAnswer(answer: GraphAnswer, attempt = 1) {
  const job = await claimedJob();
  graph.answer(answer);
  const decision = await attemptJob(job, attempt);
  return { job, decision };
}

describe("job consumer, delays the far side asks for", () => {
  it("honours a Retry-After longer than the schedule", async () => {
    const answer = new Response(null, { status: 429, headers: { "retry-after": "3600" } });
    const { decision } = await attemptWithAnswer(answer);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 3600 });
  });

  it("keeps the schedule when Retry-After asks for less", async () => {
    const answer = new Response(null, { status: 503, headers: { "retry-after": "10" } });
    const { decision } = await attemptWithAnswer(answer, 2);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 300 });
  });

  it("reads a Retry-After given as an HTTP date", async () => {
    const at = new Date(Date.now() + 2 * HOUR_MS).toUTCString();
    const { decision } = await attemptWithAnswer(
      new Response(null, { status: 503, headers: { "retry-after": at } }),
    );
    expect(decision.delaySeconds).toBeGreaterThan(7_190);
    expect(decision.delaySeconds).toBeLessThanOrEqual(7_200);
  });

  it("caps a requested delay at the 12 hours Queues allows", async () => {
    const answer = new Response(null, { status: 429, headers: { "retry-after": "999999" } });
    const { decision } = await attemptWithAnswer(answer);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 43_200 });
  });

  it("honours a longer estimated_time_to_regain_access (in minutes)", async () => {
    const usage = JSON.stringify({
      [ACCOUNT_ID]: [{ type: "instagram", call_count: 100, estimated_time_to_regain_access: 30 }],
    });
    const answer = graphError(400, 32, { headers: { "x-business-use-case-usage": usage } });
    const { job, decision } = await attemptWithAnswer(answer);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 1_800 });
    expect((await auditTrail(job.eventId)).at(-1)).toMatchObject({ error_code: "graph_32" });
  });

  it("keeps the schedule when estimated_time_to_regain_access is shorter", async () => {
    const usage = JSON.stringify({
      [ACCOUNT_ID]: [{ type: "instagram", estimated_time_to_regain_access: 1 }],
    });
    const answer = graphError(400, 613, { headers: { "x-business-use-case-usage": usage } });
    const { decision } = await attemptWithAnswer(answer, 3);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 900 });
  });

  it("ignores a malformed usage header and keeps the schedule", async () => {
    const answer = graphError(400, 4, { headers: { "x-business-use-case-usage": "{oops" } });
    const { decision } = await attemptWithAnswer(answer);
    expect(decision).toMatchObject({ retried: true, delaySeconds: 60 });
  });
});

describe("job consumer, failures no retry can fix", () => {
  it.each([
    ["400 with code 100 (bad parameter)", 400, 100],
    ["400 with code 190 (token expired)", 400, 190],
    ["401 with code 190 (token revoked)", 401, 190],
    ["500 with code 190 (token, whatever the status)", 500, 190],
    ["403 with code 10 (permission)", 403, 10],
    ["400 with code 230 (permission range)", 400, 230],
  ])("dead-letters %s at once and acknowledges", async (_, status, code) => {
    const job = await claimedJob();
    graph.answer(graphError(status, code));

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false, delaySeconds: undefined });
    expect(graph.calls).toHaveLength(1);
    const [row, ...others] = await deadLettersOf(job.eventId);
    expect(others).toHaveLength(0);
    expect(row).toMatchObject({
      id: decision.id,
      correlation_id: job.correlationId,
      attempts: 1,
      error_class: "permanent",
      error_code: `graph_${code}`,
      status: "open",
    });
    expect(row?.payload_sealed).not.toContain(job.eventId);
    expect(await openDeadLetter(row as NonNullable<typeof row>)).toEqual(job);
    expect(await eventRow(job.eventId)).toMatchObject({ status: "dead_lettered" });
    expect((await auditTrail(job.eventId)).at(-1)).toMatchObject({
      action: "dead_lettered",
      attempt: 1,
      error_class: "permanent",
      error_code: `graph_${code}`,
    });
    expect(await countRows("replies", job.eventId)).toBe(0);
  });

  it("dead-letters a body that is not a job, keeping it sealed", async () => {
    const bodies: unknown[] = [
      "not a job",
      { version: 2, eventId: "mid-v2" },
      { ...jobFor(), eventId: "" },
      { ...jobFor(), provider: "telegram" },
    ];
    const decisions = await runQueue(
      JOBS_QUEUE,
      bodies.map((body, index) => ({ body, id: `invalid-${index}` })),
      PRODUCTION_SCHEDULE,
    );

    expect(decisions.every((d) => d.acked && !d.retried)).toBe(true);
    expect(graph.calls).toHaveLength(0);
    for (const [index, body] of bodies.entries()) {
      const [row] = await deadLettersOf(`unknown:invalid-${index}`);
      expect(row).toMatchObject({
        id: `invalid-${index}`,
        provider: "unknown",
        error_class: "permanent",
        error_code: "invalid_job",
      });
      expect(await openDeadLetter(row as NonNullable<typeof row>)).toEqual(body);
    }
  });

  it("dead-letters a job whose content is not a messaging item", async () => {
    const job = await claimedJob({ sender: { id: "" }, something: true });
    const decision = await attemptJob(job);
    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(await deadLettersOf(job.eventId)).toEqual([
      expect.objectContaining({ error_code: "invalid_job", error_class: "permanent" }),
    ]);
  });

  it("dead-letters a message older than 24 hours without calling Graph", async () => {
    const content = { ...textMessage(), timestamp: Date.now() - 25 * HOUR_MS };
    const job = await claimedJob(content);

    const decision = await attemptJob(job);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toHaveLength(0);
    expect(await deadLettersOf(job.eventId)).toEqual([
      expect.objectContaining({ error_class: "permanent", error_code: "outside_window" }),
    ]);
    expect(await eventRow(job.eventId)).toMatchObject({ status: "dead_lettered" });
  });

  it("retries, and does not acknowledge, a dead letter whose row cannot be written", async () => {
    const job = await claimedJob();
    graph.answer(graphError(400, 190));

    const decision = await attemptJob(job, 1, { DB: d1WithFailingBatch() });

    expect(decision).toMatchObject({ acked: false, retried: true, delaySeconds: 60 });
    expect(await countRows("dead_letters", job.eventId)).toBe(0);
  });

  it("retries, and does not acknowledge, a success it cannot record", async () => {
    const job = await claimedJob();

    const decision = await attemptJob(job, 1, { DB: d1WithFailingBatch() });

    expect(decision).toMatchObject({ acked: false, retried: true, delaySeconds: 60 });
    expect(graph.calls).toHaveLength(0);
  });

  it("keeps every job when the configuration is broken", async () => {
    const job = await claimedJob();
    const decisions = await runQueue(JOBS_QUEUE, [{ body: job }, { body: "junk" }], {
      DATA_ENCRYPTION_KEY: "too-short",
    });
    for (const decision of decisions) {
      expect(decision).toMatchObject({ acked: false, retried: true, delaySeconds: 300 });
    }
    expect(graph.calls).toHaveLength(0);
  });
});

describe("job consumer, a batch of mixed outcomes", () => {
  it("decides each message on its own", async () => {
    const ok = await claimedJob();
    const echo = await claimedJob({
      sender: { id: ACCOUNT_ID },
      recipient: { id: "17841400000000078" },
      timestamp: Date.now(),
      message: { mid: `mid-${crypto.randomUUID()}`, text: "ours", is_echo: true },
    });
    const busy = await claimedJob();
    const revoked = await claimedJob();
    graph.answerFor(senderOf(busy), () => new Response(null, { status: 500 }));
    graph.answerFor(senderOf(revoked), () => graphError(400, 190));

    const decisions = await runQueue(
      JOBS_QUEUE,
      [ok, echo, busy, revoked, { broken: true }].map((body) => ({ body })),
      PRODUCTION_SCHEDULE,
    );

    expect(
      decisions.map(({ acked, retried, delaySeconds }) => ({ acked, retried, delaySeconds })),
    ).toEqual([
      { acked: true, retried: false, delaySeconds: undefined },
      { acked: true, retried: false, delaySeconds: undefined },
      { acked: false, retried: true, delaySeconds: 60 },
      { acked: true, retried: false, delaySeconds: undefined },
      { acked: true, retried: false, delaySeconds: undefined },
    ]);
    expect(graph.callsTo(senderOf(ok))).toHaveLength(1);
    expect(graph.callsTo(senderOf(busy))).toHaveLength(1);
    expect(graph.callsTo(senderOf(revoked))).toHaveLength(1);
    expect(graph.calls).toHaveLength(3);
    expect(await eventRow(ok.eventId)).toMatchObject({ status: "processed" });
    expect(await eventRow(echo.eventId)).toMatchObject({ status: "skipped" });
    expect(await eventRow(busy.eventId)).toMatchObject({ status: "retrying" });
    expect(await eventRow(revoked.eventId)).toMatchObject({ status: "dead_lettered" });
    expect(await deadLettersOf(`unknown:${decisions[4]?.id}`)).toHaveLength(1);
  });
});

describe("job consumer, what it stores about failures", () => {
  it("stores no message text, sender id or token in audit entries or dead letters", async () => {
    const token = `IGQVJ${"x1Y2z3".repeat(30)}`;
    const sender = "17841499999999999";
    const text = "my HIV test came back, can I talk to the doctor?";
    const bindings = { INSTAGRAM_ACCESS_TOKEN: token };
    const echoed = `(#190) Invalid OAuth access token ${token} for recipient ${sender}`;

    const ok = await claimedJob(textMessage({ sender, text }));
    const retried = await claimedJob(textMessage({ sender, text }));
    const dead = await claimedJob(textMessage({ sender, text }));
    const rows = async (table: string, ids: string[]) => {
      const { results } = await env.DB.prepare(
        `SELECT * FROM ${table} WHERE event_id IN (${ids.map(() => "?").join(",")})`,
      )
        .bind(...ids)
        .all();
      return results;
    };

    await attemptJob(ok, 1, bindings);
    graph.answer(graphError(500, 2, { message: `(#2) ${echoed}` }));
    await attemptJob(retried, 1, bindings);
    graph.answer(graphError(400, 190, { message: echoed }));
    await attemptJob(dead, 1, bindings);

    expect(graph.calls.map((call) => call.authorization)).toEqual(Array(3).fill(`Bearer ${token}`));
    const ids = [ok.eventId, retried.eventId, dead.eventId];
    const stored = JSON.stringify([
      await rows("audit_entries", ids),
      await rows("dead_letters", ids),
      await rows("webhook_events", ids),
    ]);
    expect(stored).toContain("dead_lettered");
    expect(stored).toContain("Invalid OAuth access token");
    for (const secret of [token, sender, text, "HIV"]) expect(stored).not.toContain(secret);
  });

  it("redacts what it sent when Graph quotes it back, however short", async () => {
    const bindings = { INSTAGRAM_ACCESS_TOKEN: "tok-9" };
    const job = await claimedJob(textMessage({ sender: "u-77" }));
    graph.answer(
      graphError(400, 100, {
        message: `(#100) bad token tok-9 for u-77: "${PLACEHOLDER_REPLY}"`,
      }),
    );

    await attemptJob(job, 1, bindings);

    const [dead] = await deadLettersOf(job.eventId);
    expect(dead?.error_message).toContain("(#100) bad token [redacted] for [redacted]");
    for (const sent of ["tok-9", "u-77", PLACEHOLDER_REPLY]) {
      expect(dead?.error_message).not.toContain(sent);
    }
  });
});
