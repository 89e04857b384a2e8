/**
 * Where the time goes: V8 CPU profiles of the receiving path in Node, and of the Worker inside
 * workerd under load (through workerd's inspector), summed by function and by origin (a
 * package, a folder of src/, the runtime). `npm run bench -- --profile` runs both.
 */
import { Session } from "node:inspector/promises";
import { sizedDelivery } from "./deliveries.ts";
import { sign } from "./ingest.ts";
import { receivingPath } from "./ingest-core.ts";
import { originOf, type SourceMap, sourceAt } from "./sourcemap.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  origin: string;
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  byOrigin: ProfileRow[];
  byFunction: ProfileRow[];
}

/** Where a frame's code comes from: a package, a folder of src/, or the runtime itself. */
function frameOrigin(frame: CallFrame, map?: SourceMap): string {
  if (!frame.url) return frame.functionName.startsWith("(") ? frame.functionName : "(runtime)";
  if (frame.url.startsWith("node:")) return `node:${frame.url.slice(5).split("/")[1] ?? ""}`;
  if (frame.url.startsWith("cloudflare-internal:")) return `workerd: ${frame.url.slice(20)}`;
  if (map && !frame.url.startsWith("file:")) {
    const source = sourceAt(map, frame.lineNumber, frame.columnNumber);
    if (source) return originOf(source);
  }
  return originOf(frame.url.replace(/^file:\/\//, ""));
}

export function summarize(profile: CpuProfile, map?: SourceMap, top = 25): ProfileSummary {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const origins = new Map<string, number>();
  const functions = new Map<string, { origin: string; name: string; us: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    total += us;
    const origin = frameOrigin(node.callFrame, map);
    const name = node.callFrame.functionName || "(anonymous)";
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const key = `${origin} ${name}`;
    const entry = functions.get(key) ?? { origin, name, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const row = (origin: string, name: string, us: number): ProfileRow => ({
    origin,
    name,
    ms: us / 1000,
    share: us / total,
  });
  return {
    totalMs: total / 1000,
    byOrigin: [...origins].map(([origin, us]) => row(origin, "", us)).sort((a, b) => b.ms - a.ms),
    byFunction: [...functions.values()]
      .map((entry) => row(entry.origin, entry.name, entry.us))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}

/** Profiles the receiving path in this Node process on the 1 KB and 10 KB deliveries. */
export async function profileIngest(secret: string, seconds: number): Promise<CpuProfile> {
  const deliveries = [sizedDelivery("1 KB", 1_000), sizedDelivery("10 KB", 10_000)].map((d) => ({
    body: new TextEncoder().encode(d.body) as Uint8Array<ArrayBuffer>,
    header: sign(d.body, secret),
  }));
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      for (const delivery of deliveries)
        await receivingPath(secret, delivery.body, delivery.header);
    }
    const { profile } = await session.post("Profiler.stop");
    return profile as unknown as CpuProfile;
  } finally {
    session.disconnect();
  }
}

/**
 * Profiles an isolate in workerd while `work` runs, through its inspector. Miniflare names the
 * user Worker's isolate `core:user:<name>`; local D1 runs in `d1:db`.
 */
export async function profileWorker(
  inspectorPort: number,
  work: () => Promise<unknown>,
  isolate = "core:user:",
) {
  const targets = (await (
    await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)
  ).json()) as Array<{ title: string; webSocketDebuggerUrl: string }>;
  const target = targets.find((candidate) => candidate.title.endsWith(`worker ${isolate}`));
  if (!target) throw new Error(`workerd's inspector lists no isolate ${isolate}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve);
    socket.addEventListener("error", reject);
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) {
      waiting.get(message.id)?.(message.result ?? {});
      waiting.delete(message.id);
    }
  });
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) => {
      id += 1;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
      setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 120_000).unref();
    });
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: 200 });
    await call("Profiler.start");
    await work();
    const { profile } = (await call("Profiler.stop")) as { profile: CpuProfile };
    return profile;
  } finally {
    socket.close();
  }
}

export function profileTable(title: string, summary: ProfileSummary): string {
  const lines = [`### ${title} (${summary.totalMs.toFixed(0)} ms sampled)`, ""];
  lines.push("| origin | share |", "| --- | --- |");
  for (const row of summary.byOrigin.slice(0, 15)) {
    lines.push(`| ${row.origin} | ${(row.share * 100).toFixed(1)}% |`);
  }
  lines.push("", "| function | origin | share |", "| --- | --- | --- |");
  for (const row of summary.byFunction) {
    lines.push(`| ${row.name} | ${row.origin} | ${(row.share * 100).toFixed(1)}% |`);
  }
  return lines.join("\n");
}
