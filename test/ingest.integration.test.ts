import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_DELIVERY_BYTES } from "../src/webhooks/body";
import { TEST_BINDINGS } from "./support/bindings";
import {
  ACCOUNT_ID,
  callWorker,
  delivery,
  postWebhook,
  recordingQueue,
  signature,
  textMessage,
  WEBHOOK_URL,
} from "./support/deliveries";
import { insertEventRow } from "./support/jobs";

async function claimedEvents() {
  const { results } = await env.DB.prepare(
    "SELECT event_id, provider, status FROM webhook_events ORDER BY event_id",
  ).all<{ event_id: string; provider: string; status: string }>();
  return results;
}

async function countEvents(ids: string[]) {
  const rows = await claimedEvents();
  return rows.filter((row) => ids.includes(row.event_id)).length;
}

function handshake(query: Record<string, string>) {
  const url = new URL(WEBHOOK_URL);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return callWorker(new Request(url));
}

describe("GET /webhooks/instagram handshake", () => {
  it("echoes the challenge as plain text when the verify token matches", async () => {
    const response = await handshake({
      "hub.mode": "subscribe",
      "hub.verify_token": TEST_BINDINGS.META_VERIFY_TOKEN,
      "hub.challenge": "1158201444",
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await response.text()).toBe("1158201444");
  });

  it.each([
    ["a wrong token", { "hub.mode": "subscribe", "hub.verify_token": "guess" }],
    [
      "a token that only shares a prefix",
      { "hub.mode": "subscribe", "hub.verify_token": "test-verify" },
    ],
    ["no token", { "hub.mode": "subscribe" }],
    [
      "another mode",
      { "hub.mode": "unsubscribe", "hub.verify_token": TEST_BINDINGS.META_VERIFY_TOKEN },
    ],
  ])("refuses %s with 403 and does not echo the challenge", async (_, query) => {
    const response = await handshake({ ...query, "hub.challenge": "1158201444" });
    expect(response.status).toBe(403);
    expect(await response.text()).not.toContain("1158201444");
  });
});

describe("POST /webhooks/instagram signature", () => {
  const body = JSON.stringify(delivery([textMessage({ mid: "mid-signature" })]));

  async function expectRefused(headers: Record<string, string>, raw = body) {
    const { queue, sent } = recordingQueue();
    const response = await callWorker(
      new Request(WEBHOOK_URL, { method: "POST", headers, body: raw }),
      { JOBS: queue },
    );
    expect(response.status).toBe(401);
    const payload = await response.json<{ error: { message: string } }>();
    expect(payload.error.message).toContain("X-Hub-Signature-256");
    expect(sent).toHaveLength(0);
    expect(await countEvents(["mid-signature"])).toBe(0);
  }

  it("rejects a body without a signature", async () => {
    await expectRefused({ "content-type": "application/json" });
  });

  it.each([
    ["no algorithm prefix", "0123"],
    ["another algorithm", "sha1=0123456789abcdef0123456789abcdef01234567"],
    ["a short digest", "sha256=abcdef"],
    ["non-hex characters", `sha256=${"z".repeat(64)}`],
    ["a digest one character too long", `sha256=${"a".repeat(65)}`],
  ])("rejects a malformed signature: %s", async (_, header) => {
    await expectRefused({ "x-hub-signature-256": header });
  });

  it("rejects a body signed with another secret", async () => {
    await expectRefused({ "x-hub-signature-256": await signature(body, "another-secret") });
  });

  it("rejects a body whose signature does not match after one byte changed", async () => {
    const header = await signature(body);
    const changed = body.replace('"hi"', '"hj"');
    expect(changed).not.toBe(body);
    await expectRefused({ "x-hub-signature-256": header }, changed);
  });
});

describe("POST /webhooks/instagram validation", () => {
  it("answers 400 naming the problem when the body is not JSON", async () => {
    const response = await postWebhook("{not json");
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { status: 400, message: "body is not valid UTF-8 JSON" },
    });
  });

  it("answers 400 naming the field when `object` is not instagram", async () => {
    const response = await postWebhook({ object: "page", entry: [] });
    expect(response.status).toBe(400);
    const { error } = await response.json<{ error: { message: string } }>();
    expect(error.message).toContain('object: must be "instagram"');
  });

  it("answers 400 naming the field when an entry has no id", async () => {
    const response = await postWebhook({ object: "instagram", entry: [{ messaging: [] }] });
    expect(response.status).toBe(400);
    const { error } = await response.json<{ error: { message: string } }>();
    expect(error.message).toContain("entry.0.id");
  });

  it("tolerates fields Meta adds without notice", async () => {
    const { queue, sent } = recordingQueue();
    const item = { ...textMessage(), brand_new_field: { nested: true } };
    const body = { ...delivery([item]), another_new_field: 1 };
    const response = await postWebhook(body, { bindings: { JOBS: queue } });
    expect(response.status).toBe(200);
    expect(sent[0]?.content).toMatchObject({ brand_new_field: { nested: true } });
  });

  it("answers 413 to a body over the limit, before verifying or storing anything", async () => {
    const { queue, sent } = recordingQueue();
    const huge = JSON.stringify(delivery([textMessage({ text: "x".repeat(MAX_DELIVERY_BYTES) })]));
    const response = await postWebhook(huge, { bindings: { JOBS: queue } });
    expect(response.status).toBe(413);
    expect(sent).toHaveLength(0);
  });

  it("answers 413 to a body over the limit that declares no length", async () => {
    const chunk = new Uint8Array(256 * 1024).fill(32);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i <= MAX_DELIVERY_BYTES / chunk.byteLength; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const request = new Request(WEBHOOK_URL, {
      method: "POST",
      headers: { "x-hub-signature-256": `sha256=${"0".repeat(64)}` },
      body: stream,
    });
    expect((await callWorker(request)).status).toBe(413);
  });
});

