/**
 * Turns a run's figures into the one table it prints (Markdown, so that the README can carry
 * it), the targets it checks, and the JSON it writes.
 */
import type { PathCost } from "./cost.ts";
import type { IngestCase } from "./ingest.ts";
import type { HostLoad, Phase, Replies } from "./load.ts";
import type { BundleSize } from "./size.ts";
import type { Summary } from "./stats.ts";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  wrangler: string;
  workerd: string;
  loadAverage: { start: number[]; end: number[] };
}

export interface Results {
  mode: "full" | "smoke";
  startedAt: string;
  seconds: number;
  machine: Machine;
  ingest: IngestCase[];
  load: HostLoad[];
  /** The same load on Miniflare with other job-consumer settings, for the batch choice. */
  queueSettings: HostLoad[];
  cost: PathCost[];
  size?: BundleSize;
  targets: Target[];
}

export interface Target {
  name: string;
  figure: string;
  limit: string;
  met: boolean;
  note?: string;
}

const ms = (value: number) =>
  Number.isFinite(value) ? `${value.toFixed(value < 10 ? 1 : 0)}` : "–";
const us = (value: number) => (Number.isFinite(value) ? value.toFixed(0) : "–");

function triple(summary: Summary) {
  return `${ms(summary.p50)} / ${ms(summary.p95)} / ${ms(summary.p99)}`;
}

export function evaluateTargets(results: Omit<Results, "targets">): Target[] {
  const targets: Target[] = [];
  for (const item of results.ingest) {
    const ratio = item.node.ratio;
    targets.push({
      name: `ingest ${item.label} (Node) at most 2x the floor`,
      figure: `${ratio.toFixed(2)}x (${us(item.node.ingest.us)} µs vs ${us(item.node.floor.us)} µs)`,
      limit: "≤ 2x",
      met: ratio <= 2,
    });
  }
  const small = results.ingest.find((item) => item.label === "1 KB");
  if (small) {
    targets.push({
      name: "ingest 1 KB (Node) under 0.3 ms",
      figure: `${us(small.node.ingest.us)} µs`,
      limit: "< 300 µs",
      met: small.node.ingest.us < 300,
    });
  }
  for (const host of results.load) {
    const level = host.levels.find((candidate) => candidate.concurrency === 32);
    if (!level) continue;
    const ratio = level.webhook.latency.p99 / level.noop.latency.p99;
    const alone = level.received && level.received.latency.p99 / level.noop.latency.p99;
    targets.push({
      name: `ack p99 at 32 concurrent within 1.5x of the do-nothing route (${host.host})`,
      figure: `${ratio.toFixed(2)}x (${ms(level.webhook.latency.p99)} ms vs ${ms(level.noop.latency.p99)} ms)`,
      limit: "≤ 1.5x",
      met: ratio <= 1.5,
      note:
        alone && level.received
          ? `with the consumer held back: ${alone.toFixed(2)}x (${ms(level.received.latency.p99)} ms)`
          : undefined,
    });
  }
  for (const host of [...results.load, ...results.queueSettings]) {
    // A quiet inbox: lone messages, and one sender at a time. Above that, one local consumer
    // shares workerd's single thread with the receiving route; production scales consumers.
    const quiet: Array<[string, Replies]> = [["idle", host.idle]];
    const one = host.levels.find((level) => level.concurrency === 1);
    if (one) quiet.push(["c=1", one.replies]);
    const busier = host.levels.filter((level) => level.concurrency > 1);
    const missed = busier.filter((level) => level.replies.latency.p99 > 1500);
    targets.push({
      name: `reply at the stand-in within 1.5 s of the POST, p99, quiet inbox (${host.host}, batch ${host.jobQueue.maxBatchSize}/${host.jobQueue.maxBatchTimeout} s)`,
      figure: quiet.map(([label, replies]) => `${label} ${ms(replies.latency.p99)} ms`).join(", "),
      limit: "≤ 1500 ms",
      met: quiet.every(([, replies]) => complete(replies) && replies.latency.p99 <= 1500),
      note: missed.length
        ? `missed under sustained load: ${missed.map((level) => `c=${level.concurrency} ${ms(level.replies.latency.p99)} ms`).join(", ")}`
        : undefined,
    });
  }
  for (const path of results.cost.filter((item) => item.path.startsWith("success"))) {
    targets.push({
      name: `D1 rows written per event, ${path.path}`,
      figure: path.perEvent.d1RowsWritten.toFixed(1),
      limit: "≤ 8",
      met: path.perEvent.d1RowsWritten <= 8,
    });
  }
  if (results.size) {
    targets.push({
      name: "bundle gzip",
      figure: `${results.size.gzipKiB.toFixed(1)} KiB`,
      limit: "< 60 KiB",
      met: results.size.gzipKiB < 60,
    });
  }
  return targets;
}

function complete(replies: Replies) {
  return replies.arrived === replies.expected && replies.expected > 0;
}

function statuses(phase: Phase) {
  return Object.entries(phase.statuses)
    .filter(([status]) => status !== "200")
    .map(([status, count]) => `${count}×${status}`)
    .join(" ");
}

