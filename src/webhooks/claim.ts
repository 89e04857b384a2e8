import { and, eq, inArray, lt } from "drizzle-orm";
import type { Database } from "../db/client";
import { webhookEvents } from "../db/schema";
import type { Provider } from "../jobs/job";

/**
 * How long a claim whose job was never confirmed sent blocks a redelivery. Past it, the
 * claimer is taken to have died mid-request and Meta's redelivery may claim the event again.
 */
export const CLAIM_LEASE_MS = 120_000;

/** D1 binds at most 100 parameters per statement. */
const IDS_PER_STATEMENT = 90;
/** Two parameters per claim (event id, correlation id), and room for the others. */
const CLAIMS_PER_STATEMENT = 45;

export interface Claim {
  eventId: string;
  provider: Provider;
  correlationId: string;
}

export interface ClaimResult {
  claimed: Claim[];
  /** Claimed earlier and enqueued (or further along): no new job. */
  duplicates: string[];
  /** Claimed moments ago by another request that has not yet confirmed its job, or released. */
  inFlight: string[];
}

/**
 * Claims each event once, in one D1 batch (a transaction): an insert that only an absent
 * event, or a lapsed claim, lets through.
 */
export async function claimEvents(
  db: Database,
  claims: Claim[],
  now: number,
): Promise<ClaimResult> {
  const [first, ...rest] = claims.map((claim) =>
    db
      .insert(webhookEvents)
      .values({ ...claim, status: "received", receivedAt: now, updatedAt: now })
      .onConflictDoUpdate({
        target: webhookEvents.eventId,
        set: { correlationId: claim.correlationId, receivedAt: now, updatedAt: now },
        setWhere: and(
          eq(webhookEvents.status, "received"),
          lt(webhookEvents.updatedAt, now - CLAIM_LEASE_MS),
        ),
      })
      .returning({ eventId: webhookEvents.eventId }),
  );
  if (!first) return { claimed: [], duplicates: [], inFlight: [] };

  const results = await db.batch([first, ...rest]);
  const claimedIds = new Set(results.flat().map((row) => row.eventId));
  const claimed = claims.filter((claim) => claimedIds.has(claim.eventId));
  const others = claims.filter((claim) => !claimedIds.has(claim.eventId)).map((c) => c.eventId);
  if (others.length === 0) return { claimed, duplicates: [], inFlight: [] };

  // A claim that vanished since the insert lost to it was given back by its request: no one
  // holds the event now, so it counts as in flight and the delivery is asked for again.
  const statuses = await eventStatuses(db, others);
  const awaitingJob = (id: string) => {
    const status = statuses.get(id);
    return status === undefined || status === "received";
  };
  return {
    claimed,
    duplicates: others.filter((id) => !awaitingJob(id)),
    inFlight: others.filter(awaitingJob),
  };
}

async function eventStatuses(db: Database, eventIds: string[]): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  for (const ids of chunk(eventIds, IDS_PER_STATEMENT)) {
    const rows = await db
      .select({ eventId: webhookEvents.eventId, status: webhookEvents.status })
      .from(webhookEvents)
      .where(inArray(webhookEvents.eventId, ids));
    for (const row of rows) statuses.set(row.eventId, row.status);
  }
  return statuses;
}

/**
 * These claims and no others: the event id finds the row by its primary key (without it, D1
 * reads, and bills, every row of the table), the correlation id makes sure the claim is ours.
 */
function ownClaims(part: Claim[]) {
  return and(
    eq(webhookEvents.status, "received"),
    inArray(
      webhookEvents.eventId,
      part.map((claim) => claim.eventId),
    ),
    inArray(
      webhookEvents.correlationId,
      part.map((claim) => claim.correlationId),
    ),
  );
}

/** Gives back claims whose jobs were not sent, so that Meta's redelivery can claim them. */
export async function releaseClaims(db: Database, claims: Claim[]): Promise<void> {
  const statements = chunk(claims, CLAIMS_PER_STATEMENT).map((part) =>
    db.delete(webhookEvents).where(ownClaims(part)),
  );
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

/** Records that the jobs were sent. The consumer may have moved an event on already. */
export async function markQueued(db: Database, claims: Claim[], now: number): Promise<void> {
  const statements = chunk(claims, CLAIMS_PER_STATEMENT).map((part) =>
    db.update(webhookEvents).set({ status: "queued", updatedAt: now }).where(ownClaims(part)),
  );
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

export function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
