import * as z from "zod/mini";
import { nonEmptyString } from "../validation";

export const PROVIDERS = ["instagram", "facebook", "whatsapp"] as const;
export type Provider = (typeof PROVIDERS)[number];

/**
 * The queue message for one event. It carries everything the consumer needs, so the payload
 * lives only here and never in a table. Bump `version` when the shape changes incompatibly.
 */
export const webhookJobSchema = z.object({
  version: z.literal(1),
  eventId: nonEmptyString(),
  provider: z.enum(PROVIDERS),
  correlationId: nonEmptyString(),
  /** When the receiving route accepted the delivery, in ms since the epoch. */
  receivedAt: z.int().check(z.nonnegative()),
  /** The business account the event arrived for (`entry[].id`). */
  accountId: nonEmptyString(),
  source: z.enum(["messaging", "changes"]),
  content: z.record(z.string(), z.unknown()),
});

export type WebhookJob = z.infer<typeof webhookJobSchema>;
