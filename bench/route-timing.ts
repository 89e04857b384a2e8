/**
 * The whole POST route inside workerd, with D1 and the queue answered at once by stand-ins:
 * Hono, configuration, the receiving path, SQL building, job sizing and the log lines, all but
 * the I/O. Beside the floor, it tells how far a delivery of a given size is from the Workers
 * Free plan's 10 ms CPU limit. Run by the `/__bench/route` route of bench/worker.ts.
 */
import { median } from "./ingest-core.ts";

export interface RouteRequest {
  body: string;
  signature: string;
  rounds: number;
  roundMs: number;
}

export interface RouteTiming {
  /** Median of the rounds, microseconds per delivery; every answer was a 200. */
  us: number;
  min: number;
  iterations: number;
}

type Fetch = (request: Request, env: Record<string, unknown>, ctx: unknown) => Promise<Response>;

/**
 * A D1 stand-in where every claim goes through: a statement with `returning` gives back each
 * of its values as a claimed event id (the claim reads only the ids it asked for).
 */
function stubDatabase() {
  const statement = (sql: string, params: unknown[] = []) => ({
    sql,
    params,
    bind: (...values: unknown[]) => statement(sql, values),
    run: async () => result(sql, params),
    all: async () => result(sql, params),
    raw: async () => result(sql, params).results.map((row) => Object.values(row)),
    first: async () => result(sql, params).results[0] ?? null,
  });
  const result = (sql: string, params: unknown[]) => ({
    success: true,
    results: /\breturning\b/i.test(sql) ? params.map((value) => ({ event_id: value })) : [],
    meta: { rows_read: 0, rows_written: 0, changes: 0, duration: 0 },
  });
  return {
    prepare: (sql: string) => statement(sql),
    batch: async (statements: Array<ReturnType<typeof statement>>) =>
      statements.map((s) => result(s.sql, s.params)),
  };
}

const stubQueue = { send: async () => {}, sendBatch: async () => {} };

export async function timeRoute(
  fetch: Fetch,
  env: Record<string, unknown>,
  request: RouteRequest,
): Promise<RouteTiming> {
  const stubbed = { ...env, DB: stubDatabase(), JOBS: stubQueue };
  const once = async () => {
    const pending: Promise<unknown>[] = [];
    const ctx = {
      waitUntil: (task: Promise<unknown>) => pending.push(task),
      passThroughOnException: () => {},
      props: {},
    };
    const response = await fetch(
      new Request("https://bench.local/webhooks/instagram", {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": request.signature },
        body: request.body,
      }),
      stubbed,
      ctx,
    );
    if (response.status !== 200) throw new Error(`route answered ${response.status}`);
    await response.arrayBuffer();
    await Promise.all(pending);
  };

  const perRound: number[] = [];
  let iterations = 0;
  for (let round = -1; round < request.rounds; round++) {
    const start = performance.now();
    let count = 0;
    let elapsed = 0;
    do {
      await once();
      count += 1;
      elapsed = performance.now() - start;
    } while (elapsed < request.roundMs);
    if (round < 0) continue;
    perRound.push((elapsed * 1000) / count);
    iterations += count;
  }
  return { us: median(perRound), min: Math.min(...perRound), iterations };
}
