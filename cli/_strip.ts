/**
 * `memkit pagemap --strip`: a line of cells per mapping, one cell per N
 * pages, each cell a character for the state of its pages (absent, present,
 * swapped, file-backed, or a mix of them).
 *
 * @module
 */

import { binarySize } from "./_bytes.ts";
import { cyan, dim, green, yellow } from "./_colors.ts";

/** The pagemap bits a strip tells apart (the values of `PageBits`). */
export interface StripBits {
  /** The page is in memory. */
  present: number;
  /** The page is swapped out. */
  swapped: number;
  /** A file page or shared anonymous memory. */
  file: number;
}

/** Runs of present or swapped pages in address order, in columns (as `memkit pagemap` has them). */
export interface StripRuns {
  /** How many runs. */
  length: number;
  /** The address of each run's first page. */
  start: ArrayLike<number>;
  /** How many pages each run has. */
  pages: ArrayLike<number>;
  /** Each run's pagemap bits. */
  bits: ArrayLike<number>;
}

/** The characters of a strip's cells. */
export const STRIP_CHARS = {
  /** No page of the cell is in memory. */
  absent: ".",
  /** Every page present, anonymous (private). */
  present: "#",
  /** Every page present, a file page or shared memory. */
  file: "f",
  /** Every page swapped out. */
  swapped: "s",
  /** The pages differ. */
  mixed: "%",
} as const;

/**
 * How many pages a cell holds so that `pages` fit in `cells` cells: at least 1.
 *
 * @param pages The pages of the longest line.
 * @param cells The cells a line has room for.
 * @returns The pages per cell.
 *
 * @example 1000 pages in 100 cells
 * ```ts
 * import { pagesPerCell } from "./_strip.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(pagesPerCell(1000, 100), 10);
 * assertEquals(pagesPerCell(1001, 100), 11);
 * assertEquals(pagesPerCell(5, 100), 1);
 * ```
 */
export function pagesPerCell(pages: number, cells: number): number {
  return Math.max(1, Math.ceil(pages / Math.max(1, cells)));
}

/**
 * The cells of the pages from `start` (`pages` of them, `pageSize` bytes
 * each), `perCell` pages a cell; a page in no run is absent.
 *
 * @param runs The runs of present or swapped pages, in address order.
 * @param start The first page's address.
 * @param pages How many pages.
 * @param pageSize The page size in bytes.
 * @param perCell Pages per cell.
 * @param bits The bit values of the states.
 * @returns One character a cell (see {@linkcode STRIP_CHARS}), uncoloured.
 *
 * @example Pages 0 and 1 present, 3 file-backed, one page a cell
 * ```ts
 * import { stripCells } from "./_strip.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const bits = { present: 1, swapped: 2, file: 4 };
 * const runs = { length: 2, start: [0, 3 * 4096], pages: [2, 1], bits: [1, 5] };
 * assertEquals(stripCells(runs, 0, 5, 4096, 1, bits), "##.f.");
 * assertEquals(stripCells(runs, 0, 5, 4096, 2, bits), "#%.");
 * ```
 */
export function stripCells(
  runs: StripRuns,
  start: number,
  pages: number,
  pageSize: number,
  perCell: number,
  bits: StripBits,
): string {
  const cells = Math.ceil(pages / perCell);
  // Per cell: pages present (anonymous), present file-backed, swapped.
  const anon = new Float64Array(cells), file = new Float64Array(cells);
  const swapped = new Float64Array(cells);
  const end = start + pages * pageSize;
  // The first run that ends after `start` (runs are in address order).
  let lo = 0, hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs.start[mid] + runs.pages[mid] * pageSize <= start) lo = mid + 1;
    else hi = mid;
  }
  for (let r = lo; r < runs.length && runs.start[r] < end; r++) {
    const b = runs.bits[r];
    const into = (b & bits.swapped) !== 0
      ? swapped
      : (b & bits.present) === 0
      ? undefined
      : (b & bits.file) !== 0
      ? file
      : anon;
    if (into === undefined) continue;
    const first = Math.max(0, (runs.start[r] - start) / pageSize);
    const last = Math.min(pages, (runs.start[r] - start) / pageSize + runs.pages[r]);
    // Page index `first` up to `last` (exclusive), added cell by cell.
    for (let p = first; p < last;) {
      const cell = Math.floor(p / perCell);
      const upTo = Math.min(last, (cell + 1) * perCell);
      into[cell] += upTo - p;
      p = upTo;
    }
  }
  let out = "";
  for (let c = 0; c < cells; c++) {
    const size = Math.min(perCell, pages - c * perCell);
    const a = anon[c], f = file[c], s = swapped[c];
    out += a + f + s === 0
      ? STRIP_CHARS.absent
      : a === size
      ? STRIP_CHARS.present
      : f === size
      ? STRIP_CHARS.file
      : s === size
      ? STRIP_CHARS.swapped
      : STRIP_CHARS.mixed;
  }
  return out;
}

const paint: Record<string, (text: string) => string> = {
  [STRIP_CHARS.absent]: dim,
  [STRIP_CHARS.present]: green,
  [STRIP_CHARS.file]: cyan,
  [STRIP_CHARS.swapped]: yellow,
  [STRIP_CHARS.mixed]: (t) => t,
};

/**
 * The cells coloured, a colour for each state, when colour is on (a
 * terminal, no `NO_COLOR`, or `--color=always`); unchanged otherwise.
 *
 * @param cells Cells from {@linkcode stripCells}.
 * @returns The cells to print.
 *
 * @example Plain when colour is off
 * ```ts
 * import { colorCells } from "./_strip.ts";
 * import { setColorMode } from "./_colors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * setColorMode("never");
 * assertEquals(colorCells("##..f"), "##..f");
 * ```
 */
export function colorCells(cells: string): string {
  // One escape sequence per stretch of equal cells, not per cell.
  return cells.replace(/(.)\1*/g, (same) => (paint[same[0]] ?? String)(same));
}

/**
 * The legend under the strips: pages per cell and what each character means.
 *
 * @param perCell Pages per cell.
 * @param pageSize The page size in bytes.
 * @returns One line.
 *
 * @example One page a cell
 * ```ts
 * import { stripLegend } from "./_strip.ts";
 * import { assertMatch } from "@std/assert";
 *
 * assertMatch(stripLegend(1, 4096), /^1 page \(4 [kK]iB\) a cell/);
 * ```
 */
export function stripLegend(perCell: number, pageSize: number): string {
  // The units of the sizes beside the strips (@std/fmt/bytes, binary).
  const amount = binarySize(perCell * pageSize);
  const c = STRIP_CHARS;
  // Within 80 columns while N is below a million.
  return `${perCell} ${perCell === 1 ? "page" : "pages"} (${amount}) a cell: ` +
    `${c.absent} absent ${c.present} present ${c.file} file/shared ` +
    `${c.swapped} swapped ${c.mixed} mixed`;
}
