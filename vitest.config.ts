import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_BINDINGS } from "./test/support/bindings.ts";

const migrations = await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url)));

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { ...TEST_BINDINGS, TEST_MIGRATIONS: migrations },
        // Batches go out at once in tests, so end-to-end flows settle in milliseconds.
        queueConsumers: {
          "webhook-jobs": {
            maxBatchTimeout: 0,
            maxRetries: 3,
            deadLetterQueue: "webhook-jobs-dlq",
          },
          "webhook-jobs-dlq": { maxBatchTimeout: 0, maxRetries: 100 },
        },
        // Fail closed: a request that escapes the test's Graph stand-in never leaves the machine.
        outboundService: (request: Request) =>
          new Response(`no network in tests: ${new URL(request.url).host}`, { status: 599 }),
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    // The Worker logs a line per step; show them for failing tests only.
    silent: "passed-only",
  },
});
