import { JobFailure } from "../jobs/failure";

/**
 * Graph error codes that mean "wait and try again". Meta also marks some errors
 * `is_transient`. https://developers.facebook.com/docs/graph-api/guides/error-handling
 */
const RETRYABLE_CODES = new Set([1, 2, 4, 17, 32, 341, 368, 613]);

/** Codes that no retry can fix: permissions, bad parameters, an expired or revoked token. */
function isPermanentCode(code: number): boolean {
  return code === 10 || code === 100 || code === 190 || (code >= 200 && code <= 299);
}

/** Server errors, rate limiting, and a request timeout reported by a proxy on the way. */
function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

interface GraphErrorBody {
  error?: { message?: unknown; code?: unknown; is_transient?: unknown };
}

/**
 * Classifies a Send API response that was not a success. `redact` lists what we sent (token,
 * recipient, text): Graph may quote it back, and the message is stored with the failure.
 */
export async function graphFailure(response: Response, redact: string[] = []): Promise<JobFailure> {
  const body = (await response.json().catch(() => null)) as GraphErrorBody | null;
  const error = body?.error;
  const code = typeof error?.code === "number" ? error.code : undefined;
  const quoted = typeof error?.message === "string" ? error.message : "";
  const detail = quoted ? `: ${redactAll(quoted, redact)}` : "";
  const message = `Send API answered ${response.status}${detail}`;
  const errorCode = code === undefined ? `http_${response.status}` : `graph_${code}`;

  // An unknown code on a 5xx, 429 or 408 is taken as the status says: worth another attempt.
  const retryable =
    (code !== undefined && RETRYABLE_CODES.has(code)) ||
    error?.is_transient === true ||
    (isTransientStatus(response.status) && (code === undefined || !isPermanentCode(code)));
  const retryAfter = requestedDelaySeconds(response.headers);
  return new JobFailure(retryable ? "retryable" : "permanent", errorCode, message, retryAfter);
}

/**
 * How long the response asks us to wait: `Retry-After` (seconds or an HTTP date), or the
 * Business Use Case rate-limit header's `estimated_time_to_regain_access` (minutes).
 * https://developers.facebook.com/docs/graph-api/overview/rate-limiting
 */
export function requestedDelaySeconds(headers: Headers, now = Date.now()): number | undefined {
  const delays: number[] = [];

  const retryAfter = headers.get("retry-after");
  if (retryAfter) {
    const seconds = /^\d+$/.test(retryAfter.trim())
      ? Number(retryAfter)
      : (Date.parse(retryAfter) - now) / 1000;
    if (Number.isFinite(seconds) && seconds > 0) delays.push(seconds);
  }

  const usage = headers.get("x-business-use-case-usage");
  if (usage) {
    try {
      const byBusiness = JSON.parse(usage) as Record<string, Array<Record<string, unknown>>>;
      for (const entries of Object.values(byBusiness)) {
        for (const entry of entries) {
          const minutes = entry.estimated_time_to_regain_access;
          if (typeof minutes === "number" && minutes > 0) delays.push(minutes * 60);
        }
      }
    } catch {
      // A malformed usage header asks for nothing.
    }
  }

  return delays.length > 0 ? Math.max(...delays) : undefined;
}

function redactAll(text: string, values: string[]): string {
  let redacted = text;
  for (const value of values) {
    if (value.length >= 4) redacted = redacted.replaceAll(value, "[redacted]");
  }
  return redacted;
}
