/**
 * The operator's command line for the admin API (src/admin/routes.ts), against a deployed or
 * a local Worker. Node 22, no dependencies: `npm run ops -- <command>`, or `tsx scripts/ops.ts`.
 */
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { devVars } from "./local-env.ts";

const USAGE = `usage: ops [--url URL] [--token TOKEN] [--json] <command>

  events show <eventId> [--content]        status, timeline; --content opens the text (audited)
  dead-letters list [filters] [--limit N] [--cursor C] [--all]
  dead-letters show <id> [--payload]       --payload opens the dead job (audited)
  dead-letters replay <id>                 send the job again, once
  dead-letters replay --all [filters] [--limit N]   replay each open dead letter that matches
  dead-letters purge <id> [--yes]          delete it and its payload for good

filters: --status open|replayed|all (list only) --provider P --error-class retryable|permanent
         --error-code C --since DATE --until DATE     (dates: 2026-12-01 or ISO date-time)

URL defaults to $OPS_URL, else http://127.0.0.1:8787. The token comes from $ADMIN_TOKEN or
$OPS_TOKEN (against this machine, from .dev.vars); --token works too, but leaves it in your
shell history.`;

const OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  content: { type: "boolean" },
  payload: { type: "boolean" },
  status: { type: "string" },
  provider: { type: "string" },
  "error-class": { type: "string" },
  "error-code": { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  all: { type: "boolean" },
  yes: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

class UsageError extends Error {}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface DeadLetter {
  id: string;
  eventId: string;
  provider: string;
  correlationId: string;
  status: string;
  attempts: number;
  errorClass: string;
  errorCode: string;
  errorMessage: string;
  createdAt: string;
  replayedAt: string | null;
}

interface Page {
  deadLetters: DeadLetter[];
  nextCursor: string | null;
}

interface EventReport {
  event: Record<string, string | number | null>;
  message: { kind: string; sentAt: string } | null;
  replied: boolean;
  reply: { status: string; sentAt: string | null; providerMessageId: string | null } | null;
  deadLetters: Array<Record<string, string | null>>;
  timeline: Array<Record<string, string | number | null>>;
  content?: { messageText: string | null; replyText: string | null };
}

// ---- HTTP ----------------------------------------------------------------------------------

class Admin {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.base}/admin${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      throw new Error(
        `cannot reach ${this.base}: ${cause instanceof Error ? cause.message : cause}`,
      );
    }
    const text = await response.text();
    const json = parseJson(text) as { error?: { message?: string } } | undefined;
    if (!response.ok) {
      const detail = json?.error?.message ?? (text.slice(0, 200) || response.statusText);
      throw new HttpError(response.status, `${method} /admin${path}: ${response.status} ${detail}`);
    }
    return json as T;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function connect(options: Options): Admin {
  const base = (options.url ?? process.env.OPS_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`--url is not a URL: ${base}`);
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !loopback) {
    throw new UsageError(`refusing to send the admin token over ${url.protocol} to ${url.host}`);
  }
  // Against the local Worker, the development token in .dev.vars works as `npm run send` does.
  const token =
    options.token ??
    process.env.ADMIN_TOKEN ??
    process.env.OPS_TOKEN ??
    (loopback ? devVars().ADMIN_TOKEN : undefined);
  if (!token) throw new UsageError("no admin token: set ADMIN_TOKEN (or OPS_TOKEN)");
  return new Admin(base, token);
}

// ---- output --------------------------------------------------------------------------------

const MAX_CELL = 56;

function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  const text = typeof value === "string" ? shortTime(value) : String(value);
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}

/** ISO times without milliseconds: `2026-12-03 16:28:24Z`. */
function shortTime(text: string): string {
  return /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(text)
    ? text.replace("T", " ").replace(/\.\d+Z$/, "Z")
    : text;
}

/** An aligned table of the given columns (key: header); a column of numbers aligns right. */
function table<T extends object>(rows: T[], columns: Partial<Record<keyof T & string, string>>) {
  const headers = Object.entries(columns) as Array<[keyof T & string, string]>;
  const value = (row: T, key: keyof T & string): unknown => row[key];
  const cells = rows.map((row) => headers.map(([key]) => cell(value(row, key))));
  const widths = headers.map(([, header], i) =>
    Math.max(header.length, ...cells.map((line) => line[i]?.length ?? 0)),
  );
  const numeric = headers.map(
    ([key]) => rows.length > 0 && rows.every((row) => typeof value(row, key) === "number"),
  );
  const line = (values: string[]) =>
    values
      .map((text, i) => (numeric[i] ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [headers.map(([, header]) => header), ...cells].map(line).join("\n");
}

function fields(pairs: Array<[string, unknown]>): string {
  const width = Math.max(...pairs.map(([name]) => name.length));
  return pairs.map(([name, value]) => `  ${name.padEnd(width)}  ${cell(value)}`).join("\n");
}

const DEAD_LETTER_COLUMNS: Partial<Record<keyof DeadLetter, string>> = {
  id: "ID",
  eventId: "EVENT",
  provider: "PROVIDER",
  status: "STATUS",
  errorClass: "CLASS",
  errorCode: "CODE",
  attempts: "ATTEMPTS",
  createdAt: "CREATED",
};

// ---- commands ------------------------------------------------------------------------------

function filterOf(options: Options) {
  return {
    provider: options.provider,
    errorClass: options["error-class"],
    errorCode: options["error-code"],
    since: options.since,
    until: options.until,
  };
}

function queryOf(values: Record<string, string | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values))
    if (value !== undefined) query.set(name, value);
  const text = query.toString();
  return text ? `?${text}` : "";
}

