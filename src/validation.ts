import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";

/**
 * Validation uses zod/mini: the classic API's chained methods keep all of zod in the bundle
 * (about 20 KiB gzip more). zod/mini ships no messages, so English ones are set here; every
 * module that validates imports this file for that effect.
 */
z.config(en());

export const nonEmptyString = () => z.string().check(z.minLength(1));

/** A whole number from a string variable or a JSON number, within bounds. */
export const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER, message?: string) =>
  z.pipe(z.coerce.number(), z.int().check(z.gte(min, message), z.lte(max)));
