/** Shared by the local scripts: where the local Worker listens and what .dev.vars says. */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const WORKER_PORT = Number(process.env.PORT ?? 8787);
export const STAND_IN_PORT = Number(process.env.STAND_IN_PORT ?? 8789);
export const WORKER_URL = process.env.WORKER_URL ?? `http://127.0.0.1:${WORKER_PORT}`;

/** Keeps wrangler offline: no telemetry, no `request.cf` fetch, no update check. */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

/** Reads KEY=value lines from .dev.vars (or the example when there is none yet). */
export function devVars(): Record<string, string> {
  const file = [".dev.vars", ".dev.vars.example"]
    .map((name) => `${ROOT}${name}`)
    .find((path) => existsSync(path));
  if (!file) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[1]) vars[match[1]] = (match[2] ?? "").replace(/^"(.*)"$/, "$1");
  }
  return vars;
}
