/**
 * The Worker the benchmark runs: the project's own Worker, instrumented. `instrument()` wraps
 * its fetch and queue handlers without changing what they do, and adds routes under `/__bench`:
 *
 *   ANY  /__bench/noop       answers at once: the runtime's own floor on the same server
 *   GET  /__bench/counters   what the Worker spent since the last reset (see `Counters`)
 *   POST /__bench/counters   resets them, answering with the figures before the reset
 *   POST /__bench/ingest     times the receiving path's own code inside workerd (bench/ingest.ts)
 *   POST /__bench/route      times the whole POST route, D1 and the queue stubbed (route-timing.ts)
 *   POST /__bench/consumer?hold=1|0   holds the job consumer back, or lets it go on
 *
 * D1 rows come from D1's own result metadata (`meta.rows_read`, `meta.rows_written`), queue
 * operations are counted the way Cloudflare bills them (per message and 64 KB chunk), and every
 * outbound `fetch` is a subrequest. Nothing here is part of the deployable Worker: the benchmark
 * bundles it around src/index.ts into a temporary entry (bench/host.ts).
 *
 * Written against structural types rather than `@cloudflare/workers-types`, so that it type-checks
 * with the benchmark's Node scripts.
 */
import { timeIngest } from "./ingest-core.ts";
import { timeRoute } from "./route-timing.ts";

/** Queues bills each 64 KB (of 1,000 bytes) of a message, metadata (about 100 bytes) included. */
const QUEUE_CHUNK_BYTES = 64_000;
const QUEUE_METADATA_BYTES = 100;

export interface QueueCounters {
  invocations: number;
  /** Messages handed to the consumer: one read operation per chunk each. */
  delivered: number;
  acked: number;
  retried: number;
  readOps: number;
  deleteOps: number;
  /** Messages arriving on a dead-letter queue for the first time: the move was a write. */
  movedIn: number;
  batchSizes: number[];
}

export interface Counters {
  /** Requests to the Worker's own routes (the bench routes not included). */
  requests: number;
  d1: {
    calls: number;
    statements: number;
    rowsRead: number;
    rowsWritten: number;
    /** The same figures by statement, keyed by the statement's first words. */
    byStatement: Record<string, { count: number; rowsRead: number; rowsWritten: number }>;
  };
  producer: { calls: number; messages: number; writeOps: number };
  queues: Record<string, QueueCounters>;
  subrequests: { total: number; byHost: Record<string, number> };
}

function emptyCounters(): Counters {
  return {
    requests: 0,
    d1: { calls: 0, statements: 0, rowsRead: 0, rowsWritten: 0, byStatement: {} },
    producer: { calls: 0, messages: 0, writeOps: 0 },
    queues: {},
    subrequests: { total: 0, byHost: {} },
  };
}

let counters = emptyCounters();

function chunks(body: unknown): number {
  const bytes = new TextEncoder().encode(JSON.stringify(body) ?? "").byteLength;
  return Math.max(1, Math.ceil((bytes + QUEUE_METADATA_BYTES) / QUEUE_CHUNK_BYTES));
}

// ---------------------------------------------------------------------------------------------
// D1: a proxy over the binding and its prepared statements that adds up each result's meta.

interface D1ResultLike {
  results?: Record<string, unknown>[];
  meta?: { rows_read?: number; rows_written?: number };
}

interface StatementLike {
  bind(...values: unknown[]): StatementLike;
  run(): Promise<D1ResultLike>;
  all(): Promise<D1ResultLike>;
}

const unwrapped = new WeakMap<object, object>();
const sqlOf = new WeakMap<object, string>();

/** `insert into "audit_entries"`, `update "webhook_events"`, `select ... from "replies"`. */
function statementKey(sql: string): string {
  const words = sql.replace(/\s+/g, " ").trim();
  const table = /\b(?:into|update|from)\s+"?(\w+)"?/i.exec(words)?.[1] ?? "?";
  return `${words.split(" ")[0]?.toLowerCase() ?? "?"} ${table}`;
}

function addMeta(result: D1ResultLike | undefined, statement: object) {
  const rowsRead = result?.meta?.rows_read ?? 0;
  const rowsWritten = result?.meta?.rows_written ?? 0;
  counters.d1.statements += 1;
  counters.d1.rowsRead += rowsRead;
  counters.d1.rowsWritten += rowsWritten;
  const key = statementKey(sqlOf.get(statement) ?? "");
  const entry = counters.d1.byStatement[key] ?? { count: 0, rowsRead: 0, rowsWritten: 0 };
  counters.d1.byStatement[key] = entry;
  entry.count += 1;
  entry.rowsRead += rowsRead;
  entry.rowsWritten += rowsWritten;
}

