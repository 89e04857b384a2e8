/**
 * Ingest cost: the receiving path's own code beside its floor (bench/ingest-core.ts), on
 * deliveries of about 1, 10 and 100 KB, in Node and, when a local Worker is given, inside
 * workerd, the runtime that runs it in production.
 */
import { createHmac } from "node:crypto";
import { INGEST_SIZES, type SizedDelivery, sizedDelivery } from "./deliveries.ts";
import { type IngestRequest, type IngestTimings, timeIngest } from "./ingest-core.ts";
import type { RouteTiming } from "./route-timing.ts";

export interface IngestCase {
  label: string;
  bytes: number;
  events: number;
  node: IngestTimings;
  workerd?: IngestTimings;
  /** The whole POST route in workerd, D1 and the queue stubbed. */
  route?: RouteTiming;
}

async function postJson<T>(url: string, body: unknown): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

export function sign(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Process CPU in microseconds, all threads: Node's WebCrypto runs on its thread pool. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function requestFor(delivery: SizedDelivery, secret: string, smoke: boolean): IngestRequest {
  return {
    body: delivery.body,
    signature: sign(delivery.body, secret),
    secret,
    rounds: smoke ? 2 : 25,
    roundMs: smoke ? 20 : 60,
  };
}

export async function runIngest(options: {
  smoke: boolean;
  secret: string;
  /** A local Worker built from bench/worker.ts, to time the same code inside workerd. */
  workerUrl?: string;
  log: (line: string) => void;
}): Promise<IngestCase[]> {
  const cases: IngestCase[] = [];
  for (const [label, target] of INGEST_SIZES) {
    const delivery = sizedDelivery(label, target);
    const request = requestFor(delivery, options.secret, options.smoke);
    options.log(`ingest: ${label} (${delivery.bytes} bytes, ${delivery.events} events) in Node`);
    const node = await timeIngest(request, cpuMicros);
    let workerd: IngestTimings | undefined;
    let route: RouteTiming | undefined;
    if (options.workerUrl) {
      options.log(`ingest: ${label} in workerd`);
      workerd = await postJson<IngestTimings>(`${options.workerUrl}/__bench/ingest`, request);
      route = await postJson<RouteTiming>(`${options.workerUrl}/__bench/route`, {
        body: request.body,
        signature: request.signature,
        rounds: request.rounds,
        roundMs: request.roundMs,
      });
    }
    cases.push({ label, bytes: delivery.bytes, events: delivery.events, node, workerd, route });
  }
  return cases;
}
