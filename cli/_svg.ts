/**
 * `memkit pagemap --svg`: a plot, written by hand as SVG text, of each
 * present page's virtual page index (x) against its frame number (y), to
 * show how scattered a buffer's physical pages are.
 *
 * @module
 */

/** What the plot shows. */
export interface FramePlot {
  /** The title: the process and range. */
  title: string;
  /** The range's first address (the x axis counts pages from it). */
  start: bigint;
  /** How many pages the range has (the x axis's length). */
  pages: number;
  /** Each present page's index from `start`, in order. */
  index: ArrayLike<number>;
  /** Each present page's frame number (the same order). */
  frame: ArrayLike<number>;
}

const WIDTH = 800, HEIGHT = 500;
const LEFT = 110, RIGHT = 20, TOP = 40, BOTTOM = 60;

const escape = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/**
 * The SVG document of `plot`: one `<rect class="page">` per present page
 * (its `<title>` says its address and frame), axes with ticks and labels.
 *
 * @param plot The pages.
 * @returns The SVG text.
 *
 * @example Three pages, two scattered
 * ```ts
 * import { framePlotSvg } from "./_svg.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const svg = framePlotSvg({
 *   title: "self",
 *   start: 0x10000n,
 *   pages: 4,
 *   index: [0, 1, 3],
 *   frame: [0x1000, 0x1001, 0x8000],
 * });
 * assertEquals(svg.match(/<rect class="page"/g)?.length, 3);
 * ```
 */
export function framePlotSvg(plot: FramePlot): string {
  const n = plot.index.length;
  if (plot.frame.length !== n) {
    throw new RangeError(
      `Cannot plot "${n}" page indexes against "${plot.frame.length}" frames: expected as many`,
    );
  }
  let low = Infinity, high = -Infinity;
  for (let i = 0; i < n; i++) {
    low = Math.min(low, plot.frame[i]);
    high = Math.max(high, plot.frame[i]);
  }
  if (n === 0) low = high = 0;
  if (high === low) high = low + 1; // one frame: a scale all the same
  const w = WIDTH - LEFT - RIGHT, h = HEIGHT - TOP - BOTTOM;
  const pages = Math.max(plot.pages, 1);
  // A mark is a page wide (at least a pixel) and as tall as a frame (at least 2 pixels).
  const mw = Math.max(1, w / pages), mh = Math.max(2, h / (high - low + 1));
  const x = (index: number) => LEFT + index / pages * w;
  const y = (frame: number) => TOP + h - (frame - low) / (high - low) * (h - mh) - mh;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="monospace" font-size="12">`,
    `<title>${escape(plot.title)}</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT}" y="24" font-size="14">${escape(plot.title)}: ${n} present ` +
    `${n === 1 ? "page" : "pages"} of ${plot.pages}</text>`,
    // The axes.
    `<g stroke="black" fill="none">`,
    `<line x1="${LEFT}" y1="${TOP + h}" x2="${LEFT + w}" y2="${TOP + h}"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${TOP + h}"/>`,
    `</g>`,
  ];
  // Ticks: five on each axis.
  for (let t = 0; t <= 4; t++) {
    const index = Math.round(t / 4 * plot.pages);
    const tx = x(index).toFixed(1);
    out.push(
      `<line x1="${tx}" y1="${TOP + h}" x2="${tx}" y2="${TOP + h + 5}" stroke="black"/>`,
      `<text x="${tx}" y="${TOP + h + 18}" text-anchor="middle">${index}</text>`,
    );
    const frame = Math.round(low + t / 4 * (high - low));
    const ty = (y(frame) + mh / 2).toFixed(1);
    out.push(
      `<line x1="${LEFT - 5}" y1="${ty}" x2="${LEFT}" y2="${ty}" stroke="black"/>`,
      `<text x="${LEFT - 8}" y="${ty}" text-anchor="end" dominant-baseline="middle">` +
        `${hex(frame)}</text>`,
    );
  }
  out.push(
    `<text x="${LEFT + w / 2}" y="${HEIGHT - 12}" text-anchor="middle">` +
      `virtual page (index from ${hex(plot.start)})</text>`,
    `<text x="16" y="${TOP + h / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 16 ${TOP + h / 2})">page frame number</text>`,
    `<g fill="steelblue">`,
  );
  const wText = mw.toFixed(2), hText = mh.toFixed(2);
  for (let i = 0; i < n; i++) {
    const index = plot.index[i], frame = plot.frame[i];
    out.push(
      `<rect class="page" x="${x(index).toFixed(2)}" y="${y(frame).toFixed(2)}" ` +
        `width="${wText}" height="${hText}"><title>page ${index}: frame ${hex(frame)}` +
        `</title></rect>`,
    );
  }
  out.push(`</g>`, `</svg>`, "");
  return out.join("\n");
}
