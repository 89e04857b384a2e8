/**
 * `npm run dev`: the whole pipeline on this machine, offline. Applies the local D1
 * migrations, creates .dev.vars from the example when missing, starts the Graph API stand-in
 * and `wrangler dev` (local D1 and Queues in Miniflare), and stops both on Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { startGraphStandIn } from "./graph-stand-in.ts";
import { OFFLINE_ENV, ROOT, STAND_IN_PORT, WORKER_PORT, WORKER_URL } from "./local-env.ts";

const env = { ...process.env, ...OFFLINE_ENV };
const wrangler = `${ROOT}node_modules/.bin/wrangler`;

if (!existsSync(`${ROOT}.dev.vars`)) {
  copyFileSync(`${ROOT}.dev.vars.example`, `${ROOT}.dev.vars`);
  console.log("dev: created .dev.vars from .dev.vars.example (development-only values)");
}

console.log("dev: applying local D1 migrations");
const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local"], {
  cwd: ROOT,
  env,
  stdio: ["ignore", "inherit", "inherit"],
});
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const standIn = await startGraphStandIn({ port: STAND_IN_PORT });
console.log(`dev: Graph API stand-in on ${standIn.url}`);

const worker: ChildProcess = spawn(
  wrangler,
  [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(WORKER_PORT),
    "--inspector-port",
    String(Number(process.env.INSPECTOR_PORT ?? 9239)),
    "--var",
    `GRAPH_API_BASE_URL:${standIn.url}`,
    "--show-interactive-dev-session=false",
  ],
  { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"], detached: true },
);

let announced = false;
worker.stdout?.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  if (!announced && chunk.toString().includes("Ready on")) {
    announced = true;
    console.log(
      [
        "",
        `dev: send Meta webhooks to ${WORKER_URL}/webhooks/instagram`,
        "dev: post a signed sample with `npm run send` (see `npm run send -- --help`)",
        "dev: Ctrl-C stops the Worker and the stand-in",
        "",
      ].join("\n"),
    );
  }
});

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  if (worker.pid && worker.exitCode === null) {
    try {
      process.kill(-worker.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
  await standIn.close();
  process.exit(code);
}

process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
worker.on("exit", (code) => void stop(code ?? 0));