async function showEvent(admin: Admin, eventId: string, options: Options) {
  const include = options.content ? "?include=content" : "";
  if (options.content) console.error("note: opening the text is recorded in the audit trail");
  const report = await admin.call<EventReport>(
    "GET",
    `/events/${encodeURIComponent(eventId)}${include}`,
  );
  if (options.json) return print(report);

  const { event } = report;
  const error = event.lastErrorCode ? `${event.lastErrorClass} ${event.lastErrorCode}` : null;
  console.log(`Event ${event.eventId}`);
  console.log(
    fields([
      ["status", event.status],
      ["provider", event.provider],
      ["correlation", event.correlationId],
      ["attempts", event.attempts],
      ["last error", error],
      ["error message", event.lastErrorMessage],
      [
        "message",
        report.message ? `${report.message.kind}, sent ${shortTime(report.message.sentAt)}` : null,
      ],
      ["reply", replyLine(report.reply)],
      ["received", event.receivedAt],
      ["updated", event.updatedAt],
    ]),
  );
  if (report.deadLetters.length > 0) {
    console.log("\nDead letters");
    console.log(
      table(report.deadLetters, {
        id: "ID",
        status: "STATUS",
        errorCode: "CODE",
        createdAt: "CREATED",
        replayedAt: "REPLAYED",
      }),
    );
  }
  console.log("\nTimeline");
  console.log(
    table(report.timeline, {
      at: "AT",
      action: "ACTION",
      attempt: "ATTEMPT",
      reason: "REASON",
      errorCode: "ERROR",
      correlationId: "CORRELATION",
    }),
  );
  if (report.content) {
    console.log("\nContent");
    console.log(`  message: ${report.content.messageText ?? "-"}`);
    console.log(`  reply:   ${report.content.replyText ?? "-"}`);
  }
}

function replyLine(reply: EventReport["reply"]): string {
  if (!reply) return "none";
  if (reply.status !== "sent") return `${reply.status} (claimed, not confirmed sent)`;
  return `sent ${shortTime(reply.sentAt ?? "")}`;
}

/** One page, or with --all every page; `limit` is the page size. */
async function* pages(admin: Admin, options: Options, status = options.status) {
  let cursor = options.cursor;
  do {
    const query = queryOf({ ...filterOf(options), status, limit: options.limit, cursor });
    const page = await admin.call<Page>("GET", `/dead-letters${query}`);
    yield page;
    cursor = page.nextCursor ?? undefined;
  } while (options.all && cursor);
}

async function listDeadLetters(admin: Admin, options: Options) {
  const rows: DeadLetter[] = [];
  let next: string | null = null;
  for await (const page of pages(admin, options)) {
    rows.push(...page.deadLetters);
    next = page.nextCursor;
  }
  if (options.json) return print({ deadLetters: rows, nextCursor: next });
  console.log(table(rows, DEAD_LETTER_COLUMNS));
  console.log(`\n${rows.length} dead letter(s)${next ? `; more with --cursor ${next}` : ""}`);
}

async function showDeadLetter(admin: Admin, id: string, options: Options) {
  if (options.payload) console.error("note: opening the payload is recorded in the audit trail");
  const include = options.payload ? "?include=payload" : "";
  const answer = await admin.call<{ deadLetter: DeadLetter; payload?: unknown }>(
    "GET",
    `/dead-letters/${encodeURIComponent(id)}${include}`,
  );
  if (options.json) return print(answer);

  const row = answer.deadLetter;
  console.log(`Dead letter ${row.id}`);
  console.log(
    fields([
      ["event", row.eventId],
      ["provider", row.provider],
      ["correlation", row.correlationId],
      ["status", row.status],
      ["attempts", row.attempts],
      ["error", `${row.errorClass} ${row.errorCode}`],
      ["error message", row.errorMessage],
      ["created", row.createdAt],
      ["replayed", row.replayedAt],
    ]),
  );
  if (answer.payload !== undefined)
    console.log(`\nPayload\n${JSON.stringify(answer.payload, null, 2)}`);
}

