import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { callWorker } from "./support/deliveries";

const HEALTH_URL = "https://worker.test/health";

describe("GET /health", () => {
  it("answers 200 when D1 answers", async () => {
    const response = await callWorker(new Request(HEALTH_URL));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("answers 503 when D1 does not, and says nothing about why", async () => {
    const broken = new Proxy(env.DB, {
      get(target, property) {
        if (property === "prepare") {
          return () => {
            throw new Error("D1_ERROR: the database is unreachable at secret-host");
          };
        }
        return Reflect.get(target, property);
      },
    });
    const response = await callWorker(new Request(HEALTH_URL), { DB: broken });
    expect(response.status).toBe(503);
    const body = await response.text();
    expect(JSON.parse(body)).toEqual({ status: "unavailable" });
    expect(body).not.toContain("secret-host");
  });

  it("needs no secrets to answer", async () => {
    const response = await callWorker(new Request(HEALTH_URL), {
      META_APP_SECRET: undefined,
      ADMIN_TOKEN: undefined,
    });
    expect(response.status).toBe(200);
  });
});
