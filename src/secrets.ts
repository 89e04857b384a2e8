import { utf8 } from "./bytes";

/**
 * Compares a presented secret with the configured one in constant time. Both sides are
 * hashed first, so neither their contents nor their lengths shape the time taken.
 */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", utf8(presented)),
    crypto.subtle.digest("SHA-256", utf8(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}