/**
 * `first()` and `raw()` return no metadata, so they are answered from `all()` on the same
 * statement (the same SQL, so the same rows read), shaped as D1 shapes them.
 */
function countingStatement(statement: StatementLike, sql: string): StatementLike {
  sqlOf.set(statement, sql);
  const proxy = new Proxy(statement, {
    get(target, property) {
      if (property === "bind") {
        return (...values: unknown[]) => countingStatement(target.bind(...values), sql);
      }
      if (property === "run" || property === "all") {
        return async () => {
          counters.d1.calls += 1;
          const result = await target[property]();
          addMeta(result, target);
          return result;
        };
      }
      if (property === "first") {
        return async (column?: string) => {
          counters.d1.calls += 1;
          const result = await target.all();
          addMeta(result, target);
          const row = result.results?.[0];
          if (!row) return null;
          return column === undefined ? row : (row[column] ?? null);
        };
      }
      if (property === "raw") {
        return async (options?: { columnNames?: boolean }) => {
          counters.d1.calls += 1;
          const result = await target.all();
          addMeta(result, target);
          const rows = (result.results ?? []).map((row) => Object.values(row));
          return options?.columnNames ? [Object.keys(result.results?.[0] ?? {}), ...rows] : rows;
        };
      }
      return passThrough(target, property);
    },
  });
  unwrapped.set(proxy, statement);
  return proxy;
}

interface DatabaseLike {
  prepare(sql: string): StatementLike;
  batch(statements: StatementLike[]): Promise<D1ResultLike[]>;
}

function countingDatabase(database: DatabaseLike): DatabaseLike {
  return new Proxy(database, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => countingStatement(target.prepare(sql), sql);
      }
      if (property === "batch") {
        return async (statements: StatementLike[]) => {
          counters.d1.calls += 1;
          const real = statements.map((s) => (unwrapped.get(s) ?? s) as StatementLike);
          const results = await target.batch(real);
          results.forEach((result, index) => {
            addMeta(result, real[index] ?? {});
          });
          return results;
        };
      }
      return passThrough(target, property);
    },
  });
}

function passThrough(target: object, property: string | symbol): unknown {
  const value: unknown = Reflect.get(target, property);
  return typeof value === "function" ? value.bind(target) : value;
}

// ---------------------------------------------------------------------------------------------
// Queues: producers count writes; consumers count reads, acknowledgements and retries.

interface ProducerLike {
  send(body: unknown, options?: unknown): Promise<unknown>;
  sendBatch(messages: Iterable<{ body: unknown }>, options?: unknown): Promise<unknown>;
}

function countingProducer(queue: ProducerLike): ProducerLike {
  return new Proxy(queue, {
    get(target, property) {
      if (property === "send") {
        return (body: unknown, options?: unknown) => {
          counters.producer.calls += 1;
          counters.producer.messages += 1;
          counters.producer.writeOps += chunks(body);
          return target.send(body, options);
        };
      }
      if (property === "sendBatch") {
        return (messages: Iterable<{ body: unknown }>, options?: unknown) => {
          const list = [...messages];
          counters.producer.calls += 1;
          counters.producer.messages += list.length;
          for (const message of list) counters.producer.writeOps += chunks(message.body);
          return target.sendBatch(list, options);
        };
      }
      return passThrough(target, property);
    },
  });
}

interface MessageLike {
  body: unknown;
  attempts: number;
  ack(): void;
  retry(options?: unknown): void;
}

interface BatchLike {
  queue: string;
  messages: readonly MessageLike[];
  ackAll(): void;
  retryAll(options?: unknown): void;
}

function queueCounters(queue: string): QueueCounters {
  counters.queues[queue] ??= {
    invocations: 0,
    delivered: 0,
    acked: 0,
    retried: 0,
    readOps: 0,
    deleteOps: 0,
    movedIn: 0,
    batchSizes: [],
  };
  return counters.queues[queue];
}

/**
 * Counts the batch as it is handed over, then each message's decision. A message left without
 * one is acknowledged by the runtime when the handler returns; a throw retries them all.
 */
