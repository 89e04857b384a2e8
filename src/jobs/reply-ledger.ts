import { and, eq, lt } from "drizzle-orm";
import type { Database } from "../db/client";
import { replies } from "../db/schema";

/**
 * How long a claimed reply blocks other runs of the same job. Longer than one Send API call
 * with its timeout; shorter than the first retry delay, so a run that died mid-send is taken
 * over by the job's next attempt.
 */
export const REPLY_LEASE_MS = 30_000;

export type ReplyClaim = "claimed" | "sent" | "in_progress";

/**
 * Claims the right to send the reply to an event: an insert that only an absent row, or a
 * lapsed 'sending' claim, lets through.
 */
export async function claimReply(
  db: Database,
  reply: { eventId: string; conversationId: string; textSealed: string },
  now = Date.now(),
): Promise<ReplyClaim> {
  const [claimed] = await db
    .insert(replies)
    .values({ ...reply, status: "sending", claimedAt: now })
    .onConflictDoUpdate({
      target: replies.eventId,
      set: { claimedAt: now, textSealed: reply.textSealed },
      setWhere: and(eq(replies.status, "sending"), lt(replies.claimedAt, now - REPLY_LEASE_MS)),
    })
    .returning({ eventId: replies.eventId });
  if (claimed) return "claimed";

  const [existing] = await db
    .select({ status: replies.status })
    .from(replies)
    .where(eq(replies.eventId, reply.eventId));
  return existing?.status === "sent" ? "sent" : "in_progress";
}

/** Gives the claim back after a send that failed, so that the next attempt may send. */
export function releaseReply(db: Database, eventId: string) {
  return db.delete(replies).where(and(eq(replies.eventId, eventId), eq(replies.status, "sending")));
}

/** The write that records a sent reply; the caller batches it with the event's last writes. */
export function markReplySent(db: Database, eventId: string, messageId: string | null) {
  return db
    .update(replies)
    .set({ status: "sent", providerMessageId: messageId, sentAt: Date.now() })
    .where(eq(replies.eventId, eventId));
}
