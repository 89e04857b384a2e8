import * as z from "zod/mini";
import { nonEmptyString } from "../validation";
import type { WebhookJob } from "./job";

/**
 * The messaging item inside a job, as the consumer reads it. Loose like the receiving schema:
 * only the fields that decide what happens are checked.
 * https://developers.facebook.com/docs/instagram-platform/webhooks/examples
 */
const messagingContent = z.looseObject({
  sender: z.looseObject({ id: nonEmptyString() }),
  recipient: z.looseObject({ id: nonEmptyString() }),
  timestamp: z.optional(z.number()),
  message: z.optional(
    z.looseObject({
      mid: nonEmptyString(),
      text: z.optional(z.string()),
      is_echo: z.optional(z.boolean()),
      is_deleted: z.optional(z.boolean()),
      is_unsupported: z.optional(z.boolean()),
      attachments: z.optional(z.array(z.unknown())),
    }),
  ),
  postback: z.optional(
    z.looseObject({ mid: z.optional(z.string()), title: z.optional(z.string()) }),
  ),
});

export interface InboundMessage {
  kind: "text" | "attachment" | "postback";
  providerMessageId: string;
  accountId: string;
  senderId: string;
  /** When the user sent it, in ms since the epoch. */
  sentAt: number;
  text: string | null;
}

export type SkipReason =
  | "echo"
  | "deleted"
  | "unsupported"
  | "read"
  | "reaction"
  | "edit"
  | "referral"
  | "not_a_message"
  | "unknown_kind";

export type ClassifiedEvent =
  | { type: "inbound"; message: InboundMessage }
  | { type: "deleted"; providerMessageId: string }
  | { type: "skip"; reason: SkipReason };

/** Tells what a job's event is. Throws a ZodError for content that can never be handled. */
export function classifyEvent(job: WebhookJob): ClassifiedEvent {
  if (job.source === "changes") return { type: "skip", reason: "not_a_message" };

  const item = messagingContent.parse(job.content);
  const { message, postback } = item;
  const base = {
    accountId: job.accountId,
    senderId: item.sender.id,
    sentAt: item.timestamp === undefined ? job.receivedAt : epochMs(item.timestamp),
  };

  if (message) {
    // Our own replies come back as echoes; answering them would loop.
    if (message.is_echo) return { type: "skip", reason: "echo" };
    if (message.is_deleted) return { type: "deleted", providerMessageId: message.mid };
    if (message.is_unsupported) return { type: "skip", reason: "unsupported" };
    const kind = message.text === undefined ? "attachment" : "text";
    return {
      type: "inbound",
      message: { ...base, kind, providerMessageId: message.mid, text: message.text ?? null },
    };
  }
  if (postback) {
    return {
      type: "inbound",
      message: {
        ...base,
        kind: "postback",
        providerMessageId: postback.mid ?? job.eventId,
        text: postback.title ?? null,
      },
    };
  }
  if ("read" in item) return { type: "skip", reason: "read" };
  if ("reaction" in item) return { type: "skip", reason: "reaction" };
  if ("message_edit" in item) return { type: "skip", reason: "edit" };
  if ("referral" in item) return { type: "skip", reason: "referral" };
  return { type: "skip", reason: "unknown_kind" };
}

/**
 * Meta's timestamps are milliseconds, but some payloads carry seconds; read as milliseconds
 * those fall in 1973 or earlier and would close the reply window on every message.
 */
function epochMs(timestamp: number): number {
  return timestamp < 100_000_000_000 ? timestamp * 1000 : timestamp;
}
