import type { Database } from "./db/client";
import { auditEntries } from "./db/schema";

export type AuditAction =
  | "processed"
  | "skipped"
  | "retry_scheduled"
  | "retries_exhausted"
  | "dead_lettered"
  | "replayed"
  | "content_viewed"
  | "dead_letter_purged"
  | "retention_purged";

/** What an audit entry may say: metadata about an event, never its content. */
export interface AuditRecord {
  eventId: string;
  provider: string;
  correlationId: string;
  action: AuditAction;
  attempt?: number;
  reason?: string;
  errorClass?: string;
  errorCode?: string;
}

/** The insert for one audit entry, to run alone or inside a batch with the change it records. */
export function auditEntry(db: Database, record: AuditRecord, now = Date.now()) {
  return db.insert(auditEntries).values({ ...record, createdAt: now });
}