describe("POST /webhooks/instagram dedupe and enqueue", () => {
  it("sends one job per event across entries and kinds", async () => {
    const { queue, sent } = recordingQueue();
    const read = {
      sender: { id: "user-r" },
      recipient: { id: ACCOUNT_ID },
      timestamp: 1,
      read: { mid: "mid-x" },
    };
    const reaction = {
      sender: { id: "user-r" },
      recipient: { id: ACCOUNT_ID },
      timestamp: 2,
      reaction: { mid: "mid-x", action: "react", reaction: "love" },
    };
    const body = {
      object: "instagram",
      entry: [
        {
          id: ACCOUNT_ID,
          time: 1,
          messaging: [textMessage({ mid: "mid-a" }), textMessage({ mid: "mid-b" })],
        },
        { id: ACCOUNT_ID, time: 2, messaging: [read, reaction] },
        { id: ACCOUNT_ID, time: 3, changes: [{ field: "comments", value: { id: "c1" } }] },
      ],
    };

    const response = await postWebhook(body, { bindings: { JOBS: queue } });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: 5, duplicates: 0 });
    expect(sent).toHaveLength(5);
    expect(sent.map((job) => job.eventId).slice(0, 2)).toEqual(["mid-a", "mid-b"]);
    expect(sent.slice(2).every((job) => /^sha256:[0-9a-f]{64}$/.test(job.eventId))).toBe(true);
    expect(new Set(sent.map((job) => job.correlationId)).size).toBe(5);
    expect(sent[4]).toMatchObject({ source: "changes", provider: "instagram", version: 1 });
    expect(sent[0]).toMatchObject({
      accountId: ACCOUNT_ID,
      source: "messaging",
      content: { message: { mid: "mid-a" } },
    });

    const rows = await claimedEvents();
    const ours = rows.filter((row) => sent.some((job) => job.eventId === row.event_id));
    expect(ours).toHaveLength(5);
    expect(ours.every((row) => row.status === "queued" && row.provider === "instagram")).toBe(true);
  });

  it("sends jobs once when the same delivery arrives twice", async () => {
    const { queue, sent } = recordingQueue();
    const body = delivery([
      textMessage({ mid: "mid-twice-1" }),
      { ...textMessage(), message: undefined, read: { mid: "m" } },
    ]);

    const first = await postWebhook(body, { bindings: { JOBS: queue } });
    const second = await postWebhook(body, { bindings: { JOBS: queue } });

    expect(await first.json()).toEqual({ received: 2, duplicates: 0 });
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({ received: 0, duplicates: 2 });
    expect(sent).toHaveLength(2);
  });

  it("dedupes a message Meta redelivers inside a differently batched delivery", async () => {
    const { queue, sent } = recordingQueue();
    const message = textMessage({ mid: "mid-rebatched" });
    await postWebhook(delivery([message]), { bindings: { JOBS: queue } });
    await postWebhook(delivery([textMessage({ mid: "mid-new" }), message]), {
      bindings: { JOBS: queue },
    });
    expect(sent.map((job) => job.eventId)).toEqual(["mid-rebatched", "mid-new"]);
  });

  it("sends one job when a delivery repeats an event", async () => {
    const { queue, sent } = recordingQueue();
    const message = textMessage({ mid: "mid-repeated" });
    const response = await postWebhook(delivery([message, message]), { bindings: { JOBS: queue } });
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("treats a deletion as an event of its own, though it repeats the message's mid", async () => {
    const { queue, sent } = recordingQueue();
    const message = textMessage({ mid: "mid-deleted-later" });
    const deletion = { ...message, message: { mid: "mid-deleted-later", is_deleted: true } };

    await postWebhook(delivery([message]), { bindings: { JOBS: queue } });
    await postWebhook(delivery([deletion]), { bindings: { JOBS: queue } });

    expect(sent).toHaveLength(2);
    expect(sent[1]?.eventId).toMatch(/^sha256:/);
    expect(sent[1]?.content).toMatchObject({ message: { is_deleted: true } });
  });

  it("answers 200 and sends nothing for a delivery without events", async () => {
    const { queue, sent } = recordingQueue();
    const response = await postWebhook(
      { object: "instagram", entry: [] },
      { bindings: { JOBS: queue } },
    );
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(0);
  });
});

