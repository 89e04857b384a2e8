import { createScheduledController, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { insertEventRow } from "./support/jobs";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 11, 3, 3, 17);

function insertEvent(eventId: string, status: string, updatedAt: number) {
  return insertEventRow({ eventId, correlationId: `c-${eventId}`, status, at: updatedAt });
}

async function insertDeadLetter(id: string, createdAt: number) {
  await env.DB.prepare(
    "INSERT INTO dead_letters (id, event_id, provider, correlation_id, attempts, error_class, " +
      "error_code, error_message, payload_sealed, created_at) " +
      "VALUES (?, ?, 'instagram', 'c', 4, 'retryable', 'http_500', 'm', 'v1.x.y', ?)",
  )
    .bind(id, `event-${id}`, createdAt)
    .run();
}

const INSERT_AUDIT =
  "INSERT INTO audit_entries (event_id, provider, correlation_id, action, created_at) " +
  "VALUES (?, 'instagram', 'c', 'processed', ?)";

async function insertAudit(eventId: string, createdAt: number) {
  await env.DB.prepare(INSERT_AUDIT).bind(eventId, createdAt).run();
}

async function ids(table: string, column: string) {
  const { results } = await env.DB.prepare(
    `SELECT ${column} AS id FROM ${table} ORDER BY ${column}`,
  ).all<{
    id: string;
  }>();
  return results.map((row) => row.id);
}

async function runCron(bindings: Record<string, string> = {}) {
  const controller = createScheduledController({ scheduledTime: NOW, cron: "17 3 * * *" });
  await worker.scheduled(controller, { ...env, ...bindings });
}

beforeEach(async () => {
  for (const table of ["webhook_events", "dead_letters", "audit_entries", "messages", "replies"]) {
    await env.DB.prepare(`DELETE FROM ${table}`).run();
  }
});

describe("retention cron", () => {
  it("purges finished claims past the claim window and keeps recent and unfinished ones", async () => {
    await insertEvent("old-processed", "processed", NOW - 73 * HOUR);
    await insertEvent("old-skipped", "skipped", NOW - 10 * DAY);
    await insertEvent("old-dead", "dead_lettered", NOW - 10 * DAY);
    await insertEvent("recent-processed", "processed", NOW - 35 * HOUR);
    await insertEvent("old-retrying", "retrying", NOW - 10 * DAY);
    await insertEvent("old-queued", "queued", NOW - 10 * DAY);

    await runCron();

    expect(await ids("webhook_events", "event_id")).toEqual([
      "old-queued",
      "old-retrying",
      "recent-processed",
    ]);
  });

  it("keeps every claim for the whole of Meta's 36-hour redelivery window", async () => {
    await insertEvent("36h", "processed", NOW - 36 * HOUR);
    await runCron({ CLAIM_RETENTION_HOURS: "37" });
    expect(await ids("webhook_events", "event_id")).toEqual(["36h"]);
  });

  it("purges dead letters and audit entries after their own periods", async () => {
    await insertDeadLetter("dl-old", NOW - 31 * DAY);
    await insertDeadLetter("dl-recent", NOW - 29 * DAY);
    await insertAudit("audit-old", NOW - 91 * DAY);
    await insertAudit("audit-recent", NOW - 89 * DAY);

    await runCron();

    expect(await ids("dead_letters", "id")).toEqual(["dl-recent"]);
    expect(await ids("audit_entries WHERE action != 'retention_purged'", "event_id")).toEqual([
      "audit-recent",
    ]);
  });

  it("honours configured periods", async () => {
    await insertDeadLetter("dl-8-days", NOW - 8 * DAY);
    await runCron({ DEAD_LETTER_RETENTION_DAYS: "7" });
    expect(await ids("dead_letters", "id")).toEqual([]);
  });

  it("audits each run as counts, without naming what it deleted", async () => {
    await insertEvent("old-processed-1", "processed", NOW - 10 * DAY);
    await insertEvent("old-processed-2", "processed", NOW - 10 * DAY);
    await insertDeadLetter("dl-old", NOW - 40 * DAY);

    await runCron();

    const entry = await env.DB.prepare(
      "SELECT event_id, provider, action, reason FROM audit_entries WHERE action = 'retention_purged'",
    ).first();
    expect(entry).toEqual({
      event_id: "retention",
      provider: "system",
      action: "retention_purged",
      reason: "webhookEvents=2 messages=0 replies=0 deadLetters=1 auditEntries=0",
    });
  });

  it("deletes in chunks when more rows expired than one statement takes", async () => {
    const statements = Array.from({ length: 2_500 }, (_, i) =>
      env.DB.prepare(INSERT_AUDIT).bind(`bulk-${i}`, NOW - 200 * DAY),
    );
    await env.DB.batch(statements);

    await runCron();

    const left = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_entries WHERE action != 'retention_purged'",
    ).first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("fails loudly when a retention setting is invalid", async () => {
    await expect(runCron({ CLAIM_RETENTION_HOURS: "12" })).rejects.toThrow(/CLAIM_RETENTION_HOURS/);
  });
});
