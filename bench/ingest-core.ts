/**
 * The receiving path's own code and its floor, timed the same way in Node (bench/ingest.ts) and
 * inside workerd (the `/__bench/ingest` route of bench/worker.ts).
 *
 * - ingest: what the POST route runs on a body before it touches D1: verify the signature,
 *   parse and validate, split into events, build one job per event (src/webhooks/route.ts).
 * - floor: the least any receiver must do with the same bytes: one HMAC-SHA256 over them (key
 *   imported once, the signature's hex decoded once) and one JSON.parse of their text.
 */
import { parseDelivery, splitDelivery } from "../src/webhooks/delivery.ts";
import { buildJobs } from "../src/webhooks/jobs.ts";
import { verifySignature } from "../src/webhooks/signature.ts";

export interface IngestRequest {
  body: string;
  /** `sha256=<hex>`, as Meta sends it. */
  signature: string;
  secret: string;
  /** Timed rounds per function after one warm-up round; the median round is reported. */
  rounds: number;
  roundMs: number;
}

export interface Timing {
  /** Median of the rounds, in microseconds per delivery. */
  us: number;
  min: number;
  max: number;
  iterations: number;
  /** Process CPU per delivery (all threads), where the host can tell; Node only. */
  cpuUs?: number;
}

export interface IngestTimings {
  floor: Timing;
  ingest: Timing;
  /**
   * Median over rounds of ingest / floor, each pair timed back to back: steadier than the
   * ratio of the medians when other work on the machine comes and goes.
   */
  ratio: number;
  steps: Record<"verify" | "parse" | "split" | "jobs", Timing>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Everything the route does to a body before its first D1 call; returns the jobs built. */
export async function receivingPath(secret: string, body: Uint8Array<ArrayBuffer>, header: string) {
  if (!(await verifySignature(secret, body, header))) throw new Error("signature did not verify");
  const delivery = parseDelivery(body);
  return buildJobs(splitDelivery(delivery), Date.now());
}

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

type Clock = () => number;

/** Runs `run` over and over for `roundMs`, `rounds` times; round -1 only warms up. */
async function timeRounds(
  run: () => Promise<unknown>,
  roundMs: number,
  rounds: number,
  options: { warmUp: boolean; cpuClock?: Clock },
): Promise<Timing> {
  const { cpuClock } = options;
  const perRound: number[] = [];
  const cpuPerRound: number[] = [];
  let iterations = 0;
  for (let round = options.warmUp ? -1 : 0; round < rounds; round++) {
    const cpuStart = cpuClock?.() ?? 0;
    const start = performance.now();
    let count = 0;
    let elapsed = 0;
    do {
      await run();
      count += 1;
      elapsed = performance.now() - start;
    } while (elapsed < roundMs);
    const cpu = (cpuClock?.() ?? 0) - cpuStart;
    if (round < 0) continue;
    perRound.push((elapsed * 1000) / count);
    cpuPerRound.push(cpu / count);
    iterations += count;
  }
  return {
    us: median(perRound),
    min: Math.min(...perRound),
    max: Math.max(...perRound),
    iterations,
    ...(cpuClock ? { cpuUs: median(cpuPerRound) } : {}),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Times the floor, the receiving path and each of its steps on one delivery. */
export async function timeIngest(request: IngestRequest, cpuClock?: Clock): Promise<IngestTimings> {
  const body = encoder.encode(request.body) as Uint8Array<ArrayBuffer>;
  const { secret, signature } = request;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const mac = hexBytes(signature.slice("sha256=".length));

  const floor = async () => {
    if (!(await crypto.subtle.verify("HMAC", key, mac, body))) throw new Error("bad signature");
    return JSON.parse(decoder.decode(body));
  };
  const ingest = () => receivingPath(secret, body, signature);

  // Floor and ingest rounds alternate, so that noise from other work on the machine falls on both.
  const { roundMs } = request;
  await timeRounds(floor, roundMs, 0, { warmUp: true });
  await timeRounds(ingest, roundMs, 0, { warmUp: true });
  const floorRounds: Timing[] = [];
  const ingestRounds: Timing[] = [];
  for (let round = 0; round < request.rounds; round++) {
    floorRounds.push(await timeRounds(floor, roundMs, 1, { warmUp: false, cpuClock }));
    ingestRounds.push(await timeRounds(ingest, roundMs, 1, { warmUp: false, cpuClock }));
  }

  const delivery = parseDelivery(body);
  const events = splitDelivery(delivery);
  const step = (run: () => Promise<unknown>) =>
    timeRounds(run, roundMs / 2, Math.max(1, Math.ceil(request.rounds / 2)), {
      warmUp: true,
      cpuClock,
    });
  const steps = {
    verify: await step(() => verifySignature(secret, body, signature)),
    parse: await step(async () => parseDelivery(body)),
    split: await step(async () => splitDelivery(delivery)),
    jobs: await step(async () => buildJobs(events, 0)),
  };
  const ratio = median(floorRounds.map((round, i) => (ingestRounds[i]?.us ?? 0) / round.us));
  return { floor: combine(floorRounds), ingest: combine(ingestRounds), ratio, steps };
}

function combine(rounds: Timing[]): Timing {
  const cpu = rounds.map((round) => round.cpuUs).filter((value) => value !== undefined);
  return {
    us: median(rounds.map((round) => round.us)),
    min: Math.min(...rounds.map((round) => round.min)),
    max: Math.max(...rounds.map((round) => round.max)),
    iterations: rounds.reduce((sum, round) => sum + round.iterations, 0),
    ...(cpu.length ? { cpuUs: median(cpu) } : {}),
  };
}
