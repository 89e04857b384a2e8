/**
 * Cloudflare's published prices for what one event spends, Workers Paid plan, beyond the
 * monthly allowance. As published in 2026; re-check the pages before quoting a figure:
 *
 * - D1: https://developers.cloudflare.com/d1/platform/pricing/
 *   rows read $0.001 per million (25 billion included), rows written $1.00 per million
 *   (50 million included). Index entries written count as rows.
 * - Queues: https://developers.cloudflare.com/queues/platform/pricing/
 *   $0.40 per million operations (1 million included). Each 64 KB written, read or deleted is
 *   one operation; a retry is one more read; a move to a dead-letter queue is one more write.
 * - Workers Standard: https://developers.cloudflare.com/workers/platform/pricing/
 *   $0.30 per million requests (10 million included), $0.02 per million CPU milliseconds
 *   (30 million included). Subrequests are not billed.
 */
export const PRICES_READ = "2026-12";

export const USD_PER_MILLION = {
  d1RowsRead: 0.001,
  d1RowsWritten: 1.0,
  queueOperations: 0.4,
  workersRequests: 0.3,
  workersCpuMs: 0.02,
} as const;

export const PRICE_PAGES = [
  "https://developers.cloudflare.com/d1/platform/pricing/",
  "https://developers.cloudflare.com/queues/platform/pricing/",
  "https://developers.cloudflare.com/workers/platform/pricing/",
] as const;
