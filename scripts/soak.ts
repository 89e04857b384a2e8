/**
 * `npm run soak`: thousands of events through the real Worker under `wrangler dev`, against a
 * Graph stand-in that fails about a fifth of first attempts in mixed ways. Duplicates, echoes,
 * reads, batches, bad signatures and failing recipients are mixed in; retry delays are 1 s.
 * It checks the product's promise — every deliverable event answered exactly once, every
 * failing one a dead letter, nothing else answered — prints a verdict per check and exits
 * non-zero on any violation. Bounded: --events (default 2000) and --timeout seconds.
 */
import { createHmac, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { startGraphStandIn } from "./graph-stand-in.ts";
import { startLocalWorker } from "./local-worker.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    timeout: { type: "string", default: "240" },
    port: { type: "string", default: "8877" },
    seed: { type: "string", default: "1" },
  },
});
const EVENTS = Number(values.events);
const CONCURRENCY = Number(values.concurrency);
const DEADLINE = Date.now() + Number(values.timeout) * 1000;
const ACCOUNT_ID = "17841400000000001";
const SECRET = "soak-app-secret";
const ADMIN_TOKEN = "soak-admin-token";

type Expectation = "reply" | "none" | "dead-permanent" | "dead-retryable";
interface Planned {
  eventId: string;
  sender: string;
  expect: Expectation;
}
interface Delivery {
  body: string;
  signature: string;
  events: Planned[];
  signed: boolean;
}

// A small deterministic generator, so that a run can be repeated exactly.
let state = Number(values.seed) >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}

function planEvent(index: number): { item: Record<string, unknown>; planned: Planned } {
  const roll = random();
  const mid = `soak-${index}-${randomUUID()}`;
  const base = (sender: string, message: Record<string, unknown>) => ({
    sender: { id: sender },
    recipient: { id: ACCOUNT_ID },
    timestamp: Date.now(),
    message: { mid, text: `soak message ${index}`, ...message },
  });
  if (roll < 0.08) {
    const user = `echo-user-${index}`;
    const item = { ...base(ACCOUNT_ID, { is_echo: true }), recipient: { id: user } };
    return { item, planned: { eventId: mid, sender: user, expect: "none" } };
  }
  if (roll < 0.14) {
    const user = `reader-${index}`;
    const item = {
      sender: { id: user },
      recipient: { id: ACCOUNT_ID },
      timestamp: Date.now(),
      read: { mid },
    };
    return { item, planned: { eventId: "", sender: user, expect: "none" } };
  }
  if (roll < 0.18) {
    const user = `fail-190-soak-${index}`;
    return {
      item: base(user, {}),
      planned: { eventId: mid, sender: user, expect: "dead-permanent" },
    };
  }
  if (roll < 0.2) {
    const user = `fail-500-soak-${index}`;
    return {
      item: base(user, {}),
      planned: { eventId: mid, sender: user, expect: "dead-retryable" },
    };
  }
  const user = `user-${index}`;
  return { item: base(user, {}), planned: { eventId: mid, sender: user, expect: "reply" } };
}

function planDeliveries(): Delivery[] {
  const deliveries: Delivery[] = [];
  let index = 0;
  while (index < EVENTS) {
    const size = Math.min(1 + Math.floor(random() * 8), EVENTS - index);
    const signed = random() >= 0.05;
    const planned: Planned[] = [];
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < size; i++, index++) {
      const { item, planned: plan } = planEvent(index);
      items.push(item);
      planned.push(signed ? plan : { ...plan, sender: plan.sender, expect: "none" });
    }
    const body = JSON.stringify({
      object: "instagram",
      entry: [{ id: ACCOUNT_ID, time: Date.now(), messaging: items }],
    });
    const digest = createHmac("sha256", signed ? SECRET : "not-the-secret")
      .update(body)
      .digest("hex");
    deliveries.push({ body, signature: `sha256=${digest}`, events: planned, signed });
    // Meta sometimes delivers the same thing twice.
    if (random() < 0.1) deliveries.push(deliveries[deliveries.length - 1] as Delivery);
  }
  return deliveries;
}

const violations: string[] = [];
/** Checks of dead letters share one bounded wait, so that many missing ones cannot stall the run. */
let checksUntil = 0;
function verdict(ok: boolean, text: string) {
  console.log(`${ok ? "PASS" : "FAIL"} ${text}`);
  if (!ok) violations.push(text);
}

const standIn = await startGraphStandIn({
  port: Number(values.port) + 1,
  quiet: true,
  failFirstRate: 0.2,
});
const worker = await startLocalWorker({
  verbose: process.env.SOAK_VERBOSE === "1",
  port: Number(values.port),
  inspectorPort: Number(values.port) + 2,
  vars: {
    META_APP_SECRET: SECRET,
    META_VERIFY_TOKEN: "soak-verify-token",
    INSTAGRAM_ACCESS_TOKEN: "soak-access-token",
    DATA_ENCRYPTION_KEY: "c29hay1vbmx5LWtleS0zMi1ieXRlcy1sb25nLWtleSE=",
    ADMIN_TOKEN,
    GRAPH_API_BASE_URL: standIn.url,
    RETRY_DELAYS_SECONDS: "1,1,1",
  },
});

