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

  return crypto.subtle.verify("HMAC", await hmacKey(appSecret), hexToBytes(hex), body);
}

/**
 * Imported keys by secret, so that a request does one HMAC and no key import. Only a cache:
 * a key imports the same every time, and a rotated secret simply adds an entry.
 */
const keys = new Map<string, Promise<CryptoKey>>();
const MAX_KEYS = 4;

function hmacKey(appSecret: string): Promise<CryptoKey> {
  const cached = keys.get(appSecret);
  if (cached) return cached;
  if (keys.size >= MAX_KEYS) keys.clear();
  const key = crypto.subtle.importKey(
    "raw",
    utf8(appSecret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  keys.set(appSecret, key);
  key.catch(() => keys.delete(appSecret));
  return key;
}
