import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { database } from "../src/db/client";
import type { Env } from "../src/env";
import { PLACEHOLDER_REPLY } from "../src/instagram/reply-policy";
import { writeDeadLetter } from "../src/jobs/dead-letter";
import { JobFailure } from "../src/jobs/failure";
import type { WebhookJob } from "../src/jobs/job";
import { importSealKey } from "../src/seal";
import { TEST_BINDINGS } from "./support/bindings";
import {
  callWorker,
  delivery,
  postWebhook,
  recordingQueue,
  textMessage,
} from "./support/deliveries";
import { graphError, installGraphStandIn } from "./support/graph-stand-in";
import { DEAD_LETTER_QUEUE, JOBS_QUEUE, jobFor, runQueue } from "./support/jobs";

const ADMIN_URL = "https://worker.test/admin";

interface DeadLetterView {
  id: string;
  eventId: string;
  provider: string;
  correlationId: string;
  status: "open" | "replayed";
  attempts: number;
  errorClass: string;
  errorCode: string;
  createdAt: string;
  replayedAt: string | null;
}
interface Page {
  deadLetters: DeadLetterView[];
  nextCursor: string | null;
}
interface EventView {
  event: { status: string; correlationId: string; lastErrorCode: string | null };
  replied: boolean;
  reply: { status: string; providerMessageId: string | null } | null;
  deadLetters: Array<{ id: string; status: string }>;
  timeline: Array<{ action: string; reason: string | null; correlationId: string }>;
  content?: { messageText: string | null; replyText: string | null };
}
interface BulkResult {
  matched: number;
  replayed: number;
  skipped: number;
  failed: number;
  results: Array<{ id: string; outcome: string; reason?: string }>;
}
interface ErrorBody {
  error: { status: number; message: string };
}

let graph: ReturnType<typeof installGraphStandIn>;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

/** Calls the admin API through the Worker's fetch entry point, with the admin token unless told. */
function admin(
  path: string,
  options: { method?: string; body?: unknown; token?: string | null; bindings?: Partial<Env> } = {},
) {
  const headers = new Headers();
  const token = options.token === undefined ? TEST_BINDINGS.ADMIN_TOKEN : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (body) headers.set("content-type", "application/json");
  const request = new Request(`${ADMIN_URL}${path}`, { method: options.method, headers, body });
  return callWorker(request, options.bindings);
}

async function adminJson<T>(path: string, options: Parameters<typeof admin>[1] = {}) {
  const response = await admin(path, options);
  return { status: response.status, body: await response.json<T>(), response };
}

/**
 * A dead letter made the way production makes one: Meta's delivery is received, and the job
 * dies in the real consumer, on a permanent Send API error or (`viaDlq`) after its retries.
 */
async function deadLetter(options: { text?: string; sender?: string; viaDlq?: boolean } = {}) {
  const ingest = recordingQueue();
  const message = textMessage({ text: options.text, sender: options.sender });
  await postWebhook(delivery([message]), { bindings: { JOBS: ingest.queue } });
  const job = ingest.sent[0] as WebhookJob;
  const id = `dl-${crypto.randomUUID()}`;
  if (options.viaDlq) {
    await runQueue(DEAD_LETTER_QUEUE, [{ id, body: job }]);
  } else {
    graph.answer(graphError(400, 100));
    await runQueue(JOBS_QUEUE, [{ id, body: job }]);
  }
  return { id, job };
}

/** A dead letter whose body was never a job, as the consumer stores one. */
async function invalidDeadLetter() {
  const id = `dl-invalid-${crypto.randomUUID()}`;
  await runQueue(JOBS_QUEUE, [{ id, body: { not: "a job" } }]);
  return id;
}

/** A moment strictly after everything stored so far, for `since` and `until` filters. */
async function mark(): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return new Date(Date.now()).toISOString();
}

async function deadLetterRow(id: string) {
  return env.DB.prepare("SELECT status, replayed_at FROM dead_letters WHERE id = ?")
    .bind(id)
    .first<{ status: string; replayed_at: number | null }>();
}

async function eventRow(eventId: string) {
  return env.DB.prepare("SELECT status, correlation_id FROM webhook_events WHERE event_id = ?")
    .bind(eventId)
    .first<{ status: string; correlation_id: string }>();
}

