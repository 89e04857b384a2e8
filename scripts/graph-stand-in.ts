/**
 * A local stand-in for the Instagram Send API, for `npm run dev`, the soak run and the
 * benchmark. It answers `POST /<version>/me/messages` like Graph does and prints metadata of
 * each reply (never its text). The recipient id picks a behaviour, so a sample delivery can
 * ask for a failure:
 *   fail-<code>    always fails: 500/429 as HTTP statuses, other numbers as Graph error codes
 *   flaky-<code>   fails the first call for this recipient that way, then succeeds
 *   slow-<ms>      answers after a delay
 * With `failFirstRate`, that share of first calls per recipient fails in mixed ways.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";

export interface StandInOptions {
  port?: number;
  host?: string;
  /** Share of first calls per recipient that fail in mixed retryable ways, 0..1. */
  failFirstRate?: number;
  quiet?: boolean;
}

export interface ReplyRecord {
  recipientId: string;
  messageId: string;
  textBytes: number;
  at: number;
}

export interface StandIn {
  url: string;
  replies: ReplyRecord[];
  /** Calls per recipient id, failed ones included. */
  calls: Map<string, number>;
  close(): Promise<void>;
}

const RETRYABLE_FAULTS = ["500", "429", "2", "reset", "empty-503"] as const;

export async function startGraphStandIn(options: StandInOptions = {}): Promise<StandIn> {
  const replies: ReplyRecord[] = [];
  const calls = new Map<string, number>();
  const failFirstRate = options.failFirstRate ?? 0;
  let sequence = 0;

  const server = createServer(async (request, response) => {
    if (request.method === "GET" && request.url === "/__stand-in/replies") {
      return json(response, 200, { replies, calls: Object.fromEntries(calls) });
    }
    if (request.method !== "POST" || !/^\/v\d+\.\d+\/me\/messages$/.test(request.url ?? "")) {
      return graphError(response, 400, 100, "Unsupported request");
    }
    if (!request.headers.authorization?.startsWith("Bearer ")) {
      return graphError(response, 401, 190, "Invalid OAuth access token");
    }

    const body = await readJson(request);
    const recipientId = body?.recipient?.id;
    const text = body?.message?.text;
    if (typeof recipientId !== "string" || typeof text !== "string") {
      return graphError(response, 400, 100, "recipient.id and message.text are required");
    }
    const call = (calls.get(recipientId) ?? 0) + 1;
    calls.set(recipientId, call);

    const fault = faultFor(recipientId, call, failFirstRate);
    if (fault) return answerFault(response, fault);
    const slow = /^slow-(\d+)/.exec(recipientId);
    if (slow) await new Promise((resolve) => setTimeout(resolve, Number(slow[1])));

    sequence += 1;
    const record = {
      recipientId,
      messageId: `stand-in-mid-${sequence}`,
      textBytes: Buffer.byteLength(text),
      at: Date.now(),
    };
    replies.push(record);
    if (!options.quiet) {
      console.log(`graph stand-in: reply ${record.messageId} (${record.textBytes} bytes) accepted`);
    }
    return json(response, 200, { recipient_id: recipientId, message_id: record.messageId });
  });

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${host}:${port}`,
    replies,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function faultFor(recipientId: string, call: number, failFirstRate: number): string | null {
  const always = /^fail-(\w+)/.exec(recipientId);
  if (always?.[1]) return always[1];
  const once = /^flaky-(\w+)/.exec(recipientId);
  if (once?.[1]) return call === 1 ? once[1] : null;
  if (call === 1 && failFirstRate > 0 && unitHash(recipientId) < failFirstRate) {
    return (
      RETRYABLE_FAULTS[Math.floor(unitHash(`${recipientId}#`) * RETRYABLE_FAULTS.length)] ?? "500"
    );
  }
  return null;
}

function answerFault(response: ServerResponse, fault: string) {
  if (fault === "reset") return response.socket?.destroy();
  if (fault === "empty-503") return response.writeHead(503).end();
  if (fault === "500") return graphError(response, 500, 1, "An unknown error occurred");
  if (fault === "429") {
    response.setHeader("retry-after", "1");
    return graphError(response, 429, 4, "Application request limit reached");
  }
  const code = Number(fault);
  const status = [1, 2, 4, 17, 32, 341, 368, 613].includes(code) ? 503 : 400;
  return graphError(response, status, Number.isFinite(code) ? code : 100, "Stand-in failure");
}

/** A stable number in [0, 1) for a string, so a soak run fails the same recipients each time. */
function unitHash(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return (hash >>> 0) / 2 ** 32;
}

function graphError(response: ServerResponse, status: number, code: number, message: string) {
  json(response, status, {
    error: {
      message: `(#${code}) ${message}`,
      type: "OAuthException",
      code,
      fbtrace_id: "stand-in",
    },
  });
}

function json(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

interface SendBody {
  recipient?: { id?: unknown };
  message?: { text?: unknown };
}

async function readJson(request: IncomingMessage): Promise<SendBody | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as SendBody;
  } catch {
    return null;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const port = Number(process.env.STAND_IN_PORT ?? 8789);
  const standIn = await startGraphStandIn({ port });
  console.log(`graph stand-in: listening on ${standIn.url}`);
}
