/**
 * `npm run bench`: ingest cost against its floor, latency under load, cost per event and bundle
 * size, on this machine. Prints one table and writes bench/results/latest.{json,md,svg}.
 *
 *   npm run bench                         the full run, a few minutes
 *   npm run bench -- --smoke              tiny counts, Miniflare only: checks that it all works
 *   npm run bench -- --hosts miniflare    skip wrangler dev
 *   npm run bench -- --only ingest,size   some sections only (ingest, load, queue, cost, size)
 *   npm run bench -- --out DIR            where the figures go (a smoke run: the system temp dir)
 *   npm run bench -- --profile            CPU profiles instead: where the time goes
 *
 * Everything it starts (Worker hosts, the Graph stand-in, an alert sink) is stopped at the end,
 * on failure and on Ctrl-C too. It exits non-zero when something fails to work, never because a
 * figure misses its target.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem, type } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type StandIn, startGraphStandIn } from "../scripts/graph-stand-in.ts";
import { ROOT } from "../scripts/local-env.ts";
import { COST_RETRY_DELAYS, type PathCost, runCost, startAlertSink } from "./cost.ts";
import { freePort, type Host, type HostKind, type QueueSettings, startHost } from "./host.ts";
import { type IngestCase, runIngest } from "./ingest.ts";
import { type HostLoad, type LoadPlan, runLoad } from "./load.ts";
import { profileIngest, profileTable, profileWorker, summarize } from "./profile.ts";
import { evaluateTargets, forJson, type Machine, type Results, table } from "./report.ts";
import { measureBundle } from "./size.ts";
import { readSourceMap } from "./sourcemap.ts";
import { CONCURRENCY_COLORS, latencySvg, type Panel } from "./svg.ts";
import { appSecret, benchVars } from "./vars.ts";

const SECTIONS = ["ingest", "load", "queue", "cost", "size"] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    hosts: { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
    profile: { type: "boolean", default: false },
  },
});
const smoke = values.smoke ?? false;
const hosts = (values.hosts?.split(",") ??
  (smoke ? ["miniflare"] : ["miniflare", "wrangler-dev"])) as HostKind[];
const only = new Set((values.only?.split(",") ?? SECTIONS) as Section[]);
const wants = (section: Section) => only.has(section) && !(smoke && section === "queue");
const log = (line: string) => console.log(`bench: ${line}`);

const FULL_PLAN: LoadPlan = {
  concurrencies: [1, 8, 32, 64],
  requests: (concurrency) => ({ 1: 150, 8: 300, 32: 500, 64: 640 })[concurrency] ?? 300,
  maxSeconds: 12,
  idleMessages: 5,
  replyWaitSeconds: 30,
  holdConsumer: true,
};
/** wrangler dev serves a tenth of Miniflare's rate: fewer requests, and no held-back phase. */
const DEV_PLAN: LoadPlan = {
  ...FULL_PLAN,
  requests: (concurrency) => ({ 1: 60, 8: 150, 32: 300, 64: 400 })[concurrency] ?? 150,
  idleMessages: 3,
  holdConsumer: false,
};
const SMOKE_PLAN: LoadPlan = {
  concurrencies: [1, 4],
  requests: () => 20,
  maxSeconds: 10,
  idleMessages: 2,
  replyWaitSeconds: 15,
  holdConsumer: true,
};
/** Lighter load for the batch-settings comparison: the levels a single consumer can follow. */
const QUEUE_PLAN: LoadPlan = {
  ...FULL_PLAN,
  concurrencies: [1, 8],
  idleMessages: 5,
  holdConsumer: false,
};

// Everything started is stopped here, whatever way the run ends.
const stops: Array<() => Promise<void>> = [];
async function stopAll() {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void stopAll().then(() => process.exit(130));
  });
}

