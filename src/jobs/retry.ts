import { MAX_DELAY_SECONDS } from "../config";

/**
 * The delay before the next attempt: the schedule's entry for this attempt (the last entry
 * past its end), or longer when the far side asked for longer.
 */
export function retryDelaySeconds(
  attempt: number,
  schedule: readonly number[],
  requestedSeconds = 0,
): number {
  const index = Math.min(Math.max(attempt, 1), schedule.length) - 1;
  const scheduled = schedule[index] ?? 0;
  return Math.min(Math.max(scheduled, Math.ceil(requestedSeconds)), MAX_DELAY_SECONDS);
}

/** Whether Cloudflare will deliver the job again after a retry, or move it to the dead letter. */
export function hasRetriesLeft(attempt: number, schedule: readonly number[]): boolean {
  return attempt <= schedule.length;
}