try {
  const deliveries = planDeliveries();
  const started = Date.now();
  const statuses = new Map<number, number>();
  let unexpected = 0;

  // Send like Meta: a delivery answered 5xx is sent again shortly after.
  let next = 0;
  async function sender() {
    while (next < deliveries.length && Date.now() < DEADLINE) {
      const delivery = deliveries[next++] as Delivery;
      for (let attempt = 1; attempt <= 10; attempt++) {
        const response = await fetch(`${worker.url}/webhooks/instagram`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": delivery.signature,
          },
          body: delivery.body,
        }).catch(() => null);
        const status = response?.status ?? 0;
        await response?.arrayBuffer();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500 || status === 0) {
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
          continue;
        }
        if (status !== (delivery.signed ? 200 : 401)) unexpected += 1;
        break;
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, sender));
  const sendSeconds = (Date.now() - started) / 1000;

  const planned = new Map<string, Planned>();
  for (const delivery of deliveries)
    for (const event of delivery.events) planned.set(event.sender, event);
  const all = [...planned.values()];
  const expectReply = all.filter((event) => event.expect === "reply");
  const expectPermanent = all.filter((event) => event.expect === "dead-permanent");
  const expectRetryable = all.filter((event) => event.expect === "dead-retryable");

  // Wait for the pipeline to settle: every expected reply and every failing recipient's calls.
  const repliesTo = () => {
    const counts = new Map<string, number>();
    for (const reply of standIn.replies)
      counts.set(reply.recipientId, (counts.get(reply.recipientId) ?? 0) + 1);
    return counts;
  };
  const settled = () => {
    const replies = repliesTo();
    return (
      expectReply.every((event) => (replies.get(event.sender) ?? 0) >= 1) &&
      expectPermanent.every((event) => (standIn.calls.get(event.sender) ?? 0) >= 1) &&
      expectRetryable.every((event) => (standIn.calls.get(event.sender) ?? 0) >= 4)
    );
  };
  while (!settled() && Date.now() < DEADLINE)
    await new Promise((resolve) => setTimeout(resolve, 500));
  // A little longer, so that a late second reply would be seen.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const settleSeconds = (Date.now() - started) / 1000;

  const replies = repliesTo();
  const twice = expectReply.filter((event) => (replies.get(event.sender) ?? 0) > 1);
  const missing = expectReply.filter((event) => (replies.get(event.sender) ?? 0) === 0);
  const wrongly = [...replies.keys()].filter(
    (recipient) => planned.get(recipient)?.expect !== "reply",
  );

  console.log(
    `soak: ${all.length} events in ${deliveries.length} deliveries sent in ${sendSeconds.toFixed(1)} s, settled after ${settleSeconds.toFixed(1)} s`,
  );
  console.log(
    `soak: responses ${JSON.stringify(Object.fromEntries(statuses))}, stand-in replies ${standIn.replies.length}`,
  );
  verdict(
    unexpected === 0,
    `every delivery answered 200, or 401 when its signature was wrong (${unexpected} unexpected)`,
  );
  verdict(
    missing.length === 0,
    `every deliverable event replied to (${expectReply.length - missing.length}/${expectReply.length})`,
  );
  verdict(twice.length === 0, `no event replied to twice (${twice.length} twice)`);
  verdict(
    wrongly.length === 0,
    `nothing replied to that should not be: echoes, reads, bad signatures, failing recipients (${wrongly.length})`,
  );

  const permanentCalls = expectPermanent.filter((event) => standIn.calls.get(event.sender) !== 1);
  verdict(
    permanentCalls.length === 0,
    `permanently refused recipients tried exactly once (${expectPermanent.length - permanentCalls.length}/${expectPermanent.length})`,
  );
  const retryableCalls = expectRetryable.filter((event) => standIn.calls.get(event.sender) !== 4);
  verdict(
    retryableCalls.length === 0,
    `always-failing recipients tried exactly 4 times (${expectRetryable.length - retryableCalls.length}/${expectRetryable.length})`,
  );

  let deadLettered = 0;
  for (const event of [...expectPermanent, ...expectRetryable]) {
    const status = await eventStatus(event.eventId);
    if (status === "dead_lettered") deadLettered += 1;
    else console.log(`soak: event ${event.eventId} (${event.expect}) is ${status ?? "not found"}`);
  }
  const failing = expectPermanent.length + expectRetryable.length;
  verdict(
    deadLettered === failing,
    `every failing event is a dead letter (${deadLettered}/${failing})`,
  );
} finally {
  await worker.stop();
  await standIn.close();
}

async function eventStatus(eventId: string): Promise<string | undefined> {
  checksUntil ||= Date.now() + 30_000;
  for (let attempt = 0; attempt < 20 && (attempt === 0 || Date.now() < checksUntil); attempt++) {
    const response = await fetch(`${worker.url}/admin/events/${encodeURIComponent(eventId)}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    if (response.ok) {
      const body = (await response.json()) as { event?: { status?: string } };
      if (body.event?.status === "dead_lettered" || attempt === 19 || Date.now() >= checksUntil) {
        return body.event?.status;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return undefined;
}

console.log(
  violations.length === 0
    ? "soak: all checks passed"
    : `soak: ${violations.length} check(s) failed`,
);
process.exit(violations.length === 0 ? 0 : 1);
