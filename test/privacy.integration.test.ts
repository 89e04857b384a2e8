import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WebhookJob } from "../src/jobs/job";
import { log } from "../src/log";
import {
  callWorker,
  delivery,
  recordingQueue,
  signature,
  textMessage,
  WEBHOOK_URL,
} from "./support/deliveries";
import { captureLogs, faultyD1, unavailableD1 } from "./support/faults";
import { ALERT_URL, graphError, installGraphStandIn } from "./support/graph-stand-in";
import { DEAD_LETTER_QUEUE, JOBS_QUEUE, runQueue } from "./support/jobs";

/**
 * Distinctive values in every place personal data or a secret can enter: message text, the
 * sender's id (shaped like a real Instagram-scoped id) and each secret. None may reach a log.
 */
const TEXT = "mk-text-biopsy-result-3e91";
const SENDER = "7312995804417731";
const SECRETS = {
  META_APP_SECRET: "mk-app-secret-5c1d0e",
  META_VERIFY_TOKEN: "mk-verify-token-88e0a1",
  // As long as a real one: the stored error fields mask token-shaped strings by their shape.
  INSTAGRAM_ACCESS_TOKEN: `IGAAmk${"AcCeSs9f27".repeat(16)}`,
  ADMIN_TOKEN: "mk-admin-token-2b7f44",
  // A valid key whose base64 spells a marker.
  DATA_ENCRYPTION_KEY: "MARKERkeyMARKERkeyMARKERkeyMARKERkeyMARKERk=",
} as const;
const BINDINGS = { ...SECRETS, ALERT_WEBHOOK_URL: ALERT_URL };
const MARKERS = [TEXT, SENDER, ...Object.values(SECRETS), "MARKERkey"];

/** An error message quoting what it failed on, as database drivers' messages do. */
const LEAKY_ERROR = `D1_ERROR: failed on params ${SENDER}, ${TEXT}`;

let logs: ReturnType<typeof captureLogs>;
let graph: ReturnType<typeof installGraphStandIn>;
beforeEach(() => {
  logs = captureLogs();
  graph = installGraphStandIn();
});
afterEach(() => {
  graph.restore();
  logs.restore();
});

/** Fails on any captured line holding a marker, and on any expected message not captured. */
function expectLogsClean(expectedMessages: string[]) {
  expect(logs.containing(MARKERS)).toEqual([]);
  const messages = logs.lines.map((line) => {
    try {
      return (JSON.parse(line) as { message?: string }).message;
    } catch {
      return line;
    }
  });
  for (const message of expectedMessages)
    expect(messages, logs.lines.join("\n")).toContain(message);
}

let sequence = 0;
function privateMessage() {
  sequence += 1;
  return textMessage({ mid: `mid-private-${sequence}`, text: TEXT, sender: SENDER });
}

async function post(body: string, bindings: Record<string, unknown> = {}, secret?: string) {
  const headers = {
    "content-type": "application/json",
    "x-hub-signature-256": await signature(body, secret ?? SECRETS.META_APP_SECRET),
  };
  return callWorker(new Request(WEBHOOK_URL, { method: "POST", headers, body }), {
    ...BINDINGS,
    ...bindings,
  });
}

/** Receives a private message through the real route and returns the job it enqueued. */
async function receive(): Promise<WebhookJob> {
  const { queue, sent } = recordingQueue();
  const response = await post(JSON.stringify(delivery([privateMessage()])), { JOBS: queue });
  expect(response.status).toBe(200);
  const [job] = sent;
  if (!job) throw new Error("no job was enqueued");
  return job;
}

function consume(queue: string, job: unknown, extra: Record<string, unknown> = {}) {
  return runQueue(queue, [{ body: job }], { ...BINDINGS, ...extra });
}

describe("the log capture", () => {
  it("sees the Worker's own log lines, and a marker in one of them", async () => {
    log.info("probe", { reason: TEXT });
    expect(logs.containing(MARKERS)).toHaveLength(1);
    logs.lines.length = 0;

    await consume(JOBS_QUEUE, await receive());

    expectLogsClean(["event enqueued", "delivery received", "job done"]);
  });
});

