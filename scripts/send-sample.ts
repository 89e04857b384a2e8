/**
 * `npm run send`: posts a signed sample delivery to the local Worker, as Meta would, prints
 * the answer, then follows each event through the admin API until it settles.
 *
 *   npm run send                          a text message
 *   npm run send -- --kind echo           an echo of our own message (no reply expected)
 *   npm run send -- --kind batch --count 5
 *   npm run send -- --kind fail           a recipient Graph always fails (500): 4 attempts, then a dead letter
 *   npm run send -- --kind fail-permanent a recipient Graph refuses (code 190): a dead letter at once
 *   npm run send -- --text "hello" --no-watch --url http://127.0.0.1:8787
 */
import { createHmac, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { devVars, WORKER_URL } from "./local-env.ts";

const KINDS = ["text", "echo", "attachment", "batch", "fail", "fail-permanent"] as const;
type Kind = (typeof KINDS)[number];
const SETTLED = new Set(["processed", "skipped", "dead_lettered"]);
const ACCOUNT_ID = "17841400000000001";

const { values } = parseArgs({
  options: {
    kind: { type: "string", default: "text" },
    count: { type: "string", default: "5" },
    text: { type: "string", default: "Hello! Can I book an appointment for Tuesday?" },
    url: { type: "string", default: WORKER_URL },
    "no-watch": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help || !KINDS.includes(values.kind as Kind)) {
  console.log(
    `usage: npm run send -- [--kind ${KINDS.join("|")}] [--count N] [--text T] [--url URL] [--no-watch]`,
  );
  process.exit(values.help ? 0 : 2);
}

const vars = devVars();
const secret = process.env.META_APP_SECRET ?? vars.META_APP_SECRET;
const adminToken = process.env.ADMIN_TOKEN ?? vars.ADMIN_TOKEN;
if (!secret) {
  console.error("send: META_APP_SECRET is not set (in the environment or .dev.vars)");
  process.exit(2);
}

function messaging(sender: string, options: { echo?: boolean; attachment?: boolean } = {}) {
  const message: { mid: string; text?: string; is_echo?: boolean; attachments?: unknown[] } = {
    mid: `sample-${randomUUID()}`,
  };
  if (options.attachment)
    message.attachments = [{ type: "image", payload: { url: "https://example.invalid/i.jpg" } }];
  else message.text = values.text;
  if (options.echo) message.is_echo = true;
  return {
    sender: { id: options.echo ? ACCOUNT_ID : sender },
    recipient: { id: options.echo ? sender : ACCOUNT_ID },
    timestamp: Date.now(),
    message,
  };
}

function itemsFor(kind: Kind) {
  const user = `sample-user-${randomUUID().slice(0, 8)}`;
  switch (kind) {
    case "text":
      return [messaging(user)];
    case "echo":
      return [messaging(user, { echo: true })];
    case "attachment":
      return [messaging(user, { attachment: true })];
    case "batch":
      return Array.from({ length: Number(values.count) }, (_, i) => messaging(`${user}-${i}`));
    case "fail":
      return [messaging(`fail-500-${user}`)];
    case "fail-permanent":
      return [messaging(`fail-190-${user}`)];
  }
}

const items = itemsFor(values.kind as Kind);
const body = JSON.stringify({
  object: "instagram",
  entry: [{ id: ACCOUNT_ID, time: Date.now(), messaging: items }],
});
const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

const response = await fetch(`${values.url}/webhooks/instagram`, {
  method: "POST",
  headers: { "content-type": "application/json", "x-hub-signature-256": signature },
  body,
});
console.log(
  `send: ${values.kind} delivery with ${items.length} event(s) -> ${response.status} ${await response.text()}`,
);
if (!response.ok) process.exit(1);

const eventIds = items.map((item) => item.message.mid);
if (values["no-watch"] || !adminToken) {
  for (const id of eventIds) console.log(`send: event ${id}`);
  process.exit(0);
}

// Follow each event through the admin API until it settles (up to a minute).
const deadline = Date.now() + 60_000;
const last = new Map<string, string>();
while (Date.now() < deadline && [...eventIds].some((id) => !SETTLED.has(last.get(id) ?? ""))) {
  for (const id of eventIds) {
    const lookup = await fetch(`${values.url}/admin/events/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    if (!lookup.ok) continue;
    const { event } = (await lookup.json()) as { event?: { status?: string; attempts?: number } };
    const status = event?.status ?? "unknown";
    if (last.get(id) !== status) {
      console.log(`send: event ${id} is ${status} (attempts: ${event?.attempts ?? 0})`);
      last.set(id, status);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
const unsettled = eventIds.filter((id) => !SETTLED.has(last.get(id) ?? ""));
if (unsettled.length > 0)
  console.log(`send: ${unsettled.length} event(s) still in flight after a minute`);
