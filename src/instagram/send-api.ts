import type { Config } from "../config";
import { graphFailure } from "./errors";

/** Meta refuses message text over 1000 bytes (UTF-8). */
export const MAX_TEXT_BYTES = 1000;

export interface SendResult {
  /** Graph's `message_id`; null when a success response did not carry one. */
  messageId: string | null;
}

/**
 * Sends a text message through the Instagram Send API. Throws a classified JobFailure for an
 * error response, and the fetch's own error for a timeout or a broken connection.
 * https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api
 */
export async function sendText(
  config: Config,
  recipientId: string,
  text: string,
): Promise<SendResult> {
  const url = `${config.GRAPH_API_BASE_URL}/${config.GRAPH_API_VERSION}/me/messages`;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${config.INSTAGRAM_ACCESS_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ recipient: { id: recipientId }, message: { text: fitToBytes(text) } }),
    signal: AbortSignal.timeout(config.GRAPH_API_TIMEOUT_MS),
  });
  if (!response.ok) {
    throw await graphFailure(response, [config.INSTAGRAM_ACCESS_TOKEN, recipientId, text]);
  }

  // A 2xx means Meta took the message; a body without an id must not cause a second send.
  const body = (await response.json().catch(() => null)) as { message_id?: unknown } | null;
  return { messageId: typeof body?.message_id === "string" ? body.message_id : null };
}

/** Cuts text to Meta's byte limit on a character boundary. */
export function fitToBytes(text: string, limit = MAX_TEXT_BYTES): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).byteLength <= limit) return text;

  let fitted = "";
  let bytes = 0;
  for (const character of text) {
    const size = encoder.encode(character).byteLength;
    if (bytes + size > limit - 3) break;
    fitted += character;
    bytes += size;
  }
  return `${fitted}...`;
}
