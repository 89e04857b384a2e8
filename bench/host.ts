/**
 * Hosts the instrumented Worker (bench/worker.ts around src/index.ts) locally, with local D1
 * and Queues, in one of two ways that run the same bundle in the same runtime:
 *
 * - `wrangler-dev`: what users run. wrangler puts a proxy Worker in front of the user Worker.
 * - `miniflare`: the Miniflare API serving the bundle directly, without the dev proxy.
 *
 * Both take their bindings from a copy of wrangler.toml (so the queue settings are the
 * project's unless a run overrides them) and their secrets from a temporary .dev.vars.
 * Everything lives in a temporary directory that `stop()` removes.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { experimental_readRawConfig, unstable_getMiniflareWorkerOptions } from "wrangler";
import { OFFLINE_ENV, ROOT } from "../scripts/local-env.ts";

export type HostKind = "miniflare" | "wrangler-dev";

export interface QueueSettings {
  maxBatchSize?: number;
  maxBatchTimeout?: number;
}

export interface HostOptions {
  kind: HostKind;
  /** Secrets and variables for the Worker, written to the temporary .dev.vars. */
  vars: Record<string, string>;
  /** Overrides for the job consumer (the queue named in wrangler.toml that is not a DLQ). */
  jobQueue?: QueueSettings;
  /** Opens workerd's inspector (Miniflare only), for profiling the Worker under load. */
  inspectorPort?: number;
  /** Bundles without minifying (Miniflare only), so that a profile names every function. */
  readableBundle?: boolean;
  log: (line: string) => void;
}

export interface Host {
  kind: HostKind;
  url: string;
  /** The job consumer's settings this host runs with. */
  jobQueue: Required<QueueSettings>;
  /** CPU seconds used so far by the host's workerd processes. */
  workerdCpuSeconds(): number;
  /** The source map of the bundle it serves, where the host built one (Miniflare). */
  sourceMap?: string;
  stop(): Promise<void>;
}

const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const ENV = { ...process.env, ...OFFLINE_ENV };

