import { app } from "./app";
import { loadConfig } from "./config";
import { database } from "./db/client";
import type { Env } from "./env";
import { consumeJobs } from "./jobs/consume";
import { consumeDeadLetters } from "./jobs/consume-dead-letters";
import { purgeExpired } from "./retention";

export default {
  fetch: app.fetch,

  /** The job queue and its dead-letter queue share this handler; wrangler.toml names them. */
  async queue(batch: MessageBatch<unknown>, env: Env) {
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env);
    else await consumeJobs(batch, env);
  },

  /** The retention cron (wrangler.toml [triggers]). A failure throws, so the run shows failed. */
  async scheduled(controller: ScheduledController, env: Env) {
    await purgeExpired(database(env.DB), loadConfig(env), controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;
