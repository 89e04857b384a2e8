import { env } from "cloudflare:test";
import { vi } from "vitest";
import type { WebhookJob } from "../../src/jobs/job";

/**
 * Fault injection at the Worker's boundaries. Each helper wraps a binding; the test passes the
 * wrapper to the Worker's real fetch or queue entry point in place of the real binding.
 */

/** One call the Worker made to D1: a batch, or one statement run on its own. */
export interface D1Call {
  index: number;
  kind: "batch" | "statement";
  sql: string[];
}

/**
 * What goes wrong with one call:
 * - `unavailable`: the call never reaches the database and throws;
 * - `response-lost`: the database commits, then the call throws, as when a connection drops
 *   after the write;
 * - `{ failAtStatement }`: the real database runs the batch and fails at that statement, so its
 *   own transaction decides what survives;
 * - `{ before }`: nothing fails, but another writer acts first, to interleave a race.
 */
export type D1Fault =
  | "unavailable"
  | "response-lost"
  | { failAtStatement: number }
  | { before: () => Promise<unknown> };

export type D1FaultPlan = (call: D1Call) => D1Fault | undefined;

/** A statement the real database refuses, to make a batch fail at a chosen position. */
const FAILING_SQL = "INSERT INTO injected_fault_no_such_table VALUES (1)";

/**
 * Wraps a D1 binding so that the calls a plan picks fail. Every call is recorded, failed or
 * not, so a test can tell which step of the Worker hit the fault.
 */
export function faultyD1(
  plan: D1FaultPlan,
  options: { real?: D1Database; errorMessage?: string } = {},
) {
  const real = options.real ?? env.DB;
  const errorMessage = options.errorMessage ?? "D1_ERROR: injected fault";
  const calls: D1Call[] = [];
  const originals = new WeakMap<object, { statement: D1PreparedStatement; sql: string }>();

  function faultFor(kind: D1Call["kind"], sql: string[]): D1Fault | undefined {
    const call = { index: calls.length, kind, sql };
    calls.push(call);
    return plan(call);
  }

  async function execute<T>(fault: D1Fault | undefined, run: () => Promise<T>): Promise<T> {
    if (fault === "unavailable") throw new Error(`${errorMessage}: unavailable`);
    if (typeof fault === "object" && "before" in fault) await fault.before();
    const result = await run();
    if (fault === "response-lost") throw new Error(`${errorMessage}: response lost`);
    return result;
  }

  function wrap(statement: D1PreparedStatement, sql: string): D1PreparedStatement {
    const run = <T>(query: () => Promise<T>) => execute(faultFor("statement", [sql]), query);
    const wrapped = {
      bind: (...values: unknown[]) => wrap(statement.bind(...values), sql),
      first: (column?: string) =>
        run(() => (column === undefined ? statement.first() : statement.first(column))),
      run: () => run(() => statement.run()),
      all: () => run(() => statement.all()),
      raw: (rawOptions?: { columnNames?: boolean }) =>
        run(() =>
          rawOptions?.columnNames ? statement.raw({ columnNames: true }) : statement.raw(),
        ),
    };
    originals.set(wrapped, { statement, sql });
    // The wrapper has every method the Worker's driver calls; the cast covers the rest.
    return wrapped as unknown as D1PreparedStatement;
  }

  const db = {
    prepare: (query: string) => wrap(real.prepare(query), query),
    batch(statements: D1PreparedStatement[]) {
      const unwrapped = statements.map(
        (statement) => originals.get(statement) ?? { statement, sql: "(unknown)" },
      );
      const fault = faultFor(
        "batch",
        unwrapped.map((item) => item.sql),
      );
      const toRun = unwrapped.map((item) => item.statement);
      if (typeof fault === "object" && "failAtStatement" in fault) {
        toRun.splice(fault.failAtStatement, 1, real.prepare(FAILING_SQL));
      }
      return execute(fault, () => real.batch(toRun));
    },
    exec: (query: string) => execute(faultFor("statement", [query]), () => real.exec(query)),
    withSession: () => db,
    dump: () => real.dump(),
  };

  return { db: db as unknown as D1Database, calls };
}

/** D1 that refuses every call, as during an outage. */
export function unavailableD1(errorMessage?: string) {
  return faultyD1(() => "unavailable", { errorMessage });
}

/** Whether the call writes to this table (an insert, update or delete). */
export function writesTo(call: D1Call, table: string): boolean {
  const pattern = new RegExp(`^(insert into|update|delete from) "${table}"`);
  return call.sql.some((sql) => pattern.test(sql));
}

/** A plan that fails every call writing to this table, e.g. the dead letters. */
export function failWritesTo(table: string, fault: D1Fault): D1FaultPlan {
  return (call) => (writesTo(call, table) ? fault : undefined);
}

/**
 * A queue producer that keeps what it is sent and refuses what Cloudflare refuses: more than
 * 100 messages or 256 KB in a batch, or a message over 128 KB (UTF-8 bytes of its JSON).
 * https://developers.cloudflare.com/queues/platform/limits/
 */
export function limitedQueue() {
  const sent: WebhookJob[] = [];
  const encoder = new TextEncoder();
  const queue = {
    async send(body: WebhookJob) {
      await queue.sendBatch([{ body }]);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<WebhookJob>>) {
      const batch = [...messages];
      const sizes = batch.map((message) => encoder.encode(JSON.stringify(message.body)).length);
      if (batch.length > 100) throw new Error("Queue sendBatch failed: more than 100 messages");
      if (sizes.some((size) => size > 128_000)) {
        throw new Error("Queue sendBatch failed: message over 128 KB");
      }
      if (sizes.reduce((sum, size) => sum + size, 0) > 256_000) {
        throw new Error("Queue sendBatch failed: batch over 256 KB");
      }
      sent.push(...batch.map((message) => message.body));
    },
  };
  return { queue: queue as unknown as Queue<WebhookJob>, sent };
}

/**
 * A queue producer that takes this long to accept each batch, as a remote queue does, so that
 * concurrent requests overlap while one of them is still enqueueing.
 */
export function slowQueue(inner: Queue<WebhookJob>, delayMs: number): Queue<WebhookJob> {
  const pause = () => new Promise((resolve) => setTimeout(resolve, delayMs));
  const queue = {
    async send(body: WebhookJob) {
      await pause();
      return inner.send(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<WebhookJob>>) {
      await pause();
      return inner.sendBatch(messages);
    },
  };
  return queue as unknown as Queue<WebhookJob>;
}

/**
 * Captures every line written to the console while a test runs, so that a test can look for
 * content that must never be logged.
 */
export function captureLogs() {
  const lines: string[] = [];
  const methods = ["log", "info", "warn", "error", "debug"] as const;
  const spies = methods.map((method) =>
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === "string" ? arg : safeJson(arg))).join(" "));
    }),
  );
  return {
    lines,
    /** The lines that contain any of these strings. */
    containing: (needles: string[]) =>
      lines.filter((line) => needles.some((needle) => line.includes(needle))),
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

function safeJson(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ""}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
