import * as z from "zod/mini";
import type { Env } from "./env";
import { wholeNumber } from "./validation";

/** Cloudflare Queues refuses a retry delay above 12 hours. */
export const MAX_DELAY_SECONDS = 43_200;

const secret = () =>
  z.string({ error: "is required" }).check(z.trim(), z.minLength(1, "is required"));

const delayList = z.pipe(
  z.pipe(
    z.string(),
    z.transform((raw) => raw.split(",").map((part) => Number(part.trim()))),
  ),
  z
    .array(z.int("must be whole seconds").check(z.gte(0), z.lte(MAX_DELAY_SECONDS)))
    .check(z.minLength(1, "needs at least one delay")),
);

const encryptionKey = secret().check(
  z.refine(
    (value) => /^[A-Za-z0-9+/]{43}=$/.test(value),
    "must be 32 bytes in standard base64 (openssl rand -base64 32)",
  ),
);

const absoluteUrl = () => z.url({ error: "must be an absolute URL" });

const configSchema = z.object({
  META_APP_SECRET: secret(),
  META_VERIFY_TOKEN: secret(),
  INSTAGRAM_ACCESS_TOKEN: secret(),
  DATA_ENCRYPTION_KEY: encryptionKey,
  ADMIN_TOKEN: z.optional(z.string().check(z.trim(), z.minLength(1))),
  ALERT_WEBHOOK_URL: z.optional(absoluteUrl()),
  GRAPH_API_BASE_URL: z.pipe(
    z._default(absoluteUrl(), "https://graph.instagram.com"),
    z.transform((url) => url.replace(/\/+$/, "")),
  ),
  GRAPH_API_VERSION: z._default(
    z.string().check(z.regex(/^v\d+\.\d+$/, "must look like v26.0")),
    "v26.0",
  ),
  GRAPH_API_TIMEOUT_MS: z._default(wholeNumber(100, 60_000), 10_000),
  RETRY_DELAYS_SECONDS: z._default(delayList, [60, 300, 900]),
  /** Meta redelivers for up to 36 hours; a claim must outlive that to catch every duplicate. */
  CLAIM_RETENTION_HOURS: z._default(
    wholeNumber(37, undefined, "must exceed Meta's 36-hour redelivery"),
    72,
  ),
  MESSAGE_RETENTION_DAYS: z._default(wholeNumber(1), 90),
  DEAD_LETTER_RETENTION_DAYS: z._default(wholeNumber(1), 30),
  AUDIT_RETENTION_DAYS: z._default(wholeNumber(1), 90),
});

export type Config = z.infer<typeof configSchema>;

/** Thrown when a variable is missing or malformed; its message names every variable at fault. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads the configuration from the environment. Empty strings count as unset, so that an
 * optional variable left blank in .dev.vars takes its default.
 */
export function loadConfig(env: Env): Config {
  const raw = Object.fromEntries(
    Object.keys(configSchema.shape).map((name) => {
      const value = env[name as keyof Env];
      return [name, typeof value === "string" && value.trim() === "" ? undefined : value];
    }),
  );
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;

  const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
  throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
}
