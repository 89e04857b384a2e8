/**
 * The latency picture: one panel per host, the share of requests answered within a time (a CDF
 * on a log time axis), solid for the webhook, dashed for the do-nothing route, dotted for the
 * webhook with its consumer held back, a colour per concurrency; and a panel for the time from
 * POST to reply. Plain SVG, no dependencies.
 */

export interface Series {
  label: string;
  color: string;
  /** "dashed" for the do-nothing route, "dotted" for the webhook with its consumer held back. */
  dash?: "dashed" | "dotted";
  samples: number[];
}

export interface Panel {
  title: string;
  series: Series[];
}

const WIDTH = 460;
const HEIGHT = 300;
const MARGIN = { left: 50, right: 12, top: 34, bottom: 40 };

export const CONCURRENCY_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"];

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function panelSvg(panel: Panel, offsetX: number, minMs: number, maxMs: number): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const logMin = Math.log10(minMs);
  const logMax = Math.log10(maxMs);
  const x = (ms: number) =>
    MARGIN.left + ((Math.log10(Math.max(ms, minMs)) - logMin) / (logMax - logMin)) * plotW;
  // Percentiles on a "nines" scale, -log10(1 - p): p50, p90, p99 and p99.9 evenly apart.
  const nines = (share: number) => Math.min(3, -Math.log10(Math.max(1 - share, 1e-3)));
  const y = (share: number) => MARGIN.top + (1 - nines(share) / 3) * plotH;
  const parts: string[] = [`<g transform="translate(${offsetX},0)">`];
  parts.push(
    `<text x="${MARGIN.left}" y="20" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  for (let decade = Math.ceil(logMin); decade <= Math.floor(logMax); decade++) {
    const px = x(10 ** decade).toFixed(1);
    parts.push(
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotH}" stroke="#ddd"/>`,
      `<text x="${px}" y="${MARGIN.top + plotH + 14}" font-size="10" text-anchor="middle">${10 ** decade >= 1000 ? `${10 ** (decade - 3)} s` : `${10 ** decade} ms`}</text>`,
    );
  }
  for (const [share, label] of [
    [0, "p0"],
    [0.5, "p50"],
    [0.9, "p90"],
    [0.99, "p99"],
    [0.999, "p99.9"],
  ] as const) {
    const py = y(share).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotW}" y2="${py}" stroke="#eee"/>`,
      `<text x="${MARGIN.left - 4}" y="${py}" font-size="9" text-anchor="end" dominant-baseline="middle">${label}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" font-size="10" text-anchor="middle">latency (log scale)</text>`,
  );
  panel.series.forEach((series, index) => {
    const sorted = [...series.samples].sort((a, b) => a - b);
    if (sorted.length === 0) return;
    // Every point of the tail, 150 below p99: the picture stays small, the tail exact.
    const step = Math.max(1, Math.floor((sorted.length * 0.99) / 150));
    const points = sorted
      .map((ms, i) => ({ ms, share: (i + 1) / sorted.length, i }))
      .filter((point) => point.i % step === 0 || point.share >= 0.99)
      .map((point) => `${x(point.ms).toFixed(1)},${y(point.share).toFixed(1)}`);
    const dash = series.dash
      ? ` stroke-dasharray="${series.dash === "dashed" ? "5 3" : "1.5 2"}"`
      : "";
    parts.push(
      `<polyline fill="none" stroke="${series.color}" stroke-width="1.6"${dash} points="${points.join(" ")}"/>`,
    );
    const ly = MARGIN.top + 10 + index * 12;
    parts.push(
      `<line x1="${MARGIN.left + 6}" y1="${ly}" x2="${MARGIN.left + 24}" y2="${ly}" stroke="${series.color}" stroke-width="2"${dash}/>`,
      `<text x="${MARGIN.left + 28}" y="${ly}" font-size="9" dominant-baseline="middle">${escapeXml(series.label)}</text>`,
    );
  });
  parts.push("</g>");
  return parts.join("\n");
}

export function latencySvg(panels: Panel[], caption: string): string {
  const all = panels.flatMap((panel) => panel.series.flatMap((series) => series.samples));
  const positive = all.filter((ms) => ms > 0);
  const minMs = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...positive))));
  const maxMs = 10 ** Math.ceil(Math.log10(Math.max(...positive, 1)));
  const width = WIDTH * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEIGHT + 20}" viewBox="0 0 ${width} ${HEIGHT + 20}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((panel, index) => panelSvg(panel, index * WIDTH, minMs, maxMs)),
    `<text x="8" y="${HEIGHT + 14}" font-size="10" fill="#555">${escapeXml(caption)}</text>`,
    "</svg>",
    "",
  ].join("\n");
}
