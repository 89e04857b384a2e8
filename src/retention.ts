import { and, inArray, lt, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { auditEntry } from "./audit";
import type { Config } from "./config";
import type { Database } from "./db/client";
import { auditEntries, deadLetters, messages, replies, webhookEvents } from "./db/schema";
import { log } from "./log";

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** Rows deleted per statement, so that no single query runs into D1's time limit. */
const CHUNK = 1_000;
const MAX_CHUNKS_PER_TABLE = 200;

export interface PurgeCounts {
  webhookEvents: number;
  messages: number;
  replies: number;
  deadLetters: number;
  auditEntries: number;
}

/**
 * Deletes what has outlived its retention period, run by the cron trigger. Only claims of
 * events that reached an end are purged: one still queued or retrying is left for operators
 * to see. The run is audited as counts.
 */
export async function purgeExpired(
  db: Database,
  config: Config,
  now = Date.now(),
): Promise<PurgeCounts> {
  const claimsBefore = now - config.CLAIM_RETENTION_HOURS * HOUR_MS;
  const messagesBefore = now - config.MESSAGE_RETENTION_DAYS * DAY_MS;
  const deadLettersBefore = now - config.DEAD_LETTER_RETENTION_DAYS * DAY_MS;
  const auditBefore = now - config.AUDIT_RETENTION_DAYS * DAY_MS;

  const counts: PurgeCounts = {
    webhookEvents: await purge(
      db,
      webhookEvents,
      webhookEvents.eventId,
      and(
        lt(webhookEvents.updatedAt, claimsBefore),
        inArray(webhookEvents.status, ["processed", "skipped", "dead_lettered"]),
      ),
    ),
    messages: await purge(
      db,
      messages,
      messages.providerMessageId,
      lt(messages.createdAt, messagesBefore),
    ),
    replies: await purge(db, replies, replies.eventId, lt(replies.claimedAt, messagesBefore)),
    deadLetters: await purge(
      db,
      deadLetters,
      deadLetters.id,
      lt(deadLetters.createdAt, deadLettersBefore),
    ),
    auditEntries: await purge(
      db,
      auditEntries,
      auditEntries.id,
      lt(auditEntries.createdAt, auditBefore),
    ),
  };

  const reason = Object.entries(counts)
    .map(([table, count]) => `${table}=${count}`)
    .join(" ");
  await auditEntry(
    db,
    {
      eventId: "retention",
      provider: "system",
      correlationId: crypto.randomUUID(),
      action: "retention_purged",
      reason,
    },
    now,
  );
  log.info("retention purge done", {
    count: Object.values(counts).reduce((a, b) => a + b, 0),
    reason,
  });
  return counts;
}

/** Deletes by primary key in chunks; most tables are WITHOUT ROWID, so there is no rowid. */
async function purge(
  db: Database,
  table: SQLiteTable,
  key: SQLiteColumn,
  where: SQL | undefined,
): Promise<number> {
  let total = 0;
  for (let round = 0; round < MAX_CHUNKS_PER_TABLE; round++) {
    const result = await db.run(
      sql`DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT ${CHUNK})`,
    );
    const deleted = result.meta.changes;
    total += deleted;
    if (deleted < CHUNK) break;
  }
  return total;
}
