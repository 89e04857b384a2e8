import { HTTPException } from "hono/http-exception";
import * as z from "zod/mini";
import { sha256HexSync } from "../bytes";
import { nonEmptyString } from "../validation";

/** Deeper JSON than any Meta payload; refusing it keeps digesting from exhausting the stack. */
const MAX_DEPTH = 32;

/**
 * The envelope of an Instagram messaging delivery. Only what routing and dedupe rely on is
 * required; every object is loose, because Meta adds fields without notice.
 * https://developers.facebook.com/docs/instagram-platform/webhooks
 */
const messagingItem = z.looseObject({
  sender: z.looseObject({ id: nonEmptyString() }),
  recipient: z.looseObject({ id: nonEmptyString() }),
  timestamp: z.optional(z.number()),
  message: z.optional(
    z.looseObject({ mid: nonEmptyString(), is_deleted: z.optional(z.boolean()) }),
  ),
});

const changeItem = z.looseObject({
  field: nonEmptyString(),
  value: z.unknown(),
});

const entry = z.looseObject({
  id: nonEmptyString(),
  time: z.optional(z.number()),
  messaging: z.optional(z.array(messagingItem)),
  changes: z.optional(z.array(changeItem)),
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

/** Refuses bytes that are not UTF-8; `decode()` keeps no state between calls. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Parses and validates a verified body; every failure is a 400 that says what is wrong. */
export function parseDelivery(body: Uint8Array<ArrayBuffer>): Delivery {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decoder.decode(body));
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

/** Recursion stays shallow: it stops at `limit` levels, well within any runtime's stack. */
function nestingExceeds(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== "object") return false;
  if (limit <= 0) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestingExceeds(item, limit - 1)) return true;
    return false;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) if (nestingExceeds(record[key], limit - 1)) return true;
  return false;
}

/** Turns a zod failure into one line naming each field at fault, e.g. `entry.0.id: ...`. */
export function describeIssues(error: z.core.$ZodError): string {
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
export function splitDelivery(delivery: Delivery): DeliveredEvent[] {
  const events: DeliveredEvent[] = [];
  for (const { id: accountId, messaging = [], changes = [] } of delivery.entry) {
    for (const item of messaging) {
      // A deletion repeats the deleted message's mid; it is an event of its own.
      const mid = item.message?.is_deleted ? undefined : item.message?.mid;
      const eventId = mid ?? digestId(accountId, "messaging", item);
      events.push({ eventId, accountId, source: "messaging", content: item });
    }
    for (const item of changes) {
      const eventId = digestId(accountId, "changes", item);
      events.push({ eventId, accountId, source: "changes", content: item });
    }
  }
  return events;
}

/** Synchronous on purpose: a WebCrypto digest per event costs more than the hashing itself. */
function digestId(accountId: string, source: string, content: unknown): string {
  return `sha256:${sha256HexSync(canonicalJson([accountId, source, content]))}`;
}

/**
 * JSON with object keys sorted at every depth, so equal content always digests the same. The
 * output is part of every digested event id: changing it re-names events already stored.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  let json: string;
  if (Array.isArray(value)) {
    json = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) json += ",";
      json += canonicalJson(value[i]);
    }
    return `${json}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  json = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) json += ",";
    json += `${JSON.stringify(key)}:${canonicalJson(record[key])}`;
  }
  return `${json}}`;
}