async function countedBatch(batch: BatchLike, handle: () => Promise<void>): Promise<void> {
  const counts = queueCounters(batch.queue);
  counts.invocations += 1;
  counts.batchSizes.push(batch.messages.length);
  const decided = new Map<MessageLike, "ack" | "retry">();
  const ackAll = batch.ackAll.bind(batch);
  const retryAll = batch.retryAll.bind(batch);
  batch.ackAll = () => {
    for (const message of batch.messages) if (!decided.has(message)) decided.set(message, "ack");
    ackAll();
  };
  batch.retryAll = (options?: unknown) => {
    for (const message of batch.messages) {
      if (!decided.has(message)) decided.set(message, "retry");
    }
    retryAll(options);
  };
  for (const message of batch.messages) {
    const size = chunks(message.body);
    counts.delivered += 1;
    counts.readOps += size;
    if (batch.queue.endsWith("-dlq") && message.attempts === 1) counts.movedIn += 1;
    const ack = message.ack.bind(message);
    const retry = message.retry.bind(message);
    message.ack = () => {
      decided.set(message, "ack");
      ack();
    };
    message.retry = (options?: unknown) => {
      decided.set(message, "retry");
      retry(options);
    };
  }
  let threw = false;
  try {
    await handle();
  } catch (error) {
    threw = true;
    throw error;
  } finally {
    for (const message of batch.messages) {
      const decision = decided.get(message) ?? (threw ? "retry" : "ack");
      if (decision === "ack") {
        counts.acked += 1;
        counts.deleteOps += chunks(message.body);
      } else {
        counts.retried += 1;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Subrequests: every fetch the Worker makes.

const realFetch = globalThis.fetch;
globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  counters.subrequests.total += 1;
  counters.subrequests.byHost[url.host] = (counters.subrequests.byHost[url.host] ?? 0) + 1;
  return realFetch(input, init);
};

// ---------------------------------------------------------------------------------------------
// The wrapper.

/**
 * While set, batches wait before the project's consumer sees them, so that a load phase times
 * the receiving route alone: locally the consumer shares workerd's thread with it.
 */
let consumerHeld = false;

type Env = Record<string, unknown>;

export interface WorkerLike {
  fetch?(request: Request, env: Env, ctx: unknown): Response | Promise<Response>;
  queue?(batch: BatchLike, env: Env, ctx: unknown): Promise<void>;
  scheduled?(controller: unknown, env: Env, ctx: unknown): Promise<void>;
}

function isDatabase(value: unknown): value is DatabaseLike {
  return typeof (value as DatabaseLike | null)?.prepare === "function" && "batch" in Object(value);
}

function isProducer(value: unknown): value is ProducerLike {
  const queue = value as ProducerLike | null;
  return typeof queue?.send === "function" && typeof queue?.sendBatch === "function";
}

/** The same bindings, D1 databases and queue producers counted. */
function countedEnv(env: Env): Env {
  const wrapped: Env = {};
  for (const [name, value] of Object.entries(env)) {
    if (isDatabase(value)) wrapped[name] = countingDatabase(value);
    else if (isProducer(value)) wrapped[name] = countingProducer(value);
    else wrapped[name] = value;
  }
  return wrapped;
}

async function benchRoute(
  request: Request,
  path: string,
  worker: WorkerLike,
  env: Env,
): Promise<Response> {
  if (path === "/__bench/noop") return new Response("ok");
  if (path === "/__bench/consumer" && request.method === "POST") {
    consumerHeld = new URL(request.url).searchParams.get("hold") === "1";
    return Response.json({ held: consumerHeld });
  }
  if (path === "/__bench/counters") {
    const before = counters;
    if (request.method === "POST") counters = emptyCounters();
    return Response.json(before);
  }
  if (path === "/__bench/ingest" && request.method === "POST") {
    return Response.json(await timeIngest(await request.json()));
  }
  if (path === "/__bench/route" && request.method === "POST" && worker.fetch) {
    const fetch = worker.fetch.bind(worker) as Parameters<typeof timeRoute>[0];
    return Response.json(await timeRoute(fetch, env, await request.json()));
  }
  return new Response("no such bench route", { status: 404 });
}

export function instrument(worker: WorkerLike): WorkerLike {
  return {
    async fetch(request, env, ctx) {
      const path = new URL(request.url).pathname;
      if (path.startsWith("/__bench/")) return benchRoute(request, path, worker, env);
      counters.requests += 1;
      if (!worker.fetch) return new Response("no fetch handler", { status: 500 });
      return worker.fetch(request, countedEnv(env), ctx);
    },
    async queue(batch, env, ctx) {
      // A held consumer takes no batch until released: the queue keeps what arrives. It polls,
      // since workerd cancels a wait on a promise that another request settles.
      while (consumerHeld) await new Promise((resolve) => setTimeout(resolve, 20));
      await countedBatch(batch, async () => {
        await worker.queue?.(batch, countedEnv(env), ctx);
      });
    },
    async scheduled(controller, env, ctx) {
      await worker.scheduled?.(controller, countedEnv(env), ctx);
    },
  };
}