async function auditActions(eventId: string, action: string) {
  const { results } = await env.DB.prepare(
    "SELECT reason, correlation_id FROM audit_entries WHERE event_id = ? AND action = ?",
  )
    .bind(eventId, action)
    .all<{ reason: string | null; correlation_id: string }>();
  return results;
}

describe("admin authentication", () => {
  it("refuses a call without a token with 401 and a Bearer challenge", async () => {
    const { status, body, response } = await adminJson<ErrorBody>("/dead-letters", {
      token: null,
    });
    expect(status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="admin"/);
    expect(body.error.message).toContain("Authorization: Bearer");
  });

  it("refuses a wrong token, and one that only shares a prefix", async () => {
    for (const token of ["guess", "test-admin", `${TEST_BINDINGS.ADMIN_TOKEN}x`]) {
      const response = await admin("/dead-letters", { token });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    }
  });

  it("refuses another scheme than Bearer", async () => {
    const request = new Request(`${ADMIN_URL}/dead-letters`, {
      headers: { authorization: `Basic ${btoa(`admin:${TEST_BINDINGS.ADMIN_TOKEN}`)}` },
    });
    expect((await callWorker(request)).status).toBe(401);
  });

  it.each(["token", "access_token"])(
    "refuses the right token in the query string (?%s=), even beside a valid header",
    async (param) => {
      const query = `?${param}=${TEST_BINDINGS.ADMIN_TOKEN}`;
      const alone = await adminJson<ErrorBody>(`/dead-letters${query}`, { token: null });
      expect(alone.status).toBe(401);
      expect(alone.body.error.message).toContain("Authorization header");

      const withHeader = await admin(`/dead-letters${query}`);
      expect(withHeader.status).toBe(401);
    },
  );

  it.each([
    ["unset", undefined],
    ["blank", "  "],
  ])("refuses every call while ADMIN_TOKEN is %s", async (_, value) => {
    const { status, body } = await adminJson<ErrorBody>("/dead-letters", {
      bindings: { ADMIN_TOKEN: value },
    });
    expect(status).toBe(503);
    expect(body.error.message).toContain("ADMIN_TOKEN is not set");
  });

  it("sends nothing and changes nothing for a refused replay", async () => {
    const { id } = await deadLetter();
    const { queue, sent } = recordingQueue();
    const response = await admin(`/dead-letters/${id}/replay`, {
      method: "POST",
      token: "guess",
      bindings: { JOBS: queue },
    });
    expect(response.status).toBe(401);
    expect(sent).toHaveLength(0);
    expect((await deadLetterRow(id))?.status).toBe("open");
  });

  it("guards paths that do not exist, so they cannot be probed", async () => {
    expect((await admin("/no-such-thing", { token: null })).status).toBe(401);
    expect((await admin("/no-such-thing")).status).toBe(404);
  });

  it("answers an authenticated call and forbids caching it", async () => {
    const response = await admin("/dead-letters");
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
  });
});

