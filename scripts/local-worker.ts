/**
 * Starts the Worker under `wrangler dev` with a fresh local state, for the soak run: local D1
 * (migrated first) and Queues, every variable passed on the command line so that no
 * .dev.vars is needed. `stop()` ends the whole process group.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OFFLINE_ENV, ROOT } from "./local-env.ts";

export interface LocalWorker {
  url: string;
  stop(): Promise<void>;
}

export interface LocalWorkerOptions {
  port: number;
  inspectorPort: number;
  vars: Record<string, string>;
  /** Echoes the Worker's own output; off by default to keep a run's report readable. */
  verbose?: boolean;
  readyTimeoutMs?: number;
}

const wrangler = join(ROOT, "node_modules/.bin/wrangler");

export async function startLocalWorker(options: LocalWorkerOptions): Promise<LocalWorker> {
  const state = mkdtempSync(join(tmpdir(), "meta-webhook-edge-"));
  const env = { ...process.env, ...OFFLINE_ENV };

  const migrate = spawnSync(
    wrangler,
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state],
    {
      cwd: ROOT,
      env,
      encoding: "utf8",
    },
  );
  if (migrate.status !== 0) {
    rmSync(state, { recursive: true, force: true });
    throw new Error(`migrations failed: ${migrate.stderr || migrate.stdout}`);
  }

  const vars = Object.entries(options.vars).flatMap(([name, value]) => [
    "--var",
    `${name}:${value}`,
  ]);
  const child: ChildProcess = spawn(
    wrangler,
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--inspector-port",
      String(options.inspectorPort),
      "--persist-to",
      state,
      "--show-interactive-dev-session=false",
      ...vars,
    ],
    { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );

  const stop = async () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // Already gone.
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Exited after SIGTERM.
      }
    }
    rmSync(state, { recursive: true, force: true });
  };

  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`wrangler dev was not ready in time:\n${output.slice(-2000)}`)),
      options.readyTimeoutMs ?? 60_000,
    );
    const watch = (chunk: Buffer) => {
      const text = chunk.toString();
      if (options.verbose) process.stdout.write(text);
      else output += text;
      if (text.includes("Ready on")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", watch);
    child.stderr?.on("data", watch);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`wrangler dev exited with ${code}:\n${output.slice(-2000)}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  // Keep draining output so that the child never blocks on a full pipe.
  if (!options.verbose) {
    child.stdout?.removeAllListeners("data").resume();
    child.stderr?.removeAllListeners("data").resume();
  }

  return { url: `http://127.0.0.1:${options.port}`, stop };
}
