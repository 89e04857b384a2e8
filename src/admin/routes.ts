import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import * as z from "zod/mini";
import { auditEntry } from "../audit";
import { loadConfig } from "../config";
import { type Database, database } from "../db/client";
import type { DeadLetter } from "../db/schema";
import type { Env } from "../env";
import { log } from "../log";
import { importSealKey } from "../seal";
import { readBody } from "../webhooks/body";
import { requireAdmin } from "./auth";
import {
  deadLetterView,
  findDeadLetter,
  listDeadLetters,
  openDeadLetters,
  purgeDeadLetter,
} from "./dead-letters";
import { eventContent, eventReport } from "./events";
import {
  bulkReplayBody,
  deadLetterListQuery,
  deadLetterQuery,
  eventQuery,
  idSchema,
  MAX_ADMIN_BODY_BYTES,
  parseInput,
} from "./input";
import { openPayload, type Replayer, replayDeadLetter, replayEach, UNREADABLE } from "./replay";

/** The operator's API. Every route sits behind the admin token; see src/admin/auth.ts. */
export const admin = new Hono<{ Bindings: Env }>();

admin.use(requireAdmin());

const eventPath = z.object({ eventId: idSchema });
const deadLetterPath = z.object({ id: idSchema });

admin.get("/events/:eventId", async (c) => {
  const { eventId } = parseInput(eventPath, c.req.param(), "path");
  const { include } = parseInput(eventQuery, c.req.query(), "query");
  const db = database(c.env.DB);

  const report = await eventReport(db, eventId);
  if (!report) throw new HTTPException(404, { message: `no event ${eventId}` });
  if (include !== "content") return c.json(report);

  // The view is audited before anything is opened: no audit entry, no text.
  const sealKey = await sealKeyOf(c.env);
  const { provider, correlationId } = report.event;
  const viewed = { eventId, provider, correlationId, reason: "message_text" };
  await auditEntry(db, { ...viewed, action: "content_viewed" });
  log.info("content viewed", viewed);
  return c.json({ ...report, content: await eventContent(db, sealKey, eventId) });
});

admin.get("/dead-letters", async (c) => {
  const query = parseInput(deadLetterListQuery, c.req.query(), "query");
  return c.json(await listDeadLetters(database(c.env.DB), query));
});

admin.post("/dead-letters/replay", async (c) => {
  const body = await readBody(c.req.raw, MAX_ADMIN_BODY_BYTES);
  const { max, ...filter } = parseInput(bulkReplayBody, parseJsonBody(body), "body");
  const replayer = await replayerOf(c.env);

  const rows = await openDeadLetters(replayer.db, filter, max);
  return c.json(await replayEach(replayer, rows));
});

admin.get("/dead-letters/:id", async (c) => {
  const { id } = parseInput(deadLetterPath, c.req.param(), "path");
  const { include } = parseInput(deadLetterQuery, c.req.query(), "query");
  const db = database(c.env.DB);
  const row = await existing(db, id);
  if (include !== "payload") return c.json({ deadLetter: deadLetterView(row) });

  const sealKey = await sealKeyOf(c.env);
  const viewed = {
    eventId: row.eventId,
    provider: row.provider,
    correlationId: row.correlationId,
    reason: `dead_letter_payload:${row.id}`,
  };
  await auditEntry(db, { ...viewed, action: "content_viewed" });
  log.info("content viewed", viewed);
  const payload = await openPayload(sealKey, row);
  if (payload === UNREADABLE) throw unreadable();
  return c.json({ deadLetter: deadLetterView(row), payload });
});

admin.post("/dead-letters/:id/replay", async (c) => {
  const { id } = parseInput(deadLetterPath, c.req.param(), "path");
  const replayer = await replayerOf(c.env);
  const row = await existing(replayer.db, id);

  const result = await replayDeadLetter(replayer, row);
  if (result.outcome === "failed") {
    if (result.reason === "unreadable") throw unreadable();
    throw new HTTPException(503, {
      message: "the job queue is unavailable; the dead letter stays open",
    });
  }
  if (result.outcome === "skipped" && result.reason !== "already_replayed") {
    const holds =
      result.reason === "invalid_job"
        ? "does not hold a valid job"
        : "holds a job too large for a queue message";
    throw new HTTPException(422, {
      message: `dead letter ${id} ${holds} and cannot be replayed; purge it`,
    });
  }

  const deadLetter = deadLetterView(await existing(replayer.db, id));
  if (result.outcome === "skipped") {
    return c.json({ replayed: false, reason: result.reason, deadLetter });
  }
  return c.json({ replayed: true, correlationId: result.correlationId, deadLetter });
});

admin.delete("/dead-letters/:id", async (c) => {
  const { id } = parseInput(deadLetterPath, c.req.param(), "path");
  const purged = await purgeDeadLetter(database(c.env.DB), id);
  if (!purged) throw new HTTPException(404, { message: `no dead letter ${id}` });

  log.info("dead letter purged", {
    eventId: purged.eventId,
    correlationId: purged.correlationId,
    provider: purged.provider,
  });
  return c.json({ purged: true, deadLetter: deadLetterView(purged) });
});

function unreadable() {
  return new HTTPException(500, {
    message: "the payload cannot be opened with the configured DATA_ENCRYPTION_KEY",
  });
}

async function existing(db: Database, id: string): Promise<DeadLetter> {
  const row = await findDeadLetter(db, id);
  if (!row) throw new HTTPException(404, { message: `no dead letter ${id}` });
  return row;
}

async function sealKeyOf(env: Env): Promise<CryptoKey> {
  return importSealKey(loadConfig(env).DATA_ENCRYPTION_KEY);
}

async function replayerOf(env: Env): Promise<Replayer> {
  return { db: database(env.DB), sealKey: await sealKeyOf(env), queue: env.JOBS };
}

/** An empty body is an empty filter: every open dead letter, up to `max`. */
function parseJsonBody(body: Uint8Array): unknown {
  const text = new TextDecoder().decode(body).trim();
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HTTPException(400, { message: "invalid body: not JSON" });
  }
}
