/**
 * Deliveries as Meta sends them, for the benchmark: deterministic, so that two runs time the
 * same bytes. Each event sits in its own entry, as Meta batches them. The mix follows a chat
 * inbox: most events are text messages, then read receipts, then reactions; the latter two
 * have no `mid` of their own, so the receiving route names them by a digest.
 */

export const ACCOUNT_ID = "17841400000000001";

/** 6 text messages, 3 reads, 1 reaction in every 10 events. */
const MIX = ["text", "read", "text", "text", "read", "text", "reaction", "text", "read", "text"];

const TEXTS = [
  "Hello! Can I book an appointment for Tuesday afternoon?",
  "Do you take new patients? My daughter needs a check-up before school starts in September.",
  "Thanks, see you then",
  "Is parking available near the clinic, or should I take the bus? I use a wheelchair.",
];

function mid(n: number, salt: string): string {
  // Instagram mids are long base64 strings; the length shapes the bytes, not the content.
  return `aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAxOjM0MDI4MjM2Njg0${salt}${n}`;
}

export interface EventOptions {
  /** The user's id; the Graph stand-in picks its behaviour by it (`fail-500`, `flaky-500`). */
  sender?: string;
  /** Makes mids unique across runs against the same database. */
  salt?: string;
  /** When the user sent it; the consumer replies only within 24 hours of it. */
  timestamp?: number;
}

export function messagingEvent(n: number, kind: string, options: EventOptions = {}) {
  const salt = options.salt ?? "bench";
  const base = {
    sender: { id: options.sender ?? String(1_000_000_000_000_000 + n) },
    recipient: { id: ACCOUNT_ID },
    timestamp: options.timestamp ?? 1_764_000_000_000 + n,
  };
  if (kind === "read") return { ...base, read: { mid: mid(n - 1, salt) } };
  if (kind === "reaction") {
    return {
      ...base,
      reaction: { mid: mid(n - 2, salt), action: "react", reaction: "love", emoji: "❤" },
    };
  }
  return { ...base, message: { mid: mid(n, salt), text: TEXTS[n % TEXTS.length] } };
}

export function deliveryBody(events: unknown[]): string {
  return JSON.stringify({
    object: "instagram",
    entry: events.map((item, index) => ({
      id: ACCOUNT_ID,
      time: 1_764_000_000_000 + index,
      messaging: [item],
    })),
  });
}

export interface SizedDelivery {
  label: string;
  body: string;
  bytes: number;
  events: number;
}

/** The smallest delivery of the mix that reaches `targetBytes`. */
export function sizedDelivery(label: string, targetBytes: number): SizedDelivery {
  const events: unknown[] = [];
  let body = deliveryBody(events);
  while (Buffer.byteLength(body) < targetBytes) {
    const n = events.length;
    events.push(messagingEvent(n, MIX[n % MIX.length] ?? "text"));
    body = deliveryBody(events);
  }
  return { label, body, bytes: Buffer.byteLength(body), events: events.length };
}

export const INGEST_SIZES = [
  ["1 KB", 1_000],
  ["10 KB", 10_000],
  ["100 KB", 100_000],
] as const;
