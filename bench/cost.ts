/**
 * Cost per event: what one event spends on each path through the pipeline, counted by the
 * instrumented Worker (bench/worker.ts), priced at Cloudflare's published rates (prices.ts).
 *
 * Paths, each a one-event delivery from its own user, one path at a time:
 *   success-new     a text from a new user: stored, replied to
 *   success-known   a text from a user seen before (the conversation row exists)
 *   retry           the Send API fails once (500), the retry replies
 *   dead-permanent  the Send API refuses for good (code 190): a dead letter at once
 *   dead-exhausted  the Send API always fails (500): 4 attempts, then the dead-letter queue
 */
import { createServer } from "node:http";
import type { StandIn } from "../scripts/graph-stand-in.ts";
import { deliveryBody, messagingEvent } from "./deliveries.ts";
import type { Host } from "./host.ts";
import { sign } from "./ingest.ts";
import { USD_PER_MILLION } from "./prices.ts";
import type { Counters } from "./worker.ts";

export const COST_PATHS = [
  "success-new",
  "success-known",
  "retry",
  "dead-permanent",
  "dead-exhausted",
] as const;
export type CostPath = (typeof COST_PATHS)[number];

export interface PerEvent {
  d1RowsRead: number;
  d1RowsWritten: number;
  d1Calls: number;
  queueWrites: number;
  queueReads: number;
  queueDeletes: number;
  /**
   * Billed invocations: the delivery's request plus one consumer invocation per attempt, as in
   * a quiet inbox where every job is a batch of its own. Busier queues batch jobs together.
   */
  requests: number;
  /** Consumer invocations as this run's batching made them. */
  consumerInvocations: number;
  subrequests: number;
  /**
   * workerd's CPU for the whole path, less its idle rate: an upper bound on billed CPU, since
   * local D1 and the local queue run in the same process.
   */
  workerdCpuMs: number;
}

export interface PathCost {
  path: CostPath;
  events: number;
  perEvent: PerEvent;
  /** D1 rows per event, by statement (`insert audit_entries`, ...). */
  rowsBy: Record<string, { read: number; written: number }>;
  usdPerMillionEvents: Record<keyof typeof USD_PER_MILLION | "total", number>;
}

/** The vars the cost host needs: retries at once, and an alert target that answers 200. */
export const COST_RETRY_DELAYS = "0,0,0";

