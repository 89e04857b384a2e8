/**
 * Load: signed one-event deliveries at fixed concurrency against a local Worker, beside the
 * runtime's own floor (`/__bench/noop`) on the same server, and the time from each POST to its
 * reply reaching the Graph stand-in. Each phase is bounded in requests and in seconds.
 */
import { Agent, request as httpRequest } from "node:http";
import type { StandIn } from "../scripts/graph-stand-in.ts";
import { deliveryBody, messagingEvent } from "./deliveries.ts";
import type { Host } from "./host.ts";
import { sign } from "./ingest.ts";
import { type Summary, summarize } from "./stats.ts";

export interface Phase {
  route: "webhook" | "noop";
  concurrency: number;
  requests: number;
  seconds: number;
  rps: number;
  latency: Summary;
  /** Answers by HTTP status; anything but 200 is a failure of the run. */
  statuses: Record<string, number>;
  /** workerd CPU per request while the phase ran (the consumer's work included, if any). */
  cpuMsPerRequest: number;
  samples: number[];
}

export interface Replies {
  expected: number;
  arrived: number;
  latency: Summary;
  /** workerd CPU per event from the first POST until the last reply arrived. */
  cpuMsPerEvent?: number;
  samples: number[];
}

export interface Level {
  concurrency: number;
  noop: Phase;
  /** The webhook with the job consumer held back: the receiving route alone on the server. */
  received?: Phase;
  /** The webhook with the consumer running beside it, as it runs locally. */
  webhook: Phase;
  replies: Replies;
}

export interface HostLoad {
  host: Host["kind"];
  jobQueue: Host["jobQueue"];
  levels: Level[];
  /** Lone messages sent to an idle Worker: the reply latency a quiet inbox sees. */
  idle: Replies;
}

export interface LoadPlan {
  concurrencies: number[];
  requests: (concurrency: number) => number;
  maxSeconds: number;
  idleMessages: number;
  replyWaitSeconds: number;
  /** Also time the webhook with the consumer held back, at every level. */
  holdConsumer: boolean;
}

interface Prepared {
  path: string;
  body: string;
  headers: Record<string, string>;
  sender: string;
}

function deliveries(tag: string, count: number, secret: string, route: Phase["route"]) {
  const prepared: Prepared[] = [];
  for (let i = 0; i < count; i++) {
    const sender = `${tag}-${i}`;
    const body = deliveryBody([
      messagingEvent(i, "text", { sender, salt: tag, timestamp: Date.now() }),
    ]);
    prepared.push({
      path: route === "noop" ? "/__bench/noop" : "/webhooks/instagram",
      body,
      sender,
      headers: {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        "x-hub-signature-256": sign(body, secret),
      },
    });
  }
  return prepared;
}

function post(agent: Agent, url: URL, item: Prepared): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { agent, host: url.hostname, port: url.port, path: item.path, method: "POST" },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    for (const [name, value] of Object.entries(item.headers)) req.setHeader(name, value);
    req.on("error", reject);
    req.end(item.body);
  });
}

