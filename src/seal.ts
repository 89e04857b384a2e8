import { base64ToBytes, bytesToBase64, utf8 } from "./bytes";

/**
 * AES-256-GCM sealing for what must rest encrypted: message text and dead-letter payloads.
 * A sealed value reads `v1.<iv>.<ciphertext>` in base64. The associated data binds it to its
 * row (an event id), so a value copied into another row fails to open.
 */
const VERSION = "v1";
const IV_BYTES = 12;

export function importSealKey(base64Key: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", base64ToBytes(base64Key), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

export async function seal(key: CryptoKey, plaintext: string, context: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8(context) },
    key,
    utf8(plaintext),
  );
  return `${VERSION}.${bytesToBase64(iv)}.${bytesToBase64(ciphertext)}`;
}

/** Throws when the value was not sealed by this key for this context. */
export async function unseal(key: CryptoKey, sealed: string, context: string): Promise<string> {
  const [version, iv, ciphertext] = sealed.split(".");
  if (version !== VERSION || !iv || !ciphertext) throw new Error("not a sealed value");

  const plaintext = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: base64ToBytes(iv), additionalData: utf8(context) },
    key,
    base64ToBytes(ciphertext),
  );
  return new TextDecoder().decode(plaintext);
}