export async function startAlertSink(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(200).end("ok"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function counters(host: Host, reset = false): Promise<Counters> {
  const response = await fetch(`${host.url}/__bench/counters`, {
    method: reset ? "POST" : "GET",
  });
  return (await response.json()) as Counters;
}

function sendersFor(path: CostPath, run: string, events: number): string[] {
  const prefix: Record<CostPath, string> = {
    "success-new": "known",
    "success-known": "known",
    retry: "flaky-500",
    "dead-permanent": "fail-190",
    "dead-exhausted": "fail-500",
  };
  return Array.from({ length: events }, (_, i) => `${prefix[path]}-${run}-${i}`);
}

/** Whether every event of the path has reached its end, by the queue's own counts. */
function settled(path: CostPath, seen: Counters, events: number): boolean {
  const jobs = Object.entries(seen.queues).find(([name]) => !name.endsWith("-dlq"))?.[1];
  const dlq = Object.entries(seen.queues).find(([name]) => name.endsWith("-dlq"))?.[1];
  if (path === "dead-exhausted") return (dlq?.acked ?? 0) >= events;
  return (jobs?.acked ?? 0) >= events;
}

async function runPath(
  host: Host,
  path: CostPath,
  run: string,
  events: number,
  secret: string,
  timeoutMs: number,
  idleCpuMsPerSecond: number,
): Promise<PathCost> {
  await counters(host, true);
  const started = Date.now();
  const cpuStart = host.workerdCpuSeconds();
  for (const [i, sender] of sendersFor(path, run, events).entries()) {
    const body = deliveryBody([
      messagingEvent(i, "text", { sender, salt: `${run}-${path}`, timestamp: Date.now() }),
    ]);
    const response = await fetch(`${host.url}/webhooks/instagram`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": sign(body, secret) },
      body,
    });
    if (!response.ok) throw new Error(`cost ${path}: delivery answered ${response.status}`);
    await response.arrayBuffer();
  }

  const deadline = Date.now() + timeoutMs;
  let seen = await counters(host);
  while (!settled(path, seen, events)) {
    if (Date.now() > deadline) {
      throw new Error(`cost ${path}: not settled in ${timeoutMs} ms: ${JSON.stringify(seen)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    seen = await counters(host);
  }
  // Background work after the last acknowledgement (the dead letter's alert) finishes here.
  await new Promise((resolve) => setTimeout(resolve, 500));
  seen = await counters(host);
  const idleMs = ((Date.now() - started) / 1000) * idleCpuMsPerSecond;
  const cpuMs = Math.max(0, (host.workerdCpuSeconds() - cpuStart) * 1000 - idleMs);
  return price(path, events, seen, cpuMs);
}

const POLL_MS = 250;

/** workerd's CPU per second while nothing but this polling happens, to take off each path. */
async function idleCpu(host: Host, seconds: number): Promise<number> {
  const start = host.workerdCpuSeconds();
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    await counters(host);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return ((host.workerdCpuSeconds() - start) * 1000) / seconds;
}

function price(path: CostPath, events: number, seen: Counters, cpuMs: number): PathCost {
  const queues = Object.values(seen.queues);
  const sum = (pick: (q: (typeof queues)[number]) => number) =>
    queues.reduce((total, queue) => total + pick(queue), 0);
  const perEvent: PerEvent = {
    d1RowsRead: seen.d1.rowsRead / events,
    d1RowsWritten: seen.d1.rowsWritten / events,
    d1Calls: seen.d1.calls / events,
    queueWrites: (seen.producer.writeOps + sum((q) => q.movedIn)) / events,
    queueReads: sum((q) => q.readOps) / events,
    queueDeletes: sum((q) => q.deleteOps) / events,
    requests: (seen.requests + sum((q) => q.delivered)) / events,
    consumerInvocations: sum((q) => q.invocations) / events,
    subrequests: seen.subrequests.total / events,
    workerdCpuMs: cpuMs / events,
  };
  const operations = perEvent.queueWrites + perEvent.queueReads + perEvent.queueDeletes;
  // Per million events, a per-event count is millions of units: count x price per million.
  const usd = {
    d1RowsRead: perEvent.d1RowsRead * USD_PER_MILLION.d1RowsRead,
    d1RowsWritten: perEvent.d1RowsWritten * USD_PER_MILLION.d1RowsWritten,
    queueOperations: operations * USD_PER_MILLION.queueOperations,
    workersRequests: perEvent.requests * USD_PER_MILLION.workersRequests,
    workersCpuMs: perEvent.workerdCpuMs * USD_PER_MILLION.workersCpuMs,
  };
  const total = Object.values(usd).reduce((a, b) => a + b, 0);
  const rowsBy = Object.fromEntries(
    Object.entries(seen.d1.byStatement).map(([statement, entry]) => [
      statement,
      { read: entry.rowsRead / events, written: entry.rowsWritten / events },
    ]),
  );
  return { path, events, perEvent, rowsBy, usdPerMillionEvents: { ...usd, total } };
}

export async function runCost(
  host: Host,
  _standIn: StandIn,
  secret: string,
  options: { events: number; log: (line: string) => void },
): Promise<PathCost[]> {
  const run = Date.now().toString(36);
  const idleCpuMsPerSecond = await idleCpu(host, 2);
  const results: PathCost[] = [];
  for (const path of COST_PATHS) {
    const result = await runPath(
      host,
      path,
      run,
      options.events,
      secret,
      60_000,
      idleCpuMsPerSecond,
    );
    options.log(
      `cost: ${path}: ${result.perEvent.d1RowsWritten.toFixed(1)} rows written, ` +
        `$${result.usdPerMillionEvents.total.toFixed(2)} per million events`,
    );
    results.push(result);
  }
  return results;
}