describe("nothing personal or secret in the logs", () => {
  it("while answering Meta's handshake, right token or wrong", async () => {
    for (const token of [SECRETS.META_VERIFY_TOKEN, `${SECRETS.META_VERIFY_TOKEN}x`, TEXT]) {
      const url = new URL(WEBHOOK_URL);
      url.search = new URLSearchParams({
        "hub.mode": "subscribe",
        "hub.verify_token": token,
        "hub.challenge": "42",
      }).toString();
      await callWorker(new Request(url), BINDINGS);
    }
    expectLogsClean([]);
  });

  it("while refusing, rejecting and accepting deliveries", async () => {
    const body = JSON.stringify(delivery([privateMessage()]));
    expect((await post(body, {}, "not-the-secret")).status).toBe(401);
    expect((await post(`{"text":"${TEXT}"`)).status).toBe(400);
    expect((await post(JSON.stringify({ object: TEXT, entry: [] }))).status).toBe(400);
    expect((await post(body, { JOBS: recordingQueue().queue })).status).toBe(200);

    expectLogsClean(["event enqueued", "delivery received"]);
  });

  it("while D1, the queue or the configuration fail at the receiving route", async () => {
    const body = () => JSON.stringify(delivery([privateMessage()]));
    const down = unavailableD1(LEAKY_ERROR).db;
    const brokenQueue = {
      sendBatch: () => Promise.reject(new Error(`Queue send failed for ${SENDER}: ${TEXT}`)),
    } as unknown as Queue<WebhookJob>;

    expect((await post(body(), { DB: down })).status).toBeGreaterThanOrEqual(500);
    expect((await post(body(), { JOBS: brokenQueue })).status).toBe(503);
    const misconfigured = { DATA_ENCRYPTION_KEY: TEXT };
    expect((await post(body(), misconfigured)).status).toBe(500);

    expectLogsClean(["request failed", "enqueue failed"]);
  });

  it("while keeping an oversized event as a dead letter, and in the alert", async () => {
    const big = { ...privateMessage(), padding: TEXT.repeat(10_000) };
    const response = await post(JSON.stringify(delivery([big])), {
      JOBS: recordingQueue().queue,
    });

    expect(response.status).toBe(200);
    expect(graph.alerts).toHaveLength(1);
    expect(JSON.stringify(graph.alerts)).not.toMatch(new RegExp(MARKERS.join("|")));
    expectLogsClean(["job dead-lettered"]);
  });

  it("while replying, retrying and dead-lettering jobs", async () => {
    // Graph's error messages can quote what it was sent: the recipient and the token.
    const echo = `(#100) Cannot send to ${SENDER} with ${SECRETS.INSTAGRAM_ACCESS_TOKEN}`;
    graph.answer(
      graphError(500, 2, { message: echo }),
      "timeout",
      "reset",
      graphError(400, 100, { message: echo }),
    );
    const jobs = await Promise.all([receive(), receive(), receive(), receive(), receive()]);

    for (const job of jobs) await consume(JOBS_QUEUE, job);
    await consume(JOBS_QUEUE, { version: 1, eventId: TEXT, sender: SENDER });

    expect(graph.calls).toHaveLength(5);
    expectLogsClean(["job retry scheduled", "job dead-lettered", "job done"]);
  });

  it("while D1 or the configuration fail in the job consumer", async () => {
    const job = await receive();
    await consume(JOBS_QUEUE, job, { DB: unavailableD1(LEAKY_ERROR).db });
    const lateFailure = faultyD1((call) => (call.index === 0 ? undefined : "unavailable"), {
      errorMessage: LEAKY_ERROR,
    });
    await consume(JOBS_QUEUE, job, { DB: lateFailure.db });
    await consume(JOBS_QUEUE, job, { DATA_ENCRYPTION_KEY: TEXT });

    expectLogsClean([
      "recording a retry failed",
      "job retry scheduled",
      "job consumer misconfigured",
    ]);
  });

  it("while storing dead letters, failing to, and alerting operators", async () => {
    const job = await receive();
    await consume(DEAD_LETTER_QUEUE, job, { DB: unavailableD1(LEAKY_ERROR).db });
    await consume(DEAD_LETTER_QUEUE, job, { DATA_ENCRYPTION_KEY: TEXT });
    await consume(DEAD_LETTER_QUEUE, job);
    await consume(DEAD_LETTER_QUEUE, { not: "a job", text: TEXT });

    expect(graph.alerts.length).toBeGreaterThan(0);
    expect(JSON.stringify(graph.alerts)).not.toMatch(new RegExp(MARKERS.join("|")));
    expectLogsClean([
      "dead letter write failed",
      "dead-letter consumer misconfigured",
      "job dead-lettered",
    ]);
  });

  it("while operators look up, replay and purge through /admin", async () => {
    const job = await receive();
    await consume(JOBS_QUEUE, job);
    const dead = await receive();
    await consume(DEAD_LETTER_QUEUE, dead);
    const row = await env.DB.prepare("SELECT id FROM dead_letters WHERE event_id = ?")
      .bind(dead.eventId)
      .first<{ id: string }>();
    const id = encodeURIComponent(row?.id ?? "missing");

    const admin = (path: string, init: RequestInit = {}, token: string = SECRETS.ADMIN_TOKEN) =>
      callWorker(
        new Request(`https://worker.test/admin${path}`, {
          ...init,
          headers: { authorization: `Bearer ${token}`, ...init.headers },
        }),
        { ...BINDINGS, JOBS: recordingQueue().queue },
      );
    const eventPath = `/events/${encodeURIComponent(job.eventId)}`;

    expect((await admin(`${eventPath}?include=content`)).status).toBe(200);
    expect((await admin("/dead-letters")).status).toBe(200);
    expect((await admin(`/dead-letters/${id}?include=payload`)).status).toBe(200);
    expect((await admin(`/dead-letters/${id}/replay`, { method: "POST" })).status).toBe(200);
    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(200);
    expect((await admin(eventPath, {}, `${SECRETS.ADMIN_TOKEN}x`)).status).toBe(401);
    expect((await admin(`${eventPath}?token=${SECRETS.ADMIN_TOKEN}`, {}, "")).status).toBe(401);

    expectLogsClean([
      "content viewed",
      "dead letter replayed",
      "dead letter purged",
      "admin token sent in a URL",
    ]);
  });

  it("keeps no text of a message its sender deleted, however Meta names the deletion", async () => {
    const { queue, sent } = recordingQueue();
    const original = privateMessage();
    const deletion = {
      ...original,
      timestamp: original.timestamp + 1_000,
      // Meta names a deletion by the id of the message it deletes.
      message: { mid: original.message.mid, is_deleted: true },
    };

    await post(JSON.stringify(delivery([original])), { JOBS: queue });
    await consume(JOBS_QUEUE, sent[0]);
    const response = await post(JSON.stringify(delivery([deletion])), { JOBS: queue });

    expect(await response.json()).toEqual({ received: 1, duplicates: 0 });
    expect(sent).toHaveLength(2);
    await consume(JOBS_QUEUE, sent[1]);
    const stored = await env.DB.prepare(
      "SELECT text_sealed FROM messages WHERE provider_message_id = ?",
    )
      .bind(original.message.mid)
      .first<{ text_sealed: string | null }>();
    expect(stored).toEqual({ text_sealed: null });

    // A redelivered deletion is still a duplicate.
    const again = await post(JSON.stringify(delivery([deletion])), { JOBS: queue });
    expect(await again.json()).toEqual({ received: 0, duplicates: 1 });
  });

  it("nor in what those paths stored beside the sealed columns", async () => {
    const tables = {
      webhook_events: "*",
      audit_entries: "*",
      dead_letters:
        "id, event_id, provider, correlation_id, error_class, error_code, error_message",
    };
    for (const [table, columns] of Object.entries(tables)) {
      const { results } = await env.DB.prepare(`SELECT ${columns} FROM ${table}`).all();
      const stored = JSON.stringify(results);
      for (const marker of MARKERS)
        expect(stored, `${table} holds ${marker}`).not.toContain(marker);
    }
  });
});
