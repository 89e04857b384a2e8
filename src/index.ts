import { app } from "./app";
import type { Env } from "./env";
import { consumeDeadLetters, consumeJobs } from "./jobs/consume";

export default {
  fetch: app.fetch,

  /** The job queue and its dead-letter queue share this handler; wrangler.toml names them. */
  async queue(batch: MessageBatch<unknown>, env: Env) {
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env);
    else await consumeJobs(batch, env);
  },
} satisfies ExportedHandler<Env>;