async function runPhase(
  host: Host,
  route: Phase["route"],
  items: Prepared[],
  concurrency: number,
  maxSeconds: number,
  sentAt: Map<string, number>,
): Promise<Phase> {
  const url = new URL(host.url);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  const cpuStart = host.workerdCpuSeconds();
  const start = performance.now();
  const deadline = start + maxSeconds * 1000;
  let next = 0;

  const client = async () => {
    while (next < items.length && performance.now() < deadline) {
      const item = items[next++];
      if (!item) break;
      const began = performance.now();
      sentAt.set(item.sender, Date.now());
      const status = await post(agent, url, item).catch(() => 0);
      samples.push(performance.now() - began);
      statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - start) / 1000;
  const cpu = host.workerdCpuSeconds() - cpuStart;
  agent.destroy();
  return {
    route,
    concurrency,
    requests: samples.length,
    seconds,
    rps: samples.length / seconds,
    latency: summarize(samples),
    statuses,
    cpuMsPerRequest: (cpu * 1000) / Math.max(1, samples.length),
    samples,
  };
}

/** Waits for the replies to these senders, up to `waitSeconds` after the last POST. */
async function collectReplies(
  standIn: StandIn,
  sentAt: Map<string, number>,
  waitSeconds: number,
): Promise<Replies> {
  const deadline = Date.now() + waitSeconds * 1000;
  const arrivedAt = new Map<string, number>();
  let scanned = 0;
  while (Date.now() < deadline) {
    for (; scanned < standIn.replies.length; scanned++) {
      const reply = standIn.replies[scanned];
      if (reply && sentAt.has(reply.recipientId)) arrivedAt.set(reply.recipientId, reply.at);
    }
    if (arrivedAt.size >= sentAt.size) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const samples = [...arrivedAt].map(([sender, at]) => at - (sentAt.get(sender) ?? at));
  return { expected: sentAt.size, arrived: arrivedAt.size, latency: summarize(samples), samples };
}

export async function runLoad(
  host: Host,
  standIn: StandIn,
  secret: string,
  plan: LoadPlan,
  log: (line: string) => void,
): Promise<HostLoad> {
  const run = `${host.kind}-${Date.now().toString(36)}`;

  // Warm-up: compile, open connections, create the tables' first pages.
  const warm = new Map<string, number>();
  await runPhase(host, "noop", deliveries(`${run}-wn`, 20, secret, "noop"), 4, 10, new Map());
  await runPhase(host, "webhook", deliveries(`${run}-ww`, 20, secret, "webhook"), 4, 10, warm);
  await collectReplies(standIn, warm, plan.replyWaitSeconds);

  const idle = await idleReplies(host, standIn, secret, `${run}-idle`, plan);
  log(`load: ${host.kind}: idle reply p50 ${idle.latency.p50.toFixed(0)} ms`);

  const levels: Level[] = [];
  for (const concurrency of plan.concurrencies) {
    const count = plan.requests(concurrency);
    const tag = `${run}-c${concurrency}`;
    const noop = await runPhase(
      host,
      "noop",
      deliveries(`${tag}-n`, count, secret, "noop"),
      concurrency,
      plan.maxSeconds,
      new Map(),
    );
    const received = plan.holdConsumer
      ? await heldPhase(host, standIn, secret, `${tag}-h`, concurrency, plan)
      : undefined;
    const sentAt = new Map<string, number>();
    const cpuStart = host.workerdCpuSeconds();
    const webhook = await runPhase(
      host,
      "webhook",
      deliveries(`${tag}-w`, count, secret, "webhook"),
      concurrency,
      plan.maxSeconds,
      sentAt,
    );
    const replies = await collectReplies(standIn, sentAt, plan.replyWaitSeconds);
    replies.cpuMsPerEvent = ((host.workerdCpuSeconds() - cpuStart) * 1000) / webhook.requests;
    levels.push({ concurrency, noop, received, webhook, replies });
    log(
      `load: ${host.kind} c=${concurrency}: webhook p99 ${webhook.latency.p99.toFixed(1)} ms` +
        ` (consumer held ${received?.latency.p99.toFixed(1) ?? "–"} ms,` +
        ` noop ${noop.latency.p99.toFixed(1)} ms), ${webhook.rps.toFixed(0)} req/s,` +
        ` replies ${replies.arrived}/${replies.expected} p99 ${replies.latency.p99.toFixed(0)} ms`,
    );
  }
  return { host: host.kind, jobQueue: host.jobQueue, levels, idle };
}

async function holdConsumer(host: Host, hold: boolean) {
  const response = await fetch(`${host.url}/__bench/consumer?hold=${hold ? 1 : 0}`, {
    method: "POST",
  });
  if (!response.ok) throw new Error(`holding the consumer failed: ${response.status}`);
  await response.arrayBuffer();
}

/** A webhook phase while the consumer waits; then it catches up before the next phase. */
async function heldPhase(
  host: Host,
  standIn: StandIn,
  secret: string,
  tag: string,
  concurrency: number,
  plan: LoadPlan,
): Promise<Phase> {
  const sentAt = new Map<string, number>();
  const items = deliveries(tag, plan.requests(concurrency), secret, "webhook");
  await holdConsumer(host, true);
  try {
    return await runPhase(host, "webhook", items, concurrency, plan.maxSeconds, sentAt);
  } finally {
    await holdConsumer(host, false);
    await collectReplies(standIn, sentAt, plan.replyWaitSeconds);
  }
}

/** One delivery at a time, each after the previous reply arrived and the consumer went idle. */
async function idleReplies(
  host: Host,
  standIn: StandIn,
  secret: string,
  tag: string,
  plan: LoadPlan,
): Promise<Replies> {
  const all = new Map<string, number>();
  const samples: number[] = [];
  for (const item of deliveries(tag, plan.idleMessages, secret, "webhook")) {
    const sentAt = new Map<string, number>();
    await runPhase(host, "webhook", [item], 1, plan.maxSeconds, sentAt);
    const replies = await collectReplies(standIn, sentAt, plan.replyWaitSeconds);
    samples.push(...replies.samples);
    for (const [sender, at] of sentAt) all.set(sender, at);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { expected: all.size, arrived: samples.length, latency: summarize(samples), samples };
}
