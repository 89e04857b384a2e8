/**
 * Structured logging: one JSON object per line, a fixed message plus metadata. The field list
 * is closed on purpose: message text, sender ids, payloads and secrets have no field to go in.
 */
export interface LogFields {
  eventId?: string;
  correlationId?: string;
  deliveryId?: string;
  provider?: string;
  status?: string;
  attempt?: number;
  count?: number;
  delaySeconds?: number;
  errorClass?: string;
  errorCode?: string;
  reason?: string;
  httpStatus?: number;
  durationMs?: number;
}

type Level = "debug" | "info" | "warn" | "error";

function write(level: Level, message: string, fields: LogFields): void {
  const line = JSON.stringify({ level, message, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  info: (message: string, fields: LogFields = {}) => write("info", message, fields),
  warn: (message: string, fields: LogFields = {}) => write("warn", message, fields),
  error: (message: string, fields: LogFields = {}) => write("error", message, fields),
};

/** The error's class name only: messages of foreign errors may quote what they failed on. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
