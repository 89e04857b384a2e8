import * as z from "zod";
import type { Env } from "./env";

/** Cloudflare Queues refuses a retry delay above 12 hours. */
export const MAX_DELAY_SECONDS = 43_200;

const secret = z.string({ error: "is required" }).trim().min(1, "is required");

const delayList = z
  .string()
  .transform((raw) => raw.split(",").map((part) => Number(part.trim())))
  .pipe(
    z
      .array(z.number().int("must be whole seconds").min(0).max(MAX_DELAY_SECONDS))
      .min(1, "needs at least one delay"),
  );

const encryptionKey = secret.refine(
  (value) => /^[A-Za-z0-9+/]{43}=$/.test(value),
  "must be 32 bytes in standard base64 (openssl rand -base64 32)",
);

const configSchema = z.object({
  META_APP_SECRET: secret,
  META_VERIFY_TOKEN: secret,
  INSTAGRAM_ACCESS_TOKEN: secret,
  DATA_ENCRYPTION_KEY: encryptionKey,
  ADMIN_TOKEN: z.string().trim().min(1).optional(),
  ALERT_WEBHOOK_URL: z.url({ error: "must be an absolute URL" }).optional(),
  GRAPH_API_BASE_URL: z
    .url({ error: "must be an absolute URL" })
    .default("https://graph.instagram.com")
    .transform((url) => url.replace(/\/+$/, "")),
  GRAPH_API_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, "must look like v26.0")
    .default("v26.0"),
  GRAPH_API_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  RETRY_DELAYS_SECONDS: delayList.default([60, 300, 900]),
  /** Meta redelivers for up to 36 hours; a claim must outlive that to catch every duplicate. */
  CLAIM_RETENTION_HOURS: z.coerce
    .number()
    .int()
    .min(37, "must exceed Meta's 36-hour redelivery")
    .default(72),
  MESSAGE_RETENTION_DAYS: z.coerce.number().int().min(1).default(90),
  DEAD_LETTER_RETENTION_DAYS: z.coerce.number().int().min(1).default(30),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).default(90),
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