interface RawConsumer {
  queue: string;
  max_batch_size?: number;
  max_batch_timeout?: number;
}
interface RawConfig {
  main?: string;
  d1_databases?: Array<{ migrations_dir?: string }>;
  queues?: { consumers?: RawConsumer[] };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

function wrangler(args: string[], cwd: string) {
  const result = spawnSync(WRANGLER, args, { cwd, env: ENV, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** A copy of wrangler.toml whose entry is the instrumented Worker, in a directory of its own. */
function prepare(dir: string, options: HostOptions): Required<QueueSettings> {
  const entry = join(dir, "entry.js");
  writeFileSync(
    entry,
    [
      `import worker from ${JSON.stringify(join(ROOT, "src/index.ts"))};`,
      `import { instrument } from ${JSON.stringify(join(ROOT, "bench/worker.ts"))};`,
      "export default instrument(worker);",
      "",
    ].join("\n"),
  );

  const { rawConfig } = experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") }) as {
    rawConfig: RawConfig;
  };
  rawConfig.main = entry;
  for (const database of rawConfig.d1_databases ?? []) {
    database.migrations_dir = join(ROOT, database.migrations_dir ?? "migrations");
  }
  const jobs = rawConfig.queues?.consumers?.find((consumer) => !consumer.queue.endsWith("-dlq"));
  if (!jobs) throw new Error("wrangler.toml has no job consumer");
  if (options.jobQueue?.maxBatchSize !== undefined) {
    jobs.max_batch_size = options.jobQueue.maxBatchSize;
  }
  if (options.jobQueue?.maxBatchTimeout !== undefined) {
    jobs.max_batch_timeout = options.jobQueue.maxBatchTimeout;
  }
  writeFileSync(join(dir, "wrangler.json"), JSON.stringify(rawConfig, null, 2));

  const lines = Object.entries(options.vars).map(([name, value]) => `${name}=${value}`);
  writeFileSync(join(dir, ".dev.vars"), `${lines.join("\n")}\n`);
  return { maxBatchSize: jobs.max_batch_size ?? 10, maxBatchTimeout: jobs.max_batch_timeout ?? 5 };
}

export async function startHost(options: HostOptions): Promise<Host> {
  const dir = mkdtempSync(join(tmpdir(), "webhook-bench-"));
  const config = join(dir, "wrangler.json");
  const state = join(dir, "state");
  let stopInner: () => Promise<void> = async () => {};
  const stop = async () => {
    await stopInner();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const jobQueue = prepare(dir, options);
    options.log(`host: ${options.kind}: applying D1 migrations`);
    wrangler(
      ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state, "-c", config],
      dir,
    );
    const port = await freePort();
    const started: { rootPid: number; stop: () => Promise<void>; sourceMap?: string } =
      options.kind === "miniflare"
        ? await startMiniflare(dir, config, state, port, options)
        : await startWranglerDev(dir, config, state, port, options);
    stopInner = started.stop;
    const url = `http://127.0.0.1:${port}`;
    await waitUntilServing(url);
    options.log(`host: ${options.kind} serving on ${url}`);
    return {
      kind: options.kind,
      url,
      jobQueue,
      workerdCpuSeconds: () => cpuSeconds(workerdProcesses(started.rootPid)),
      sourceMap: started.sourceMap,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startMiniflare(
  dir: string,
  config: string,
  state: string,
  port: number,
  options: HostOptions,
) {
  options.log("host: miniflare: bundling with wrangler deploy --dry-run");
  const dist = join(dir, "dist");
  // `--env=` bundles the top-level environment, as `npm run deploy` does.
  const args = ["deploy", "--dry-run", "--outdir", dist, "-c", config, "--env="];
  args.push("--upload-source-maps", ...(options.readableBundle ? ["--minify=false"] : []));
  wrangler(args, dir);
  const script = readdirSync(dist).find((file) => file.endsWith(".js"));
  if (!script) throw new Error("wrangler produced no bundle");

  // The bundle is one module, so the config's rules for finding more are left out.
  const { modulesRules: _, ...workerOptions } = unstable_getMiniflareWorkerOptions(config)
    .workerOptions as Record<string, unknown>;
  const miniflare = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      rootPath: dir,
      modules: [{ type: "ESModule", path: join(dist, script) }],
      modulesRoot: dist,
      host: "127.0.0.1",
      port,
      inspectorPort: options.inspectorPort,
      // The same on-disk layout wrangler dev uses for --persist-to.
      resourcePersistencePath: join(state, "v3"),
      logRequests: false,
      // The Worker logs a line per event; read and drop them as wrangler dev's output is.
      handleStructuredLogs: () => {},
    }),
  );
  await miniflare.ready;
  const sourceMap = join(dist, `${script}.map`);
  return {
    rootPid: process.pid,
    stop: () => miniflare.dispose(),
    sourceMap: existsSync(sourceMap) ? sourceMap : undefined,
  };
}

async function startWranglerDev(
  dir: string,
  config: string,
  state: string,
  port: number,
  options: HostOptions,
) {
  const inspectorPort = await freePort();
  const args = ["dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--inspector-port", String(inspectorPort), "--persist-to", state);
  args.push("--show-interactive-dev-session=false");
  options.log(`host: wrangler-dev: ${args.join(" ")}`);
  const child: ChildProcess = spawn(WRANGLER, args, {
    cwd: dir,
    env: ENV,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    // The last few KB are enough to explain a failed start.
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child.pid, "SIGTERM");
    const timeout = new Promise((resolve) => setTimeout(resolve, 5_000));
    await Promise.race([exited, timeout]);
    signalGroup(child.pid, "SIGKILL");
  };
  const early = await Promise.race([
    exited.then(() => "exited" as const),
    new Promise<"started">((resolve) => setTimeout(() => resolve("started"), 500)),
  ]);
  if (early === "exited") throw new Error(`wrangler dev exited at once:\n${output}`);
  return { rootPid: child.pid ?? -1, stop };
}

function signalGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

async function waitUntilServing(url: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/__bench/noop`);
      await response.arrayBuffer();
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the Worker did not start serving on ${url}: ${String(last)}`);
}

// ---------------------------------------------------------------------------------------------
// CPU of the workerd processes under a root process, from /proc (Linux).

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // After the name: state, ppid, ... utime is field 14 and stime 15 of the whole line.
    return {
      pid,
      ppid: Number(fields[1]),
      comm,
      ticks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return null;
  }
}

function workerdProcesses(rootPid: number): number[] {
  const stats = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((stat): stat is ProcStat => stat !== null);
  const children = new Map<number, ProcStat[]>();
  for (const stat of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat]);
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      if (child.comm === "workerd") found.push(child.pid);
      walk(child.pid);
    }
  };
  walk(rootPid);
  return found;
}

/** Clock ticks are 1/100 s on Linux (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0) / TICKS_PER_SECOND;
}
