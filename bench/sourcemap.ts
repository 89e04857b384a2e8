/**
 * Just enough of a source-map reader for the benchmark: which original file a position of the
 * bundle comes from, and what package or project folder that file belongs to.
 * https://sourcemaps.info/spec.html
 */
import { readFileSync } from "node:fs";

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Decodes one segment of `mappings` (base64 VLQ) into its fields. */
function decodeSegment(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = BASE64.indexOf(char);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

export interface Segment {
  column: number;
  source: number;
}

export interface SourceMap {
  sources: string[];
  /** Per generated line, its segments in column order. */
  lines: Segment[][];
}

export function readSourceMap(path: string): SourceMap {
  const raw = JSON.parse(readFileSync(path, "utf8")) as { sources: string[]; mappings: string };
  let source = 0;
  const lines = raw.mappings.split(";").map((line) => {
    let column = 0;
    return line
      .split(",")
      .filter(Boolean)
      .map((segment) => {
        const [columnDelta = 0, sourceDelta] = decodeSegment(segment);
        column += columnDelta;
        // Source indexes carry over from line to line; the other fields are not needed here.
        if (sourceDelta !== undefined) source += sourceDelta;
        return { column, source };
      });
  });
  return { sources: raw.sources, lines };
}

/** The original file at a zero-based line and column of the bundle. */
export function sourceAt(map: SourceMap, line: number, column: number): string | undefined {
  const segments = map.lines[line] ?? [];
  let found: Segment | undefined;
  for (const segment of segments) {
    if (segment.column > column) break;
    found = segment;
  }
  return found ? map.sources[found.source] : undefined;
}

/** `zod`, `hono`, `drizzle-orm/sqlite-core`, `src/webhooks/`: where a file's bytes belong. */
export function originOf(source: string): string {
  const modules = source.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const parts = source.slice(modules + "node_modules/".length).split("/");
    // drizzle-orm's own maps point one folder above the package, at its TypeScript sources.
    if (parts[0] === "src" || parts[0] === "drizzle-orm") {
      const rest = parts.slice(1);
      return rest[0]?.endsWith("-core") ? `drizzle-orm/${rest[0]}` : "drizzle-orm";
    }
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? source);
  }
  if (/(?:^|\/)bench\//.test(source)) return "bench/ (instrumentation)";
  const src = /(?:^|\/)src\/(?:([^/]+)\/)?[^/]+$/.exec(source);
  if (src) return src[1] ? `src/${src[1]}/` : "src/";
  return "other";
}