describe("GET /admin/events/:eventId", () => {
  it("shows an answered event's status, timeline and reply, without any text", async () => {
    const ingest = recordingQueue();
    const message = textMessage({ text: "my private symptom", sender: "sender-4711" });
    await postWebhook(delivery([message]), { bindings: { JOBS: ingest.queue } });
    await runQueue(JOBS_QUEUE, [{ body: ingest.sent[0] }]);

    const { status, body } = await adminJson<EventView>(`/events/${message.message.mid}`);

    expect(status).toBe(200);
    expect(body.event.status).toBe("processed");
    expect(body.replied).toBe(true);
    expect(body.reply).toMatchObject({ status: "sent", providerMessageId: "graph-mid-1" });
    expect(body.timeline.map((entry) => entry.action)).toEqual(["processed"]);
    expect(body.content).toBeUndefined();
    const raw = JSON.stringify(body);
    expect(raw).not.toContain("my private symptom");
    expect(raw).not.toContain("sender-4711");
    expect(raw).not.toContain(PLACEHOLDER_REPLY);
  });

  it("opens the message and reply text only when asked, and audits that view", async () => {
    const ingest = recordingQueue();
    const message = textMessage({ text: "my private symptom" });
    const eventId = message.message.mid;
    await postWebhook(delivery([message]), { bindings: { JOBS: ingest.queue } });
    await runQueue(JOBS_QUEUE, [{ body: ingest.sent[0] }]);
    expect(await auditActions(eventId, "content_viewed")).toHaveLength(0);

    const { status, body } = await adminJson<EventView>(`/events/${eventId}?include=content`);

    expect(status).toBe(200);
    expect(body.content).toEqual({
      messageText: "my private symptom",
      replyText: PLACEHOLDER_REPLY,
    });
    expect(await auditActions(eventId, "content_viewed")).toEqual([
      { reason: "message_text", correlation_id: body.event.correlationId },
    ]);
    const after = await adminJson<EventView>(`/events/${eventId}`);
    expect(after.body.timeline.map((entry) => entry.action)).toEqual([
      "processed",
      "content_viewed",
    ]);
  });

  it("shows a dead-lettered event's last error and its dead letter", async () => {
    const { id, job } = await deadLetter();
    const { body } = await adminJson<EventView>(`/events/${job.eventId}`);
    expect(body.event.status).toBe("dead_lettered");
    expect(body.deadLetters).toEqual([expect.objectContaining({ id, status: "open" })]);
    expect(body.timeline.map((entry) => entry.action)).toEqual(["dead_lettered"]);
    expect(body.replied).toBe(false);
  });

  it("finds an event whose id needs escaping in a URL", async () => {
    const mid = "aWdf/ZAG+1:x==";
    await postWebhook(delivery([textMessage({ mid })]), {
      bindings: { JOBS: recordingQueue().queue },
    });
    const { status, body } = await adminJson<EventView>(`/events/${encodeURIComponent(mid)}`);
    expect(status).toBe(200);
    expect(body.event.status).toBe("queued");
  });

  it("answers 404 for an unknown event", async () => {
    const { status, body } = await adminJson<ErrorBody>("/events/mid-never-seen");
    expect(status).toBe(404);
    expect(body.error.message).toContain("mid-never-seen");
  });

  it("answers 400 naming the parameter for an unknown include or parameter", async () => {
    const include = await adminJson<ErrorBody>("/events/x?include=everything");
    expect(include.status).toBe(400);
    expect(include.body.error.message).toContain("include");
    const unknown = await adminJson<ErrorBody>("/events/x?incude=content");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain("incude");
  });
});

