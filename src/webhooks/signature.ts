import { hexToBytes, utf8 } from "../bytes";

const PREFIX = "sha256=";
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

/**
 * Checks `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256 of the raw body keyed with the
 * app secret. `crypto.subtle.verify` compares in constant time.
 * https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications
 */
export async function verifySignature(
  appSecret: string,
  body: Uint8Array<ArrayBuffer>,
  header: string | null | undefined,
): Promise<boolean> {
  if (!header?.startsWith(PREFIX)) return false;
  const hex = header.slice(PREFIX.length);
  if (!HEX_DIGEST.test(hex)) return false;

  const key = await crypto.subtle.importKey(
    "raw",
    utf8(appSecret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify("HMAC", key, hexToBytes(hex), body);
}