async function replayOne(admin: Admin, id: string, options: Options) {
  const answer = await admin.call<{
    replayed: boolean;
    correlationId?: string;
    deadLetter: DeadLetter;
  }>("POST", `/dead-letters/${encodeURIComponent(id)}/replay`);
  if (options.json) return print(answer);
  console.log(
    answer.replayed
      ? `replayed ${id}: event ${answer.deadLetter.eventId} queued as ${answer.correlationId}`
      : `${id} was replayed before, at ${shortTime(answer.deadLetter.replayedAt ?? "")}; not sent`,
  );
}

/**
 * Replays every open dead letter that matches, one request each, so that progress shows and
 * one failure does not stop the rest. A queue outage stops the run: the rest would fail too.
 */
async function replayAll(admin: Admin, options: Options) {
  // --limit caps how many are replayed; the list is read 100 at a time.
  const max = options.limit === undefined ? Number.POSITIVE_INFINITY : Number(options.limit);
  if (!(max >= 1)) throw new UsageError("--limit must be a positive number");
  const ids: string[] = [];
  const listing = { ...options, all: true, limit: "100", cursor: undefined };
  for await (const page of pages(admin, listing, "open")) {
    ids.push(...page.deadLetters.map((row) => row.id));
    if (ids.length >= max) break;
  }
  ids.splice(max);
  if (ids.length === 0) return console.log("no open dead letters match");

  const counts = { replayed: 0, skipped: 0, failed: 0 };
  const failures: string[] = [];
  const progress = (done: number) => {
    const { replayed, skipped, failed } = counts;
    const text = `replayed ${replayed}/${ids.length} (skipped ${skipped}, failed ${failed})`;
    if (process.stdout.isTTY) process.stdout.write(`\r${text}`);
    else if (done % 10 === 0 || done === ids.length) console.log(text);
  };
  for (const [index, id] of ids.entries()) {
    try {
      const answer = await admin.call<{ replayed: boolean }>(
        "POST",
        `/dead-letters/${encodeURIComponent(id)}/replay`,
      );
      counts[answer.replayed ? "replayed" : "skipped"] += 1;
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      // 404: purged meanwhile; 422: holds nothing a queue can take. Neither can be replayed.
      if (error.status === 404 || error.status === 422) counts.skipped += 1;
      else {
        counts.failed += 1;
        failures.push(`${id}: ${error.message}`);
      }
      if (error.status === 503) {
        progress(index + 1);
        throw new Error(`the job queue is unavailable; stopped after ${index + 1}/${ids.length}`);
      }
    }
    progress(index + 1);
  }
  if (process.stdout.isTTY) process.stdout.write("\n");
  for (const failure of failures) console.error(`failed ${failure}`);
  if (counts.failed > 0) process.exitCode = 1;
}

async function purge(admin: Admin, id: string, options: Options) {
  if (!options.yes && process.stdin.isTTY) {
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await prompt.question(
      `purge dead letter ${id}? Its payload is deleted for good [y/N] `,
    );
    prompt.close();
    if (!/^y(es)?$/i.test(answer.trim())) return console.log("not purged");
  }
  const answer = await admin.call<{ deadLetter: DeadLetter }>(
    "DELETE",
    `/dead-letters/${encodeURIComponent(id)}`,
  );
  if (options.json) return print(answer);
  console.log(`purged ${id} (event ${answer.deadLetter.eventId})`);
}

function print(value: unknown) {
  console.log(JSON.stringify(value, null, 2));
}

const COMMANDS = [
  "events show",
  "dead-letters list",
  "dead-letters show",
  "dead-letters replay",
  "dead-letters purge",
];

async function run(argv: string[]) {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values: options, positionals } = parsed;
  if (options.help || positionals.length === 0) return console.log(USAGE);

  const [group, command, id, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const need = (what: string) => {
    if (!id) throw new UsageError(`${group} ${command} needs ${what}`);
    return id;
  };
  if (!COMMANDS.includes(`${group} ${command}`)) {
    throw new UsageError(`unknown command: ${positionals.join(" ")}`);
  }
  const admin = connect(options);

  switch (`${group} ${command}`) {
    case "events show":
      return showEvent(admin, need("an event id"), options);
    case "dead-letters list":
      return listDeadLetters(admin, options);
    case "dead-letters show":
      return showDeadLetter(admin, need("a dead letter id"), options);
    case "dead-letters replay":
      if (options.all && !id) return replayAll(admin, options);
      if (options.all) throw new UsageError("give a dead letter id or --all, not both");
      return replayOne(admin, need("a dead letter id, or --all"), options);
    case "dead-letters purge":
      return purge(admin, need("a dead letter id"), options);
    default:
      throw new UsageError(`unknown command: ${positionals.join(" ")}`);
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`ops: ${message}`);
  if (error instanceof UsageError) console.error("run with --help for usage");
  process.exitCode = error instanceof UsageError ? 2 : 1;
});
