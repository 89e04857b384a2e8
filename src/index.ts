import { app } from "./app";
import type { Env } from "./env";
import type { WebhookJob } from "./jobs/job";

export default {
  fetch: app.fetch,

  async queue(batch: MessageBatch<WebhookJob>, env: Env, ctx: ExecutionContext) {
    // TODO(#3): consume jobs and dead letters. Until then nothing is acknowledged.
    void env;
    void ctx;
    batch.retryAll({ delaySeconds: 60 });
  },
} satisfies ExportedHandler<Env, WebhookJob>;
