import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Every table. Payloads never land here in the clear: message text and dead-letter payloads
 * are sealed (src/seal.ts), and audit entries hold metadata only. Indexes are few on purpose:
 * D1 bills each index entry written as a row.
 *
 * The tables keyed by text are WITHOUT ROWID (see WITHOUT_ROWID_TABLES): a text primary key
 * on an ordinary table is a second b-tree, so each insert would write, and bill, two rows.
 * drizzle cannot declare this; scripts/without-rowid.ts adds it to a generated migration, and
 * a later migration that rebuilds one of these tables must keep it.
 */
export const WITHOUT_ROWID_TABLES = [
  "webhook_events",
  "conversations",
  "messages",
  "replies",
  "dead_letters",
] as const;

export const EVENT_STATUSES = [
  "received", // claimed by the receiving route, job not yet confirmed sent
  "queued",
  "retrying",
  "processed",
  "skipped",
  "dead_lettered",
] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** The idempotency table: one row per event ever claimed. Holds no payload. */
export const webhookEvents = sqliteTable("webhook_events", {
  eventId: text("event_id").primaryKey(),
  provider: text("provider").notNull(),
  correlationId: text("correlation_id").notNull(),
  status: text("status", { enum: EVENT_STATUSES }).notNull(),
  attempts: integer("attempts").notNull().default(0),
  lastErrorClass: text("last_error_class"),
  lastErrorCode: text("last_error_code"),
  /** Sanitised: see src/jobs/failure.ts. */
  lastErrorMessage: text("last_error_message"),
  receivedAt: integer("received_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** One row per (provider, account, participant); the id is a digest of those three. */
export const conversations = sqliteTable("conversations", {
  id: text("id").primaryKey(),
  provider: text("provider").notNull(),
  accountId: text("account_id").notNull(),
  participantId: text("participant_id").notNull(),
  createdAt: integer("created_at").notNull(),
});

/** Inbound messages, keyed by the provider's message id. */
export const messages = sqliteTable("messages", {
  providerMessageId: text("provider_message_id").primaryKey(),
  conversationId: text("conversation_id").notNull(),
  eventId: text("event_id").notNull(),
  kind: text("kind", { enum: ["text", "attachment", "postback"] }).notNull(),
  /** AES-GCM sealed with the event id as context; null when the message has no text. */
  textSealed: text("text_sealed"),
  sentAt: integer("sent_at").notNull(),
  createdAt: integer("created_at").notNull(),
});

/**
 * The reply ledger: at most one reply per inbound event. A run claims the row ('sending')
 * before calling the Send API and marks it 'sent' with Graph's message id afterwards, so two
 * runs of one job never both send.
 */
export const replies = sqliteTable("replies", {
  eventId: text("event_id").primaryKey(),
  conversationId: text("conversation_id").notNull(),
  status: text("status", { enum: ["sending", "sent"] }).notNull(),
  /** When the sending run claimed the row; another run may take it over after a lease. */
  claimedAt: integer("claimed_at").notNull(),
  /** Graph's `message_id`; null while sending, or when Graph's success carried none. */
  providerMessageId: text("provider_message_id"),
  textSealed: text("text_sealed").notNull(),
  sentAt: integer("sent_at"),
});

export const DEAD_LETTER_STATUSES = ["open", "replayed"] as const;

/** Jobs that will not be tried again, with their payload sealed so that they can be replayed. */
export const deadLetters = sqliteTable(
  "dead_letters",
  {
    /** The queue message id (or the job's event id and attempt): one row per dead job. */
    id: text("id").primaryKey(),
    eventId: text("event_id").notNull(),
    provider: text("provider").notNull(),
    correlationId: text("correlation_id").notNull(),
    attempts: integer("attempts").notNull(),
    errorClass: text("error_class").notNull(),
    errorCode: text("error_code").notNull(),
    errorMessage: text("error_message").notNull(),
    /** The whole job, sealed with this row's id as context. */
    payloadSealed: text("payload_sealed").notNull(),
    status: text("status", { enum: DEAD_LETTER_STATUSES }).notNull().default("open"),
    createdAt: integer("created_at").notNull(),
    replayedAt: integer("replayed_at"),
  },
  (table) => [index("dead_letters_created_at_idx").on(table.createdAt)],
);

/** State changes of events and operator actions. Metadata only, never content. */
export const auditEntries = sqliteTable(
  "audit_entries",
  {
    // No AUTOINCREMENT: it writes a sqlite_sequence row per insert, which D1 bills.
    id: integer("id").primaryKey(),
    eventId: text("event_id").notNull(),
    provider: text("provider").notNull(),
    correlationId: text("correlation_id").notNull(),
    action: text("action").notNull(),
    attempt: integer("attempt"),
    reason: text("reason"),
    errorClass: text("error_class"),
    errorCode: text("error_code"),
    createdAt: integer("created_at").notNull(),
  },
  (table) => [index("audit_entries_event_id_idx").on(table.eventId)],
);

export type WebhookEvent = typeof webhookEvents.$inferSelect;
export type DeadLetter = typeof deadLetters.$inferSelect;
export type AuditEntry = typeof auditEntries.$inferSelect;
export type NewAuditEntry = typeof auditEntries.$inferInsert;
