/**
 * The Worker's variables for a benchmark run: the development values from .dev.vars.example
 * (never a developer's own .dev.vars), pointed at the run's Graph stand-in.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../scripts/local-env.ts";

export function exampleVars(): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(join(ROOT, ".dev.vars.example"), "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[1]) vars[match[1]] = (match[2] ?? "").replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

export function benchVars(graphUrl: string, overrides: Record<string, string> = {}) {
  return { ...exampleVars(), GRAPH_API_BASE_URL: graphUrl, ...overrides };
}

/** The app secret deliveries are signed with, as the Worker is configured by `benchVars`. */
export function appSecret(): string {
  const secret = exampleVars().META_APP_SECRET;
  if (!secret) throw new Error(".dev.vars.example has no META_APP_SECRET");
  return secret;
}
