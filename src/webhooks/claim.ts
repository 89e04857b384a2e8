import { getTableName, inArray } from "drizzle-orm";
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
  if (claims.length === 0) return { claimed: [], duplicates: [], inFlight: [] };

  const claimedIds = await insertClaims(db, claims, now);
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

/**
 * The claim inserts: one upsert per event, all in one batch. Returns the ids claimed: new
 * events, and lapsed claims taken over.
 */
async function insertClaims(db: Database, claims: Claim[], now: number): Promise<Set<string>> {
  const d1 = binding(db);
  const statement = d1.prepare(sql.claim());
  const cutoff = now - CLAIM_LEASE_MS;
  const results = await d1.batch<{ event_id: string }>(
    claims.map((claim) =>
      statement.bind(claim.eventId, claim.provider, claim.correlationId, now, cutoff),
    ),
  );
  return new Set(results.flatMap((result) => result.results.map((row) => row.event_id)));
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

/** Gives back claims whose jobs were not sent, so that Meta's redelivery can claim them. */
export async function releaseClaims(db: Database, claims: Claim[]): Promise<void> {
  const d1 = binding(db);
  const statements = chunk(claims, CLAIMS_PER_STATEMENT).map((part) =>
    d1.prepare(sql.release(part.length)).bind(...ownClaimValues(part)),
  );
  if (statements.length > 0) await d1.batch(statements);
}

/** Records that the jobs were sent. The consumer may have moved an event on already. */
export async function markQueued(db: Database, claims: Claim[], now: number): Promise<void> {
  const d1 = binding(db);
  const statements = chunk(claims, CLAIMS_PER_STATEMENT).map((part) =>
    d1.prepare(sql.markQueued(part.length)).bind(now, ...ownClaimValues(part)),
  );
  if (statements.length > 0) await d1.batch(statements);
}

function ownClaimValues(part: Claim[]): string[] {
  return [...part.map((claim) => claim.eventId), ...part.map((claim) => claim.correlationId)];
}

/** drizzle keeps the D1 binding it wraps at `$client`; the Database type leaves it out. */
function binding(db: Database): D1Database {
  return (db as unknown as { $client: D1Database }).$client;
}

/**
 * The statements of a claim, written once from the schema's names rather than built by
 * drizzle on every request: building an upsert per event was half the POST route's CPU time
 * in workerd (`npm run bench -- --profile`). Each is the statement drizzle built before.
 */
const sql = (() => {
  const table = `"${getTableName(webhookEvents)}"`;
  const column = (name: keyof typeof webhookEvents._.columns) => `"${webhookEvents[name].name}"`;
  const eventId = column("eventId");
  const correlationId = column("correlationId");
  const status = column("status");
  const receivedAt = column("receivedAt");
  const updatedAt = column("updatedAt");
  const columns = [eventId, column("provider"), correlationId, status, receivedAt, updatedAt];
  const claim = [
    `insert into ${table} (${columns.join(", ")}) values (?1, ?2, ?3, 'received', ?4, ?4)`,
    `on conflict (${eventId}) do update set ${correlationId} = excluded.${correlationId},`,
    `${receivedAt} = excluded.${receivedAt}, ${updatedAt} = excluded.${updatedAt}`,
    `where ${table}.${status} = 'received' and ${table}.${updatedAt} < ?5`,
    `returning ${eventId}`,
  ].join(" ");

  // These claims and no others: the event id finds each row by its primary key (without it,
  // D1 reads, and bills, every row of the table); the correlation id makes sure it is ours.
  const ownClaims = (count: number, first: number) => {
    const list = (from: number) =>
      Array.from({ length: count }, (_, i) => `?${from + i}`).join(", ");
    const ids = `${eventId} in (${list(first)})`;
    return `${status} = 'received' and ${ids} and ${correlationId} in (${list(first + count)})`;
  };
  const cache = new Map<string, string>();
  const cached = (key: string, build: () => string) => {
    const text = cache.get(key) ?? build();
    cache.set(key, text);
    return text;
  };
  return {
    claim: () => claim,
    release: (count: number) =>
      cached(`release:${count}`, () => `delete from ${table} where ${ownClaims(count, 1)}`),
    markQueued: (count: number) =>
      cached(`queued:${count}`, () => {
        const set = `${status} = 'queued', ${updatedAt} = ?1`;
        return `update ${table} set ${set} where ${ownClaims(count, 2)}`;
      }),
  };
})();

function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
