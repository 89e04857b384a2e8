import { and, asc, eq, gt, gte, lt, or, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { auditEntries, type DeadLetter, deadLetters } from "../db/schema";
import {
  type DeadLetterFilter,
  type DeadLetterListQuery,
  decodeCursor,
  encodeCursor,
} from "./input";

/** A dead letter as the admin API shows it: everything but the sealed payload. */
export function deadLetterView(row: Omit<DeadLetter, "payloadSealed">) {
  return {
    id: row.id,
    eventId: row.eventId,
    provider: row.provider,
    correlationId: row.correlationId,
    status: row.status,
    attempts: row.attempts,
    errorClass: row.errorClass,
    errorCode: row.errorCode,
    errorMessage: row.errorMessage,
    createdAt: isoTime(row.createdAt),
    replayedAt: row.replayedAt === null ? null : isoTime(row.replayedAt),
  };
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Every column but the payload, so that a list never reads what it must not show. */
const metadata = {
  id: deadLetters.id,
  eventId: deadLetters.eventId,
  provider: deadLetters.provider,
  correlationId: deadLetters.correlationId,
  attempts: deadLetters.attempts,
  errorClass: deadLetters.errorClass,
  errorCode: deadLetters.errorCode,
  errorMessage: deadLetters.errorMessage,
  status: deadLetters.status,
  createdAt: deadLetters.createdAt,
  replayedAt: deadLetters.replayedAt,
};

function matching(filter: DeadLetterFilter): SQL | undefined {
  return and(
    filter.status === "all" ? undefined : eq(deadLetters.status, filter.status),
    filter.provider ? eq(deadLetters.provider, filter.provider) : undefined,
    filter.errorClass ? eq(deadLetters.errorClass, filter.errorClass) : undefined,
    filter.errorCode ? eq(deadLetters.errorCode, filter.errorCode) : undefined,
    filter.since === undefined ? undefined : gte(deadLetters.createdAt, filter.since),
    filter.until === undefined ? undefined : lt(deadLetters.createdAt, filter.until),
  );
}

/**
 * One page of dead letters, oldest first. The cursor is the last row's (createdAt, id), so
 * pages neither skip nor repeat rows while new dead letters arrive or old ones are replayed.
 */
export async function listDeadLetters(db: Database, query: DeadLetterListQuery) {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const rows = await db
    .select(metadata)
    .from(deadLetters)
    .where(
      and(
        matching(query),
        after &&
          or(
            gt(deadLetters.createdAt, after.createdAt),
            and(eq(deadLetters.createdAt, after.createdAt), gt(deadLetters.id, after.id)),
          ),
      ),
    )
    .orderBy(asc(deadLetters.createdAt), asc(deadLetters.id))
    .limit(query.limit + 1);

  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    deadLetters: page.map(deadLetterView),
    nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null,
  };
}

/** The open dead letters a bulk replay works through, oldest first, payload included. */
export function openDeadLetters(
  db: Database,
  filter: Omit<DeadLetterFilter, "status">,
  max: number,
) {
  return db
    .select()
    .from(deadLetters)
    .where(matching({ ...filter, status: "open" }))
    .orderBy(asc(deadLetters.createdAt), asc(deadLetters.id))
    .limit(max);
}

export async function findDeadLetter(db: Database, id: string): Promise<DeadLetter | undefined> {
  const [row] = await db.select().from(deadLetters).where(eq(deadLetters.id, id));
  return row;
}

/**
 * Deletes a dead letter, payload and all, and audits it in the same transaction: the audit
 * entry is copied from the row, so it exists exactly when the row did.
 */
export async function purgeDeadLetter(db: Database, id: string, now = Date.now()) {
  const [, deleted] = await db.batch([
    db.insert(auditEntries).select(
      db
        .select({
          id: sql<number>`null`.as("id"),
          eventId: deadLetters.eventId,
          provider: deadLetters.provider,
          correlationId: deadLetters.correlationId,
          action: sql<string>`'dead_letter_purged'`.as("action"),
          attempt: deadLetters.attempts,
          reason: sql<string>`${`dead_letter:${id}`}`.as("reason"),
          errorClass: deadLetters.errorClass,
          errorCode: deadLetters.errorCode,
          createdAt: sql<number>`${now}`.as("created_at"),
        })
        .from(deadLetters)
        .where(eq(deadLetters.id, id)),
    ),
    db.delete(deadLetters).where(eq(deadLetters.id, id)).returning(metadata),
  ]);
  return deleted[0];
}
