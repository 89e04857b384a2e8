import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { admin } from "./admin/routes";
import { ConfigError } from "./config";
import type { Env } from "./env";
import { health } from "./health";
import { errorName, log } from "./log";
import { webhooks } from "./webhooks/route";

export const app = new Hono<{ Bindings: Env }>();

app.route("/webhooks", webhooks);
app.route("/admin", admin);
app.route("/health", health);

app.notFound((c) => c.json({ error: { status: 404, message: "no such route" } }, 404));

/** One error body for every failure: `{ "error": { "status", "message" } }`. */
app.onError((error, c) => {
  let status: ContentfulStatusCode = 500;
  let message = "internal error";
  if (error instanceof HTTPException) {
    status = error.status;
    message = error.message;
  } else if (error instanceof ConfigError) {
    message = error.message;
  }

  if (status >= 500) {
    // Our own messages name routes, fields and variables, never values or content; a foreign
    // error's message might quote what it failed on, so only its class is logged.
    const ours = error instanceof HTTPException || error instanceof ConfigError;
    const fields = {
      httpStatus: status,
      errorClass: error instanceof HTTPException ? "HTTPException" : errorName(error),
      reason: ours ? message : undefined,
    };
    // A 503 asks the caller to come back (queue down, claim in flight): worth a warning only.
    if (status === 503) log.warn("request deferred", fields);
    else log.error("request failed", fields);
  }
  return c.json({ error: { status, message } }, status);
});
