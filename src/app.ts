import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ConfigError } from "./config";
import type { Env } from "./env";
import { health } from "./health";
import { errorName, log } from "./log";
import { webhooks } from "./webhooks/route";

export const app = new Hono<{ Bindings: Env }>();

app.route("/webhooks", webhooks);
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
    log.error("request failed", {
      httpStatus: status,
      errorClass: errorName(error),
      // A configuration message names variables, never their values.
      reason: error instanceof ConfigError ? error.message : undefined,
    });
  }
  return c.json({ error: { status, message } }, status);
});
