import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sha256Hex, sha256HexSync } from "../src/bytes";
import { canonicalJson } from "../src/webhooks/delivery";

describe("event ids for events without a mid", () => {
  it("digest with the runtime's SHA-256, whatever the text", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 300 }), async (text) => {
        expect(sha256HexSync(text)).toBe(await sha256Hex(text));
      }),
      { numRuns: 300 },
    );
  });

  it("digest texts around SHA-256's 64-byte block edges like the runtime does", async () => {
    for (let length = 0; length <= 200; length++) {
      const text = "a".repeat(length);
      expect(sha256HexSync(text)).toBe(await sha256Hex(text));
    }
  });

  it("name equal content equally, whatever the order of its keys", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(record));
        expect(JSON.parse(canonicalJson(record))).toEqual(JSON.parse(JSON.stringify(record)));
      }),
      { numRuns: 200 },
    );
  });
});
