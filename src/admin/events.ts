import { asc, eq } from "drizzle-orm";
import { HTTPException } from "hono/http-exception";
import type { Database } from "../db/client";
import { auditEntries, deadLetters, messages, replies, webhookEvents } from "../db/schema";
import { unseal } from "../seal";
import { isoTime } from "./dead-letters";

/**
 * What an operator sees of one event: its status row, its audit timeline in order, its dead
 * letters and whether it was answered. Metadata only; `eventContent` opens the text.
 */
export async function eventReport(db: Database, eventId: string) {
  const [events, timeline, dead, reply, message] = await db.batch([
    db.select().from(webhookEvents).where(eq(webhookEvents.eventId, eventId)),
    db
      .select()
      .from(auditEntries)
      .where(eq(auditEntries.eventId, eventId))
      .orderBy(asc(auditEntries.createdAt), asc(auditEntries.id)),
    db
      .select({
        id: deadLetters.id,
        status: deadLetters.status,
        errorCode: deadLetters.errorCode,
        createdAt: deadLetters.createdAt,
        replayedAt: deadLetters.replayedAt,
      })
      .from(deadLetters)
      .where(eq(deadLetters.eventId, eventId))
      .orderBy(asc(deadLetters.createdAt)),
    db
      .select({
        status: replies.status,
        sentAt: replies.sentAt,
        providerMessageId: replies.providerMessageId,
      })
      .from(replies)
      .where(eq(replies.eventId, eventId)),
    inboundMessage(db, eventId),
  ]);
  const [event] = events;
  if (!event) return undefined;

  return {
    event: {
      eventId: event.eventId,
      provider: event.provider,
      correlationId: event.correlationId,
      status: event.status,
      attempts: event.attempts,
      lastErrorClass: event.lastErrorClass,
      lastErrorCode: event.lastErrorCode,
      lastErrorMessage: event.lastErrorMessage,
      receivedAt: isoTime(event.receivedAt),
      updatedAt: isoTime(event.updatedAt),
    },
    message: message[0] ? { kind: message[0].kind, sentAt: isoTime(message[0].sentAt) } : null,
    // 'sending' is a reply claimed but not confirmed: in flight, or cut off mid-send.
    replied: reply[0]?.status === "sent",
    reply: reply[0]
      ? {
          status: reply[0].status,
          sentAt: reply[0].sentAt === null ? null : isoTime(reply[0].sentAt),
          providerMessageId: reply[0].providerMessageId,
        }
      : null,
    deadLetters: dead.map((row) => ({
      ...row,
      createdAt: isoTime(row.createdAt),
      replayedAt: row.replayedAt === null ? null : isoTime(row.replayedAt),
    })),
    timeline: timeline.map((entry) => ({
      at: isoTime(entry.createdAt),
      action: entry.action,
      correlationId: entry.correlationId,
      attempt: entry.attempt,
      reason: entry.reason,
      errorClass: entry.errorClass,
      errorCode: entry.errorCode,
    })),
  };
}

/**
 * The inbound message row of an event. Most events are keyed by the message's `mid`, but a
 * postback's row carries its own id, so the match is on the event id column.
 */
function inboundMessage(db: Database, eventId: string) {
  return db
    .select({ kind: messages.kind, sentAt: messages.sentAt, textSealed: messages.textSealed })
    .from(messages)
    .where(eq(messages.eventId, eventId))
    .limit(1);
}

/** The text of an event's inbound message and of its reply, opened from their seals. */
export async function eventContent(db: Database, sealKey: CryptoKey, eventId: string) {
  const [message, reply] = await db.batch([
    inboundMessage(db, eventId),
    db.select({ textSealed: replies.textSealed }).from(replies).where(eq(replies.eventId, eventId)),
  ]);
  return {
    messageText: await open(sealKey, message[0]?.textSealed ?? null, eventId),
    replyText: await open(sealKey, reply[0]?.textSealed ?? null, `reply:${eventId}`),
  };
}

async function open(key: CryptoKey, sealed: string | null, context: string) {
  if (sealed === null) return null;
  try {
    return await unseal(key, sealed, context);
  } catch {
    throw new HTTPException(500, {
      message: "sealed text cannot be opened with the configured DATA_ENCRYPTION_KEY",
    });
  }
}