/** The run as one Markdown table: section, measure, figure, what it compares with. */
export function table(results: Results): string {
  const rows: string[][] = [];
  for (const item of results.ingest) {
    const where = `${item.label} (${item.bytes} B, ${item.events} events)`;
    rows.push([
      "ingest, Node",
      where,
      `${us(item.node.ingest.us)} µs (CPU ${us(item.node.ingest.cpuUs ?? Number.NaN)} µs)`,
      `floor ${us(item.node.floor.us)} µs → ${item.node.ratio.toFixed(2)}x`,
    ]);
    if (item.workerd) {
      rows.push([
        "ingest, workerd",
        where,
        `${us(item.workerd.ingest.us)} µs`,
        `floor ${us(item.workerd.floor.us)} µs → ${item.workerd.ratio.toFixed(2)}x`,
      ]);
    }
    if (item.route) {
      rows.push([
        "POST route, workerd, D1 and queue stubbed",
        where,
        `${us(item.route.us)} µs`,
        `${((item.route.us / 10_000) * 100).toFixed(0)}% of the Free plan's 10 ms CPU`,
      ]);
    }
  }
  for (const host of [...results.load, ...results.queueSettings]) {
    const settings = `${host.host}, batch ${host.jobQueue.maxBatchSize}/${host.jobQueue.maxBatchTimeout} s`;
    rows.push([
      `reply, ${settings}`,
      "lone message, idle Worker",
      `p50 ${ms(host.idle.latency.p50)} / p99 ${ms(host.idle.latency.p99)} ms`,
      `${host.idle.arrived}/${host.idle.expected} replies`,
    ]);
    for (const level of host.levels) {
      const failures = statuses(level.webhook);
      rows.push([
        `load, ${settings}`,
        `c=${level.concurrency}: ack p50/p95/p99 ms`,
        `${triple(level.webhook.latency)}, ${level.webhook.rps.toFixed(0)} req/s${failures ? `, ${failures}` : ""}`,
        `noop ${triple(level.noop.latency)}, ${level.noop.rps.toFixed(0)} req/s → p99 ${(level.webhook.latency.p99 / level.noop.latency.p99).toFixed(1)}x`,
      ]);
      if (level.received) {
        rows.push([
          `load, ${settings}`,
          `c=${level.concurrency}: ack, consumer held back`,
          `${triple(level.received.latency)}, ${level.received.rps.toFixed(0)} req/s`,
          `p99 ${(level.received.latency.p99 / level.noop.latency.p99).toFixed(1)}x the noop's`,
        ]);
      }
      rows.push([
        `reply, ${settings}`,
        `c=${level.concurrency}: POST → reply p50/p99 ms`,
        `${ms(level.replies.latency.p50)} / ${ms(level.replies.latency.p99)}`,
        `${level.replies.arrived}/${level.replies.expected} replies; workerd CPU ${ms(level.replies.cpuMsPerEvent ?? Number.NaN)} ms/event, noop ${ms(level.noop.cpuMsPerRequest)} ms/req`,
      ]);
    }
  }
  for (const path of results.cost) {
    const e = path.perEvent;
    const operations = e.queueWrites + e.queueReads + e.queueDeletes;
    rows.push([
      "cost per event",
      path.path,
      `D1 ${e.d1RowsWritten.toFixed(1)} rows written, ${e.d1RowsRead.toFixed(1)} read; queue ops ${operations.toFixed(1)}; ${e.requests.toFixed(1)} requests; ${e.subrequests.toFixed(1)} subrequests; workerd CPU ≤ ${e.workerdCpuMs.toFixed(0)} ms`,
      `$${path.usdPerMillionEvents.total.toFixed(2)} per million events (D1 writes $${path.usdPerMillionEvents.d1RowsWritten.toFixed(2)})`,
    ]);
  }
  const success = results.cost.find((path) => path.path === "success-new");
  if (success) {
    const written = Object.entries(success.rowsBy)
      .filter(([, rows]) => rows.written > 0)
      .map(([statement, rows]) => `${statement} ${rows.written.toFixed(0)}`)
      .join(", ");
    rows.push(["cost per event", "success-new: rows written by statement", written, ""]);
  }
  if (results.size) {
    const top = results.size.composition
      .slice(0, 4)
      .map((part) => `${part.origin} ${(part.share * 100).toFixed(0)}%`)
      .join(", ");
    rows.push([
      "size",
      "wrangler deploy --dry-run",
      `${results.size.rawKiB.toFixed(1)} KiB, gzip ${results.size.gzipKiB.toFixed(1)} KiB`,
      top,
    ]);
  }
  for (const target of results.targets) {
    const verdict = `${target.limit}: ${target.met ? "met" : "MISSED"}`;
    rows.push([
      "target",
      target.name,
      target.figure,
      target.note ? `${verdict}; ${target.note}` : verdict,
    ]);
  }
  const header = ["section", "measure", "figure", "compared with"];
  return [header, header.map(() => "---"), ...rows]
    .map((row) => `| ${row.map((cell) => cell.replace(/\|/g, "\\|")).join(" | ")} |`)
    .join("\n");
}

/** The figures without the raw latency samples, which only the picture needs. */
export function forJson(results: Results): unknown {
  return JSON.parse(
    JSON.stringify(results, (key, value) =>
      key === "samples" || key === "batchSizes" ? undefined : value,
    ),
  );
}
