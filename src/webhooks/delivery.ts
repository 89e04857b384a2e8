import { HTTPException } from "hono/http-exception";
import * as z from "zod";
import { sha256Hex } from "../bytes";

/** Deeper JSON than any Meta payload; refusing it keeps digesting from exhausting the stack. */
const MAX_DEPTH = 32;

/**
 * The envelope of an Instagram messaging delivery. Only what routing and dedupe rely on is
 * required; every object is loose, because Meta adds fields without notice.
 * https://developers.facebook.com/docs/instagram-platform/webhooks
 */
const messagingItem = z.looseObject({
  sender: z.looseObject({ id: z.string().min(1) }),
  recipient: z.looseObject({ id: z.string().min(1) }),
  timestamp: z.number().optional(),
  message: z.looseObject({ mid: z.string().min(1), is_deleted: z.boolean().optional() }).optional(),
});

const changeItem = z.looseObject({
  field: z.string().min(1),
  value: z.unknown(),
});

const entry = z.looseObject({
  id: z.string().min(1),
  time: z.number().optional(),
  messaging: z.array(messagingItem).optional(),
  changes: z.array(changeItem).optional(),
});

export const deliverySchema = z.looseObject({
  object: z.literal("instagram", { error: 'must be "instagram"' }),
  entry: z.array(entry, { error: "must be an array of entries" }),
});

export type Delivery = z.infer<typeof deliverySchema>;

/** One item of a delivery: a messaging item or a change, with the account it arrived for. */
export interface DeliveredEvent {
  eventId: string;
  accountId: string;
  source: "messaging" | "changes";
  content: Record<string, unknown>;
}

/** Parses and validates a verified body; every failure is a 400 that says what is wrong. */
export function parseDelivery(body: Uint8Array<ArrayBuffer>): Delivery {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
  } catch {
    throw new HTTPException(400, { message: "body is not valid UTF-8 JSON" });
  }
  if (nestingExceeds(json, MAX_DEPTH)) {
    throw new HTTPException(400, { message: `body nests deeper than ${MAX_DEPTH} levels` });
  }

  const parsed = deliverySchema.safeParse(json);
  if (!parsed.success) {
    throw new HTTPException(400, {
      message: `not an Instagram delivery: ${describeIssues(parsed.error)}`,
    });
  }
  return parsed.data;
}

function nestingExceeds(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, depth] = next;
    if (value === null || typeof value !== "object") continue;
    if (depth >= limit) return true;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Turns a zod failure into one line naming each field at fault, e.g. `entry.0.id: ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

/**
 * Splits a delivery into events. A message keeps Meta's `mid` as its id, so a redelivered
 * message dedupes however Meta batches it; anything else (reads, reactions, postbacks, edits,
 * changes) is named by a digest of its canonical content and account.
 */
export async function splitDelivery(delivery: Delivery): Promise<DeliveredEvent[]> {
  const events: DeliveredEvent[] = [];
  for (const { id: accountId, messaging = [], changes = [] } of delivery.entry) {
    for (const item of messaging) {
      // A deletion repeats the deleted message's mid; it is an event of its own.
      const mid = item.message?.is_deleted ? undefined : item.message?.mid;
      const eventId = mid ?? (await digestId(accountId, "messaging", item));
      events.push({ eventId, accountId, source: "messaging", content: item });
    }
    for (const item of changes) {
      const eventId = await digestId(accountId, "changes", item);
      events.push({ eventId, accountId, source: "changes", content: item });
    }
  }
  return events;
}

async function digestId(accountId: string, source: string, content: unknown): Promise<string> {
  return `sha256:${await sha256Hex(canonicalJson([accountId, source, content]))}`;
}

/** JSON with object keys sorted at every depth, so equal content always digests the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