describe("GET /admin/dead-letters", () => {
  it("lists metadata only, never the payload", async () => {
    const since = await mark();
    const { id } = await deadLetter({ text: "my private symptom", sender: "sender-0815" });

    const { status, body } = await adminJson<Page>(`/dead-letters?since=${since}`);

    expect(status).toBe(200);
    expect(body.deadLetters).toEqual([
      expect.objectContaining({
        id,
        provider: "instagram",
        status: "open",
        errorClass: "permanent",
        errorCode: "graph_100",
        attempts: 1,
      }),
    ]);
    const raw = JSON.stringify(body);
    expect(raw).not.toContain("my private symptom");
    expect(raw).not.toContain("sender-0815");
    expect(raw).not.toContain("payload");
  });

  it("pages through every dead letter once, oldest first, with a stable cursor", async () => {
    const since = await mark();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await deadLetter()).id);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `since=${since}&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const { body }: { body: Page } = await adminJson<Page>(`/dead-letters?${query}`);
      seen.push(...body.deadLetters.map((row) => row.id));
      cursor = body.nextCursor;
      pages += 1;
      // A dead letter that arrives mid-way shows up on a later page, not as a repeat.
      if (pages === 1) ids.push((await deadLetter()).id);
    } while (cursor && pages < 10);

    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
  });

  it("filters by provider, error class, error code, status and date", async () => {
    const since = await mark();
    const permanent = await deadLetter();
    const exhausted = await deadLetter({ viaDlq: true });
    const invalid = await invalidDeadLetter();
    const until = await mark();
    const later = await deadLetter();

    const list = async (query: string) => {
      const { body } = await adminJson<Page>(`/dead-letters?since=${since}&${query}`);
      return body.deadLetters.map((row) => row.id);
    };
    expect(await list("errorClass=retryable")).toEqual([exhausted.id]);
    expect(await list("errorCode=retries_exhausted")).toEqual([exhausted.id]);
    expect(await list("errorCode=graph_100")).toEqual([permanent.id, later.id]);
    expect(await list("provider=unknown")).toEqual([invalid]);
    expect(await list(`until=${until}`)).toEqual([permanent.id, exhausted.id, invalid]);
    expect(await list("provider=instagram&errorClass=permanent")).toEqual([permanent.id, later.id]);

    await admin(`/dead-letters/${later.id}/replay`, {
      method: "POST",
      bindings: { JOBS: recordingQueue().queue },
    });
    expect(await list("errorCode=graph_100")).toEqual([permanent.id]);
    expect(await list("errorCode=graph_100&status=replayed")).toEqual([later.id]);
    expect(await list("errorCode=graph_100&status=all")).toEqual([permanent.id, later.id]);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=many", "limit"],
    ["limit=101", "limit"],
    ["errorClass=fatal", "errorClass"],
    ["errorCode=Graph 100", "errorCode"],
    ["provider=telegram", "provider"],
    ["status=closed", "status"],
    ["since=yesterday", "since"],
    ["cursor=not-a-cursor", "cursor"],
    ["page=2", "page"],
  ])("answers 400 naming the field for %s", async (query, field) => {
    const { status, body } = await adminJson<ErrorBody>(`/dead-letters?${query}`);
    expect(status).toBe(400);
    expect(body.error.message).toContain(field);
  });
});

describe("GET /admin/dead-letters/:id", () => {
  it("shows metadata, and the payload only when asked, auditing that view", async () => {
    const { id, job } = await deadLetter({ text: "my private symptom" });

    const plain = await adminJson<{ deadLetter: DeadLetterView }>(`/dead-letters/${id}`);
    expect(plain.body.deadLetter).toMatchObject({ id, eventId: job.eventId, status: "open" });
    expect(JSON.stringify(plain.body)).not.toContain("my private symptom");
    expect(await auditActions(job.eventId, "content_viewed")).toHaveLength(0);

    const opened = await adminJson<{ payload: WebhookJob }>(`/dead-letters/${id}?include=payload`);
    expect(opened.status).toBe(200);
    expect(opened.body.payload).toEqual(job);
    expect(await auditActions(job.eventId, "content_viewed")).toEqual([
      { reason: `dead_letter_payload:${id}`, correlation_id: job.correlationId },
    ]);
  });

  it("answers 404 for an unknown dead letter", async () => {
    expect((await admin("/dead-letters/dl-never")).status).toBe(404);
    expect((await admin("/dead-letters/dl-never?include=payload")).status).toBe(404);
  });
});

describe("POST /admin/dead-letters/:id/replay", () => {
  it("re-enqueues the job exactly once when asked twice", async () => {
    const { id, job } = await deadLetter();
    const { queue, sent } = recordingQueue();
    const replay = () =>
      adminJson<{ replayed: boolean; reason?: string; correlationId?: string }>(
        `/dead-letters/${id}/replay`,
        { method: "POST", bindings: { JOBS: queue } },
      );

    const first = await replay();
    const second = await replay();

    expect(first.status).toBe(200);
    expect(first.body.replayed).toBe(true);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ replayed: false, reason: "already_replayed" });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toEqual({ ...job, correlationId: first.body.correlationId });
    expect(first.body.correlationId).not.toBe(job.correlationId);

    expect(await deadLetterRow(id)).toMatchObject({ status: "replayed" });
    expect((await deadLetterRow(id))?.replayed_at).toEqual(expect.any(Number));
    expect(await eventRow(job.eventId)).toEqual({
      status: "queued",
      correlation_id: first.body.correlationId,
    });
    expect(await auditActions(job.eventId, "replayed")).toEqual([
      { reason: `dead_letter:${id}`, correlation_id: first.body.correlationId },
    ]);
  });

  it("re-enqueues the job exactly once under concurrent requests", async () => {
    const { id } = await deadLetter();
    const { queue, sent } = recordingQueue();

    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        adminJson<{ replayed: boolean }>(`/dead-letters/${id}/replay`, {
          method: "POST",
          bindings: { JOBS: queue },
        }),
      ),
    );

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.filter((answer) => answer.body.replayed)).toHaveLength(1);
    expect(sent).toHaveLength(1);
  });

  it("leaves the dead letter open when the queue refuses the job, for a later replay", async () => {
    const { id, job } = await deadLetter();
    const broken = recordingQueue({ failAfterBatches: 0 });

    const failed = await adminJson<ErrorBody>(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: broken.queue },
    });

    expect(failed.status).toBe(503);
    expect(failed.body.error.message).toContain("stays open");
    expect(await deadLetterRow(id)).toEqual({ status: "open", replayed_at: null });
    expect(await eventRow(job.eventId)).toEqual({
      status: "dead_lettered",
      correlation_id: job.correlationId,
    });
    expect(await auditActions(job.eventId, "replayed")).toHaveLength(0);

    const healthy = recordingQueue();
    const retried = await admin(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: healthy.queue },
    });
    expect(retried.status).toBe(200);
    expect(healthy.sent.map((sentJob) => sentJob.eventId)).toEqual([job.eventId]);
  });

  it("gets the event answered once when the replayed job runs", async () => {
    const { id, job } = await deadLetter();
    const { queue, sent } = recordingQueue();
    await admin(`/dead-letters/${id}/replay`, { method: "POST", bindings: { JOBS: queue } });

    await runQueue(JOBS_QUEUE, [{ body: sent[0] }]);
    await runQueue(JOBS_QUEUE, [{ body: sent[0], attempts: 2 }]);

    // The dead attempt's refused call, then the replay's reply; the second run finds the ledger.
    expect(graph.calls).toHaveLength(2);
    const { body } = await adminJson<EventView>(`/events/${job.eventId}`);
    expect(body.event.status).toBe("processed");
    expect(body.replied).toBe(true);
    expect(body.timeline.map((entry) => entry.action)).toEqual([
      "dead_lettered",
      "replayed",
      "processed",
      "processed",
    ]);
  });

  it("refuses with 422 to replay a dead letter that holds no job", async () => {
    const id = await invalidDeadLetter();
    const { queue, sent } = recordingQueue();
    const { status, body } = await adminJson<ErrorBody>(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: queue },
    });
    expect(status).toBe(422);
    expect(body.error.message).toContain("purge");
    expect(sent).toHaveLength(0);
    expect((await deadLetterRow(id))?.status).toBe("open");
  });

  it("refuses with 422 to replay a job too large for a queue message", async () => {
    const job = jobFor(textMessage({ text: "x".repeat(130_000) }));
    const id = `dl-large-${crypto.randomUUID()}`;
    const sealKey = await importSealKey(TEST_BINDINGS.DATA_ENCRYPTION_KEY);
    const failure = new JobFailure("permanent", "job_too_large", "the event is too large");
    await writeDeadLetter(database(env.DB), sealKey, { id, body: job, attempts: 0, failure });
    const { queue, sent } = recordingQueue();

    const { status, body } = await adminJson<ErrorBody>(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: queue },
    });

    expect(status).toBe(422);
    expect(body.error.message).toContain("too large");
    expect(sent).toHaveLength(0);
    expect((await deadLetterRow(id))?.status).toBe("open");
  });

  it("leaves a dead letter open that the configured key cannot open", async () => {
    const { id } = await deadLetter();
    const { queue, sent } = recordingQueue();

    const { status, body } = await adminJson<ErrorBody>(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: queue, DATA_ENCRYPTION_KEY: btoa("another key of thirty-two bytes!") },
    });

    expect(status).toBe(500);
    expect(body.error.message).toContain("DATA_ENCRYPTION_KEY");
    expect(sent).toHaveLength(0);
    expect((await deadLetterRow(id))?.status).toBe("open");
  });

  it("answers 404 for an unknown dead letter", async () => {
    const { queue, sent } = recordingQueue();
    const response = await admin("/dead-letters/dl-never/replay", {
      method: "POST",
      bindings: { JOBS: queue },
    });
    expect(response.status).toBe(404);
    expect(sent).toHaveLength(0);
  });
});

describe("POST /admin/dead-letters/replay", () => {
  it("replays each open dead letter that matches and counts the outcomes", async () => {
    const since = await mark();
    const first = await deadLetter();
    const second = await deadLetter();
    const third = await deadLetter();
    const invalid = await invalidDeadLetter();
    const { queue, sent } = recordingQueue();
    await admin(`/dead-letters/${first.id}/replay`, { method: "POST", bindings: { JOBS: queue } });

    const { status, body } = await adminJson<BulkResult>("/dead-letters/replay", {
      method: "POST",
      body: { since },
      bindings: { JOBS: queue },
    });

    expect(status).toBe(200);
    expect(body).toMatchObject({ matched: 3, replayed: 2, skipped: 1, failed: 0 });
    expect(body.results.find((result) => result.id === invalid)).toMatchObject({
      outcome: "skipped",
      reason: "invalid_job",
    });
    expect(sent.map((job) => job.eventId)).toEqual([
      first.job.eventId,
      second.job.eventId,
      third.job.eventId,
    ]);
  });

  it("keeps to the filter and to max", async () => {
    const since = await mark();
    const a = await deadLetter();
    await deadLetter({ viaDlq: true });
    const c = await deadLetter();
    const { queue, sent } = recordingQueue();

    const first = await adminJson<BulkResult>("/dead-letters/replay", {
      method: "POST",
      body: { since, errorCode: "graph_100", max: 1 },
      bindings: { JOBS: queue },
    });
    const rest = await adminJson<BulkResult>("/dead-letters/replay", {
      method: "POST",
      body: { since, errorCode: "graph_100" },
      bindings: { JOBS: queue },
    });

    expect(first.body).toMatchObject({ matched: 1, replayed: 1 });
    expect(rest.body).toMatchObject({ matched: 1, replayed: 1 });
    expect(sent.map((job) => job.eventId)).toEqual([a.job.eventId, c.job.eventId]);
  });

  it("counts failures and leaves them open when the queue refuses", async () => {
    const since = await mark();
    const { id } = await deadLetter();
    const broken = recordingQueue({ failAfterBatches: 0 });

    const { body } = await adminJson<BulkResult>("/dead-letters/replay", {
      method: "POST",
      body: { since },
      bindings: { JOBS: broken.queue },
    });

    expect(body).toMatchObject({ matched: 1, replayed: 0, skipped: 0, failed: 1 });
    expect(body.results[0]).toMatchObject({ id, outcome: "failed", reason: "queue_unavailable" });
    expect((await deadLetterRow(id))?.status).toBe("open");
  });

  it("sends each job once when two bulk replays overlap", async () => {
    const since = await mark();
    for (let i = 0; i < 4; i++) await deadLetter();
    const { queue, sent } = recordingQueue();

    const answers = await Promise.all(
      [1, 2].map(() =>
        adminJson<BulkResult>("/dead-letters/replay", {
          method: "POST",
          body: { since },
          bindings: { JOBS: queue },
        }),
      ),
    );

    expect(answers.reduce((sum, answer) => sum + answer.body.replayed, 0)).toBe(4);
    expect(new Set(sent.map((job) => job.eventId)).size).toBe(4);
    expect(sent).toHaveLength(4);
  });

  it.each([
    [{ max: 0 }, "max"],
    [{ max: 101 }, "max"],
    [{ errorClass: "fatal" }, "errorClass"],
    [{ since: "last week" }, "since"],
    [{ everything: true }, "everything"],
  ])("answers 400 naming the field for %j", async (filter, field) => {
    const { status, body } = await adminJson<ErrorBody>("/dead-letters/replay", {
      method: "POST",
      body: filter,
    });
    expect(status).toBe(400);
    expect(body.error.message).toContain(field);
  });

  it("answers 400 to a body that is not JSON", async () => {
    const request = new Request(`${ADMIN_URL}/dead-letters/replay`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
      body: "{since:",
    });
    expect((await callWorker(request)).status).toBe(400);
  });
});

describe("DELETE /admin/dead-letters/:id", () => {
  it("purges the dead letter and its payload, and audits it", async () => {
    const { id, job } = await deadLetter();

    const { status, body } = await adminJson<{ purged: boolean; deadLetter: DeadLetterView }>(
      `/dead-letters/${id}`,
      { method: "DELETE" },
    );

    expect(status).toBe(200);
    expect(body).toMatchObject({ purged: true, deadLetter: { id, eventId: job.eventId } });
    expect(await deadLetterRow(id)).toBeNull();
    expect(await auditActions(job.eventId, "dead_letter_purged")).toEqual([
      { reason: `dead_letter:${id}`, correlation_id: job.correlationId },
    ]);
    expect((await admin(`/dead-letters/${id}`)).status).toBe(404);
  });

  it("answers 404 for an unknown or already purged dead letter, auditing nothing", async () => {
    const { id, job } = await deadLetter();
    await admin(`/dead-letters/${id}`, { method: "DELETE" });

    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(404);
    expect((await admin("/dead-letters/dl-never", { method: "DELETE" })).status).toBe(404);
    expect(await auditActions(job.eventId, "dead_letter_purged")).toHaveLength(1);
    const { queue, sent } = recordingQueue();
    const replay = await admin(`/dead-letters/${id}/replay`, {
      method: "POST",
      bindings: { JOBS: queue },
    });
    expect(replay.status).toBe(404);
    expect(sent).toHaveLength(0);
  });
});
