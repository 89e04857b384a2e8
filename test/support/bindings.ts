/**
 * Test-only values for the Worker's secrets and settings. Shared by vitest.config.ts (which
 * hands them to the Worker) and the tests (which sign and authenticate with them).
 */
export const TEST_BINDINGS = {
  META_APP_SECRET: "test-app-secret",
  META_VERIFY_TOKEN: "test-verify-token",
  INSTAGRAM_ACCESS_TOKEN: "test-access-token",
  DATA_ENCRYPTION_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
  ADMIN_TOKEN: "test-admin-token",
  GRAPH_API_BASE_URL: "https://graph.test",
  GRAPH_API_VERSION: "v26.0",
  GRAPH_API_TIMEOUT_MS: "300",
  // No wait between attempts, so the runtime-driven consumer reaches the dead-letter queue
  // within a test. Tests that assert delays pass PRODUCTION_SCHEDULE (test/support/jobs.ts).
  RETRY_DELAYS_SECONDS: "0,0,0",
} as const;