function machine(loadStart: number[]): Machine {
  const version = (name: string) => {
    try {
      const manifest = readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8");
      return (JSON.parse(manifest) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    wrangler: version("wrangler"),
    workerd: version("workerd"),
    loadAverage: { start: loadStart, end: loadavg().map((value) => Math.round(value * 100) / 100) },
  };
}

async function withHost<T>(
  kind: HostKind,
  standIn: StandIn,
  vars: Record<string, string>,
  run: (host: Host) => Promise<T>,
  jobQueue?: QueueSettings,
): Promise<T> {
  const host = await startHost({ kind, vars: benchVars(standIn.url, vars), jobQueue, log });
  stops.push(host.stop);
  try {
    return await run(host);
  } finally {
    stops.splice(stops.indexOf(host.stop), 1);
    await host.stop();
  }
}

function planFor(kind: HostKind): LoadPlan {
  if (smoke) return SMOKE_PLAN;
  return kind === "wrangler-dev" ? DEV_PLAN : FULL_PLAN;
}

async function main(): Promise<Results> {
  const started = Date.now();
  const loadStart = loadavg().map((value) => Math.round(value * 100) / 100);
  const secret = appSecret();
  const standIn = await startGraphStandIn({ quiet: true });
  stops.push(standIn.close);
  const sink = await startAlertSink();
  stops.push(sink.close);
  // Retries at once, so that the cost run's failing paths end in seconds; alerts to the sink.
  const vars = { RETRY_DELAYS_SECONDS: COST_RETRY_DELAYS, ALERT_WEBHOOK_URL: sink.url };

  const size = wants("size") ? measureBundle() : undefined;
  if (size) log(`size: ${size.rawKiB} KiB, gzip ${size.gzipKiB} KiB`);

  let ingest: IngestCase[] = [];
  const load: HostLoad[] = [];
  let cost: PathCost[] = [];
  for (const kind of hosts) {
    const needed = wants("load") || (kind === hosts[0] && (wants("ingest") || wants("cost")));
    if (!needed) continue;
    await withHost(kind, standIn, vars, async (host) => {
      if (kind === hosts[0] && wants("ingest")) {
        ingest = await runIngest({ smoke, secret, workerUrl: host.url, log });
      }
      if (wants("load")) load.push(await runLoad(host, standIn, secret, planFor(kind), log));
      if (kind === hosts[0] && wants("cost")) {
        cost = await runCost(host, standIn, secret, { events: smoke ? 1 : 5, log });
      }
    });
  }

  const queueSettings: HostLoad[] = [];
  if (wants("queue")) {
    const base = load.find((item) => item.host === "miniflare")?.jobQueue;
    // The other side of the timeout choice from wrangler.toml's: 0 s if it waits, else 1 s.
    const timeout = base && base.maxBatchTimeout === 0 ? 1 : 0;
    const settings = { maxBatchSize: base?.maxBatchSize ?? 10, maxBatchTimeout: timeout };
    queueSettings.push(
      await withHost(
        "miniflare",
        standIn,
        vars,
        (host) => runLoad(host, standIn, secret, QUEUE_PLAN, log),
        settings,
      ),
    );
  }

  const partial = {
    mode: smoke ? ("smoke" as const) : ("full" as const),
    startedAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    machine: machine(loadStart),
    ingest,
    load,
    queueSettings,
    cost,
    size,
  };
  return { ...partial, targets: evaluateTargets(partial) };
}

function picture(results: Results): string {
  const panels: Panel[] = [...results.load, ...results.queueSettings].map((host) => ({
    title: `ack: ${host.host} (batch ${host.jobQueue.maxBatchSize}/${host.jobQueue.maxBatchTimeout} s)`,
    series: host.levels.flatMap((level, index) => [
      {
        label: `webhook c=${level.concurrency}`,
        color: CONCURRENCY_COLORS[index] ?? "#333",
        samples: level.webhook.samples,
      },
      {
        label: `noop c=${level.concurrency}`,
        color: CONCURRENCY_COLORS[index] ?? "#333",
        dash: "dashed" as const,
        samples: level.noop.samples,
      },
      ...(level.received
        ? [
            {
              label: `held c=${level.concurrency}`,
              color: CONCURRENCY_COLORS[index] ?? "#333",
              dash: "dotted" as const,
              samples: level.received.samples,
            },
          ]
        : []),
    ]),
  }));
  const first = results.load[0];
  if (first) {
    panels.push({
      title: `POST → reply: ${first.host}`,
      series: [
        { label: "idle", color: "#000", samples: first.idle.samples },
        ...first.levels.map((level, index) => ({
          label: `c=${level.concurrency}`,
          color: CONCURRENCY_COLORS[index] ?? "#333",
          samples: level.replies.samples,
        })),
      ],
    });
  }
  const m = results.machine;
  return latencySvg(
    panels,
    `${results.startedAt}, ${m.cpu}, ${m.cores} cores, load ${m.loadAverage.start.join(" ")}; solid: webhook, dashed: do-nothing route, dotted: webhook with the consumer held back`,
  );
}

/** CPU profiles of the receiving path in Node and of the Worker in workerd under load. */
async function profile(): Promise<string> {
  const secret = appSecret();
  const node = summarize(await profileIngest(secret, smoke ? 1 : 8));
  const standIn = await startGraphStandIn({ quiet: true });
  stops.push(standIn.close);
  const inspectorPort = await freePort();
  const host = await startHost({
    kind: "miniflare",
    vars: benchVars(standIn.url),
    inspectorPort,
    log,
  });
  stops.push(host.stop);
  const plan: LoadPlan = { ...SMOKE_PLAN, concurrencies: [8], requests: () => (smoke ? 40 : 400) };
  const workerProfile = await profileWorker(inspectorPort, () =>
    runLoad(host, standIn, secret, plan, log),
  );
  const map = host.sourceMap ? readSourceMap(host.sourceMap) : undefined;
  const worker = summarize(workerProfile, map);
  return [
    profileTable("The receiving path in Node (1 KB and 10 KB deliveries)", node),
    "",
    profileTable("The Worker in workerd under load (c=8, deliveries and their jobs)", worker),
  ].join("\n");
}

if (values.profile) {
  try {
    const markdown = await profile();
    console.log(`\n${markdown}\n`);
    const out = values.out ?? join(ROOT, "bench/results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "profile.md"), `${markdown}\n`);
    await stopAll();
    process.exit(0);
  } catch (error) {
    console.error("bench: profile failed:", error);
    await stopAll();
    process.exit(1);
  }
}

/** What failed to work (never a missed target): any answer but 200, in a smoke run a lost reply. */
function problems(results: Results): string[] {
  const found: string[] = [];
  for (const host of [...results.load, ...results.queueSettings]) {
    for (const level of host.levels) {
      for (const phase of [level.noop, level.received, level.webhook]) {
        if (!phase) continue;
        const failed = Object.entries(phase.statuses).filter(([status]) => status !== "200");
        if (failed.length > 0 || phase.requests === 0) {
          found.push(
            `${host.host} c=${level.concurrency} ${phase.route}: ${JSON.stringify(phase.statuses)}`,
          );
        }
      }
      if (smoke && level.replies.arrived < level.replies.expected) {
        found.push(
          `${host.host} c=${level.concurrency}: ${level.replies.arrived}/${level.replies.expected} replies`,
        );
      }
    }
    if (host.idle.arrived < host.idle.expected) {
      found.push(`${host.host}: ${host.idle.arrived}/${host.idle.expected} idle replies`);
    }
  }
  return found;
}

try {
  const results = await main();
  const markdown = table(results);
  console.log(`\n${markdown}\n`);
  // A smoke run checks that the benchmark works; its figures are not kept with the project's.
  const out =
    values.out ?? (smoke ? join(tmpdir(), "webhook-bench-smoke") : join(ROOT, "bench/results"));
  mkdirSync(out, { recursive: true });
  const name = smoke ? "smoke" : "latest";
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify(forJson(results), null, 2)}\n`);
  const m = results.machine;
  writeFileSync(
    join(out, `${name}.md`),
    [
      `Run ${results.startedAt} (${results.mode}, ${results.seconds} s) on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}; load average ${m.loadAverage.start.join(" ")} at the start, ${m.loadAverage.end.join(" ")} at the end.`,
      "",
      markdown,
      "",
    ].join("\n"),
  );
  if (results.load.length > 0)
    writeFileSync(join(out, `${name === "latest" ? "latency" : "smoke"}.svg`), picture(results));
  log(`wrote ${out}/${name}.json and ${name}.md in ${results.seconds} s`);
  await stopAll();
  const failures = problems(results);
  if (failures.length > 0) {
    console.error(`bench: something did not work:\n  ${failures.join("\n  ")}`);
    process.exit(1);
  }
} catch (error) {
  console.error("bench: failed:", error);
  await stopAll();
  process.exit(1);
}
