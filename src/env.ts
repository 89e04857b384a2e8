import type { WebhookJob } from "./jobs/job";

/** The Worker's bindings, as declared in wrangler.toml plus the secrets set beside it. */
export interface Env {
  DB: D1Database;
  JOBS: Queue<WebhookJob>;

  META_APP_SECRET?: string;
  META_VERIFY_TOKEN?: string;
  INSTAGRAM_ACCESS_TOKEN?: string;
  DATA_ENCRYPTION_KEY?: string;
  ADMIN_TOKEN?: string;
  ALERT_WEBHOOK_URL?: string;

  GRAPH_API_BASE_URL?: string;
  GRAPH_API_VERSION?: string;
  GRAPH_API_TIMEOUT_MS?: string;
  RETRY_DELAYS_SECONDS?: string;
  CLAIM_RETENTION_HOURS?: string;
  MESSAGE_RETENTION_DAYS?: string;
  DEAD_LETTER_RETENTION_DAYS?: string;
  AUDIT_RETENTION_DAYS?: string;
}
