import { Hono } from "hono";
import type { Env } from "./env";
import { errorName, log } from "./log";

export const health = new Hono<{ Bindings: Env }>();

/** Liveness for uptime checks: 200 when D1 answers, 503 otherwise. Says nothing else. */
health.get("/", async (c) => {
  try {
    await c.env.DB.prepare("SELECT 1").first();
    return c.json({ status: "ok" });
  } catch (error) {
    log.error("health check failed", { errorClass: errorName(error) });
    return c.json({ status: "unavailable" }, 503);
  }
});
