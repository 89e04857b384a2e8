import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { loadConfig } from "../config";
import { database } from "../db/client";
import type { Env } from "../env";
import type { WebhookJob } from "../jobs/job";
import { errorName, log } from "../log";
import { secretsEqual } from "../secrets";
import { readBody } from "./body";
import { claimEvents, markQueued, releaseClaims } from "./claim";
import { parseDelivery, splitDelivery } from "./delivery";
import { deadLetterOversized, EnqueueError, jobBytes, MAX_JOB_BYTES, sendJobs } from "./enqueue";
import { buildJobs } from "./jobs";
import { verifySignature } from "./signature";

export const webhooks = new Hono<{ Bindings: Env }>();

/**
 * Meta's verification handshake, answered when the webhook is subscribed.
 * https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
 */
webhooks.get("/instagram", async (c) => {
  const config = loadConfig(c.env);
  const mode = c.req.query("hub.mode");
  const token = c.req.query("hub.verify_token") ?? "";
  const challenge = c.req.query("hub.challenge");

  const tokenMatches = await secretsEqual(token, config.META_VERIFY_TOKEN);
  if (mode !== "subscribe" || !tokenMatches) {
    throw new HTTPException(403, { message: "hub.mode or hub.verify_token does not match" });
  }
  if (!challenge) throw new HTTPException(400, { message: "hub.challenge is required" });
  return c.text(challenge);
});

webhooks.post("/instagram", async (c) => {
  const config = loadConfig(c.env);

  // Verify before anything else: an unsigned body is never parsed, stored or enqueued.
  const body = await readBody(c.req.raw);
  const signature = c.req.header("x-hub-signature-256");
  if (!(await verifySignature(config.META_APP_SECRET, body, signature))) {
    throw new HTTPException(401, { message: "X-Hub-Signature-256 is missing or does not match" });
  }

  const delivery = parseDelivery(body);
  const receivedAt = Date.now();
  const deliveryId = crypto.randomUUID();
  const jobs = buildJobs(splitDelivery(delivery), receivedAt);

  const db = database(c.env.DB);
  // If giving claims back fails too, they lapse after CLAIM_LEASE_MS and a redelivery gets in.
  const release = (claims: WebhookJob[]) =>
    releaseClaims(db, claims).catch(() => {
      log.error("claim release failed", { deliveryId, count: claims.length });
    });
  const confirm = (sent: WebhookJob[]) =>
    markQueued(db, sent, Date.now()).catch(() => {
      log.warn("marking events queued failed", { deliveryId, count: sent.length });
    });

  const { claimed, duplicates, inFlight } = await claimEvents(db, jobs, receivedAt).catch(
    async (error: unknown) => {
      // The claim may have committed before the failure; give it back so a redelivery gets in.
      await release(jobs);
      throw error;
    },
  );
  const claimedIds = new Set(claimed.map((claim) => claim.eventId));
  const newJobs = jobs.filter((job) => claimedIds.has(job.eventId));
  const oversized = newJobs.filter((job) => jobBytes(job) > MAX_JOB_BYTES);
  const sendable = newJobs.filter((job) => jobBytes(job) <= MAX_JOB_BYTES);

  try {
    await deadLetterOversized(db, config, oversized, (task) => c.executionCtx.waitUntil(task));
    await sendJobs(c.env.JOBS, sendable);
  } catch (error) {
    // Nothing after the failed step was taken in; a dead letter already written stays.
    const unsent = new Set(error instanceof EnqueueError ? error.unsent : newJobs);
    await Promise.all([release([...unsent]), confirm(sendable.filter((job) => !unsent.has(job)))]);
    log.error("enqueue failed", { deliveryId, count: unsent.size, errorClass: errorName(error) });
    throw new HTTPException(503, { message: "the job queue is unavailable; retry the delivery" });
  }

  c.executionCtx.waitUntil(confirm(sendable));
  for (const job of sendable) {
    log.info("event enqueued", {
      deliveryId,
      eventId: job.eventId,
      correlationId: job.correlationId,
      provider: job.provider,
    });
  }
  log.info("delivery received", {
    deliveryId,
    provider: "instagram",
    count: jobs.length,
    status: inFlight.length > 0 ? "in_flight" : "accepted",
  });

  // Another request holds these claims and has not confirmed its jobs; if it died, only a
  // redelivery after the lease can enqueue them, so ask Meta for one.
  if (inFlight.length > 0) {
    throw new HTTPException(503, { message: "some events are still being received; retry" });
  }
  return c.json({ received: newJobs.length, duplicates: duplicates.length });
});