describe("POST /webhooks/instagram when the queue fails", () => {
  it("answers 503 and leaves no claim behind, so a redelivery is enqueued", async () => {
    const broken = recordingQueue({ failAfterBatches: 0 });
    const body = delivery([
      textMessage({ mid: "mid-outage-1" }),
      textMessage({ mid: "mid-outage-2" }),
    ]);

    const response = await postWebhook(body, { bindings: { JOBS: broken.queue } });

    expect(response.status).toBe(503);
    expect(await countEvents(["mid-outage-1", "mid-outage-2"])).toBe(0);

    const healthy = recordingQueue();
    const redelivery = await postWebhook(body, { bindings: { JOBS: healthy.queue } });
    expect(redelivery.status).toBe(200);
    expect(healthy.sent.map((job) => job.eventId)).toEqual(["mid-outage-1", "mid-outage-2"]);
  });

  it("keeps the claims of batches already sent and releases the rest", async () => {
    const partly = recordingQueue({ failAfterBatches: 1 });
    const messages = Array.from({ length: 150 }, (_, i) => textMessage({ mid: `mid-bulk-${i}` }));
    const ids = messages.map((message) => message.message.mid);

    const response = await postWebhook(delivery(messages), { bindings: { JOBS: partly.queue } });

    expect(response.status).toBe(503);
    expect(partly.sent).toHaveLength(100);
    expect(await countEvents(ids)).toBe(100);

    const healthy = recordingQueue();
    const redelivery = await postWebhook(delivery(messages), { bindings: { JOBS: healthy.queue } });
    expect(await redelivery.json()).toEqual({ received: 50, duplicates: 100 });
    expect(healthy.sent.map((job) => job.eventId)).toEqual(ids.slice(100));
  });
});

describe("POST /webhooks/instagram and claims of other requests", () => {
  it("asks for a redelivery while another request's claim is unconfirmed", async () => {
    await insertEventRow({
      eventId: "mid-in-flight",
      correlationId: "other",
      status: "received",
      at: Date.now(),
    });
    const { queue, sent } = recordingQueue();

    const response = await postWebhook(delivery([textMessage({ mid: "mid-in-flight" })]), {
      bindings: { JOBS: queue },
    });

    expect(response.status).toBe(503);
    expect(sent).toHaveLength(0);
  });

  it("takes over a claim whose request died before enqueueing", async () => {
    await insertEventRow({
      eventId: "mid-abandoned",
      correlationId: "dead",
      status: "received",
      at: Date.now() - 10 * 60_000,
    });
    const { queue, sent } = recordingQueue();

    const response = await postWebhook(delivery([textMessage({ mid: "mid-abandoned" })]), {
      bindings: { JOBS: queue },
    });

    expect(response.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(["mid-abandoned"]);
  });
});
