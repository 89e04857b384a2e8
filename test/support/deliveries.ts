import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { bytesToHex, utf8 } from "../../src/bytes";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import type { WebhookJob } from "../../src/jobs/job";
import { TEST_BINDINGS } from "./bindings";

export const ACCOUNT_ID = "17841400000000001";
export const WEBHOOK_URL = "https://worker.test/webhooks/instagram";

let sequence = 0;

/** A messaging item carrying a text message from a user to the business account. */
export function textMessage(overrides: { mid?: string; text?: string; sender?: string } = {}) {
  sequence += 1;
  return {
    sender: { id: overrides.sender ?? `user-${sequence}` },
    recipient: { id: ACCOUNT_ID },
    timestamp: Date.now(),
    message: { mid: overrides.mid ?? `mid-${crypto.randomUUID()}`, text: overrides.text ?? "hi" },
  };
}

export function delivery(...entries: Array<Record<string, unknown>[]>) {
  return {
    object: "instagram",
    entry: entries.map((messaging, index) => ({
      id: ACCOUNT_ID,
      time: Date.now() + index,
      messaging,
    })),
  };
}

export async function signature(
  body: string | Uint8Array,
  secret: string = TEST_BINDINGS.META_APP_SECRET,
) {
  const key = await crypto.subtle.importKey(
    "raw",
    utf8(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const bytes = typeof body === "string" ? utf8(body) : body;
  return `sha256=${bytesToHex(await crypto.subtle.sign("HMAC", key, bytes))}`;
}

/** A queue producer that keeps what it is sent, or fails as a broken queue would. */
export function recordingQueue(options: { failAfterBatches?: number } = {}) {
  const sent: WebhookJob[] = [];
  let batches = 0;
  const queue = {
    async send(body: WebhookJob) {
      sent.push(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<WebhookJob>>) {
      if (options.failAfterBatches !== undefined && batches >= options.failAfterBatches) {
        throw new Error("Queue sendBatch failed: simulated outage");
      }
      batches += 1;
      for (const message of messages) sent.push(message.body);
    },
  } as unknown as Queue<WebhookJob>;
  return { queue, sent };
}

/** Calls the Worker's real fetch entry point and waits for its background work. */
export async function callWorker(request: Request, bindings: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Posts a body as Meta would: signed with the app secret unless headers say otherwise. */
export async function postWebhook(
  body: unknown,
  options: { headers?: Record<string, string>; bindings?: Partial<Env> } = {},
) {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const headers = {
    "content-type": "application/json",
    "x-hub-signature-256": await signature(raw),
    ...options.headers,
  };
  return callWorker(
    new Request(WEBHOOK_URL, { method: "POST", headers, body: raw }),
    options.bindings,
  );
}
