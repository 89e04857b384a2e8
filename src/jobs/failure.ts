import { $ZodError } from "zod/v4/core";

export type ErrorClass = "retryable" | "permanent";

/**
 * A failure of one attempt, classified once. `code` is short and stable (`graph_190`,
 * `http_503`, `timeout`, `invalid_job`); `message` is sanitised and safe to store.
 */
export class JobFailure extends Error {
  override name = "JobFailure";
  constructor(
    readonly errorClass: ErrorClass,
    readonly code: string,
    message: string,
    /** A delay the far side asked for (Retry-After, rate-limit headers), in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(sanitise(message));
  }
}

/** Every failure goes through here: what is not known to be permanent is retried. */
export function classifyFailure(error: unknown): JobFailure {
  if (error instanceof JobFailure) return error;
  if (error instanceof $ZodError) {
    return new JobFailure("permanent", "invalid_job", `job is not valid: ${fieldsOf(error)}`);
  }
  if (
    error instanceof DOMException &&
    (error.name === "TimeoutError" || error.name === "AbortError")
  ) {
    return new JobFailure("retryable", "timeout", "the request timed out");
  }
  // drizzle wraps what D1 throws for a single statement; D1's own message is then the cause.
  const causes = error instanceof Error ? [error, error.cause] : [];
  if (causes.some((cause) => cause instanceof Error && /D1_|SQLITE_/.test(cause.message))) {
    return new JobFailure("retryable", "d1_error", "the database call failed");
  }
  // workerd reports a dropped connection as a plain Error ("Network connection lost.").
  if (
    error instanceof TypeError ||
    (error instanceof Error && /network|connection|socket/i.test(error.message))
  ) {
    return new JobFailure("retryable", "network", "the request failed before a response");
  }
  return new JobFailure("retryable", "internal", "unexpected error while processing the job");
}

function fieldsOf(error: $ZodError): string {
  return error.issues.map((issue) => issue.path.join(".") || "job").join(", ");
}

/**
 * Keeps an error message fit to store beside metadata: numbers that could be ids, e-mail
 * addresses and token-like strings are masked, and the length is bounded.
 */
export function sanitise(message: string): string {
  return message
    .replace(/[\w.+-]+@[\w-]+\.[\w.-]+/g, "[email]")
    .replace(/[A-Za-z0-9_\-=+/]{24,}/g, "[redacted]")
    .replace(/\d{6,}/g, "[id]")
    .slice(0, 200);
}
