import { eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { auditEntry } from "../audit";
import { sha256Hex } from "../bytes";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { conversations, messages, replies, webhookEvents } from "../db/schema";
import { decideReply } from "../instagram/reply-policy";
import { type SendResult, sendText } from "../instagram/send-api";
import { seal } from "../seal";
import { classifyEvent, type InboundMessage, type SkipReason } from "./event";
import { JobFailure } from "./failure";
import type { WebhookJob } from "./job";
import { claimReply, markReplySent, REPLY_LEASE_MS, releaseReply } from "./reply-ledger";

/** Meta lets a business answer a user only within 24 hours of the user's last message. */
export const REPLY_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface JobContext {
  db: Database;
  config: Config;
  sealKey: CryptoKey;
  attempt: number;
}

export type JobOutcome =
  | { status: "processed"; replied: boolean }
  | { status: "skipped"; reason: SkipReason };

/**
 * One attempt at one job. Every step is safe to run again: rows are inserted only if absent,
 * and the reply is claimed in the ledger before sending, so a redelivered job, or two runs of
 * it at once, never reply twice.
 */
export async function processJob(job: WebhookJob, ctx: JobContext): Promise<JobOutcome> {
  const event = classifyEvent(job);
  if (event.type === "deleted") {
    await finish(ctx, job, "skipped", "deleted", [eraseText(ctx.db, event.providerMessageId)]);
    return { status: "skipped", reason: "deleted" };
  }
  if (event.type === "skip") {
    await finish(ctx, job, "skipped", event.reason);
    return { status: "skipped", reason: event.reason };
  }

  const { message } = event;
  const { conversationId, replyStatus } = await recordInbound(ctx, job, message);
  if (replyStatus === "sent") {
    await finish(ctx, job, "processed", "already_replied");
    return { status: "processed", replied: true };
  }

  const reply = await decideReply(message);
  if (!reply) {
    await finish(ctx, job, "processed", "no_reply");
    return { status: "processed", replied: false };
  }
  if (Date.now() - message.sentAt > REPLY_WINDOW_MS) {
    throw new JobFailure("permanent", "outside_window", "the 24-hour reply window has closed");
  }

  const textSealed = await seal(ctx.sealKey, reply.text, `reply:${job.eventId}`);
  const claim = await claimReply(ctx.db, { eventId: job.eventId, conversationId, textSealed });
  if (claim === "sent") {
    await finish(ctx, job, "processed", "already_replied");
    return { status: "processed", replied: true };
  }
  if (claim === "in_progress") {
    throw new JobFailure(
      "retryable",
      "reply_in_progress",
      "another run of this job is sending its reply",
      REPLY_LEASE_MS / 1000,
    );
  }

  let sent: SendResult;
  try {
    sent = await sendText(ctx.config, message.senderId, reply.text);
  } catch (error) {
    // If the release fails too, the claim lapses after REPLY_LEASE_MS.
    await releaseReply(ctx.db, job.eventId).catch(() => undefined);
    throw error;
  }
  await finish(ctx, job, "processed", undefined, [
    markReplySent(ctx.db, job.eventId, sent.messageId),
  ]);
  return { status: "processed", replied: true };
}

/** A user deleted their message: keep no text of it. */
function eraseText(db: Database, providerMessageId: string) {
  return db
    .update(messages)
    .set({ textSealed: null })
    .where(eq(messages.providerMessageId, providerMessageId));
}

/**
 * Stores the conversation and the inbound message (text sealed), and reads the reply ledger,
 * in one round trip.
 */
async function recordInbound(ctx: JobContext, job: WebhookJob, message: InboundMessage) {
  const now = Date.now();
  const conversationId = await sha256Hex(
    `${job.provider}:${message.accountId}:${message.senderId}`,
  );
  const textSealed =
    message.text === null ? null : await seal(ctx.sealKey, message.text, job.eventId);

  const [, , ledger] = await ctx.db.batch([
    ctx.db
      .insert(conversations)
      .values({
        id: conversationId,
        provider: job.provider,
        accountId: message.accountId,
        participantId: message.senderId,
        createdAt: now,
      })
      .onConflictDoNothing(),
    ctx.db
      .insert(messages)
      .values({
        providerMessageId: message.providerMessageId,
        conversationId,
        eventId: job.eventId,
        kind: message.kind,
        textSealed,
        sentAt: message.sentAt,
        createdAt: now,
      })
      .onConflictDoNothing(),
    ctx.db.select({ status: replies.status }).from(replies).where(eq(replies.eventId, job.eventId)),
  ]);
  return { conversationId, replyStatus: ledger[0]?.status };
}

/** Marks the event done and audits it, atomically with any last writes of the job. */
async function finish(
  ctx: JobContext,
  job: WebhookJob,
  status: "processed" | "skipped",
  reason: string | undefined,
  writes: BatchItem<"sqlite">[] = [],
) {
  const now = Date.now();
  await ctx.db.batch([
    ctx.db
      .update(webhookEvents)
      .set({ status, attempts: ctx.attempt, updatedAt: now })
      .where(eq(webhookEvents.eventId, job.eventId)),
    ...writes,
    auditEntry(
      ctx.db,
      {
        eventId: job.eventId,
        provider: job.provider,
        correlationId: job.correlationId,
        action: status,
        attempt: ctx.attempt,
        reason,
      },
      now,
    ),
  ]);
}
