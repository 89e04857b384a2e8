import { HTTPException } from "hono/http-exception";
import * as z from "zod/mini";
import { base64ToBytes, bytesToBase64, utf8 } from "../bytes";
import { DEAD_LETTER_STATUSES } from "../db/schema";
import { PROVIDERS } from "../jobs/job";
import { wholeNumber } from "../validation";

/** The largest JSON body an admin call takes; a filter is a few hundred bytes. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;

const MAX_PAGE = 100;
/** A bulk replay is bounded so that one request stays well inside a Worker's subrequest limit. */
const MAX_BULK_REPLAY = 100;

/** An ISO 8601 date (midnight UTC) or date-time with a zone, as ms since the epoch. */
const instant = z.pipe(
  z.union([z.iso.datetime({ offset: true }), z.iso.date()], {
    error: "must be an ISO 8601 date or date-time, e.g. 2026-12-01 or 2026-12-01T09:30:00Z",
  }),
  z.transform((value) => Date.parse(value)),
);

/** Ids are opaque here; the bound only keeps a pasted blob out of the database. */
export const idSchema = z.string().check(z.minLength(1), z.maxLength(512));

/** What narrows a list of dead letters, in a query string or a bulk replay's body. */
const deadLetterFilter = {
  provider: z.optional(z.enum([...PROVIDERS, "unknown"])),
  errorClass: z.optional(z.enum(["retryable", "permanent"])),
  errorCode: z.optional(
    z.string().check(z.regex(/^[a-z0-9_]{1,64}$/, "must be a code such as graph_190 or http_503")),
  ),
  since: z.optional(instant),
  until: z.optional(instant),
};

export const deadLetterListQuery = z.strictObject({
  ...deadLetterFilter,
  status: z._default(z.enum([...DEAD_LETTER_STATUSES, "all"]), "open"),
  limit: z._default(wholeNumber(1, MAX_PAGE), 50),
  cursor: z.optional(z.string().check(z.maxLength(1024))),
});

export const bulkReplayBody = z.strictObject({
  ...deadLetterFilter,
  max: z._default(z.int().check(z.gte(1), z.lte(MAX_BULK_REPLAY)), MAX_BULK_REPLAY),
});

export const eventQuery = z.strictObject({ include: z.optional(z.literal("content")) });
export const deadLetterQuery = z.strictObject({ include: z.optional(z.literal("payload")) });

export type DeadLetterListQuery = z.infer<typeof deadLetterListQuery>;
export type DeadLetterFilter = Omit<DeadLetterListQuery, "limit" | "cursor">;

/** Parses a query string or body; a failure is a 400 naming every field at fault. */
export function parseInput<T extends z.ZodMiniType>(
  schema: T,
  input: unknown,
  where: "path" | "query" | "body",
): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;

  const problems = parsed.error.issues.slice(0, 5).map((issue) => {
    if (issue.code === "unrecognized_keys")
      return `${where}: unknown field ${issue.keys.join(", ")}`;
    return `${issue.path.length ? issue.path.join(".") : where}: ${issue.message}`;
  });
  throw new HTTPException(400, { message: `invalid ${where}: ${problems.join("; ")}` });
}

/** A position in the list ordered by (createdAt, id); opaque to clients. */
export interface Cursor {
  createdAt: number;
  id: string;
}

const cursorShape = z.tuple([z.int().check(z.nonnegative()), z.string().check(z.minLength(1))]);

export function encodeCursor(cursor: Cursor): string {
  return bytesToBase64(utf8(JSON.stringify([cursor.createdAt, cursor.id])))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

export function decodeCursor(raw: string): Cursor {
  try {
    const base64 = raw.replaceAll("-", "+").replaceAll("_", "/");
    const json = new TextDecoder().decode(base64ToBytes(base64));
    const [createdAt, id] = cursorShape.parse(JSON.parse(json));
    return { createdAt, id };
  } catch {
    throw new HTTPException(400, {
      message: "invalid query: cursor: is not a cursor from this API",
    });
  }
}
