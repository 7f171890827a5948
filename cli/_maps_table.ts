// The table of `memkit maps`, like pmap -X: from SmapsEntry objects
// (readSmaps, readMaps for --brief) or, the same lines, from the columns of
// readSmapsRows with each line made in C (mk_proc_smaps_format).

import { binarySize } from "./_bytes.ts";
import { didYouMean, UsageError } from "./_args.ts";
import { bold, dim } from "./_colors.ts";
import { SMAPS_COUNTERS } from "./_json_schemas.ts";
import { ERRNO } from "../ffi/errors.ts";
import { MK } from "../ffi/symbols.ts";
import type { MapsEntry, ProcessId, SmapsEntry } from "../src/maps.ts";
import { procSymbols } from "../src/_proc.ts";
import type { SmapsRows } from "../src/_smaps_rows.ts";
export type { SmapsRows };
import { CHUNK, type Output } from "./_out.ts";

/** A size in binary units, KiB and MiB as every memkit command writes them. */
const human = binarySize;

/** The width of a size column, at least. */
const WIDTH = 10;

/** How a table is printed: units, columns, and the header's command line. */
export interface TableOptions {
  /** Sizes as byte counts (`4096`) instead of binary units (`4 KiB`). */
  bytes?: boolean;
  /** The columns, in order (names of {@linkcode MAPS_COLUMNS}); default {@linkcode DEFAULT_COLUMNS}. */
  columns?: readonly string[];
  /** The header's text after the pid: the command line, or why it is not shown. */
  command?: string;
}

/** One column of the table. */
interface Column {
  /** Its heading. */
  header: string;
  /** `size`: a size in bytes, summed in the totals; `right`/`left`: text aligned so. */
  align: "size" | "right" | "left";
  /** Its width, at least (the last column is never padded). */
  width: number;
  /** Its text (`left`/`right`) or its value in bytes (`size`), of one mapping. */
  get(m: MapsEntry | SmapsEntry): string | number;
  /** Whether it needs smaps (a counter), not only maps. */
  smaps?: boolean;
}

const counter = (name: keyof SmapsEntry) => (m: MapsEntry | SmapsEntry): number =>
  ((m as Partial<SmapsEntry>)[name] as number | undefined) ?? 0;

const COLUMNS: Record<string, Column> = {
  address: { header: "Address", align: "right", width: 16, get: (m) => m.start.toString(16) },
  end: { header: "End", align: "right", width: 16, get: (m) => m.end.toString(16) },
  perm: { header: "Perm", align: "left", width: 4, get: (m) => m.perms },
  offset: {
    header: "Offset",
    align: "right",
    width: 8,
    get: (m) => m.offset.toString(16).padStart(8, "0"),
  },
  device: { header: "Device", align: "right", width: 6, get: (m) => m.device },
  inode: { header: "Inode", align: "right", width: 8, get: (m) => String(m.inode) },
  size: { header: "Size", align: "size", width: WIDTH, get: (m) => m.size },
  rss: { header: "Rss", align: "size", width: WIDTH, get: counter("rss"), smaps: true },
  pss: { header: "Pss", align: "size", width: WIDTH, get: counter("pss"), smaps: true },
  dirty: {
    header: "Dirty",
    align: "size",
    width: WIDTH,
    get: (m) => counter("privateDirty")(m) + counter("sharedDirty")(m),
    smaps: true,
  },
  anon: { header: "Anon", align: "size", width: WIDTH, get: counter("anonymous"), smaps: true },
  swap: { header: "Swap", align: "size", width: WIDTH, get: counter("swap"), smaps: true },
  locked: { header: "Locked", align: "size", width: WIDTH, get: counter("locked"), smaps: true },
};
// The other counters of smaps, by their JSON names (memkit.maps/1), headed by the kernel's.
for (const [camel, kernel] of SMAPS_COUNTERS) {
  if (["rss", "pss", "anonymous", "swap", "locked"].includes(camel)) continue;
  COLUMNS[camel] = {
    header: kernel,
    align: "size",
    width: Math.max(WIDTH, kernel.length),
    get: counter(camel as keyof SmapsEntry),
    smaps: true,
  };
}
COLUMNS.kind = { header: "Kind", align: "left", width: 9, get: (m) => m.kind };
COLUMNS.mapping = {
  header: "Mapping",
  align: "left",
  width: 0,
  get: (m) => m.deleted ? m.path + " (deleted)" : m.path,
};

/** The names `-o` takes, in the order the help lists them. */
export const MAPS_COLUMNS: readonly string[] = Object.keys(COLUMNS);

/** The columns of `memkit maps` without `-o`. */
export const DEFAULT_COLUMNS: readonly string[] = [
  "address",
  "perm",
  "offset",
  "device",
  "inode",
  "size",
  "rss",
  "pss",
  "dirty",
  "anon",
  "swap",
  "locked",
  "kind",
  "mapping",
];

/** The columns of `memkit maps --brief` without `-o`. */
export const BRIEF_COLUMNS: readonly string[] = DEFAULT_COLUMNS.filter((c) => !COLUMNS[c].smaps);

/**
 * The columns of `-o a,b,c`, as their names (case-insensitive; each once).
 *
 * @param text The list as typed.
 * @param brief Whether only maps is read (no counters).
 * @returns The names, in order.
 * @throws {TypeError} For an empty list, an unknown or repeated name (with a
 * did-you-mean), or a counter with `brief`.
 *
 * @example Sizes and paths only
 * ```ts
 * import { parseColumns } from "./_maps_table.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(parseColumns("Size,RSS,mapping", false), ["size", "rss", "mapping"]);
 * assertThrows(() => parseColumns("rsss", false), TypeError, "did you mean rss?");
 * ```
 */
export function parseColumns(text: string, brief: boolean): string[] {
  const names: string[] = [];
  const lower = new Map(MAPS_COLUMNS.map((c) => [c.toLowerCase(), c]));
  for (const typed of text.split(",")) {
    const name = lower.get(typed.trim().toLowerCase());
    if (name === undefined) {
      const guess = didYouMean(typed.trim(), MAPS_COLUMNS);
      throw new UsageError(
        `Unknown column "${typed}" for memkit maps -o` +
          (guess === undefined
            ? `: expected some of ${MAPS_COLUMNS.join(",")}`
            : `: did you mean ${guess}?`),
        "maps",
      );
    }
    if (names.includes(name)) {
      throw new UsageError(`Cannot show column "${typed}" twice`, "maps");
    }
    if (brief && COLUMNS[name].smaps) {
      throw new UsageError(
        `Cannot show column "${typed}" with --brief: it is a counter of /proc/<pid>/smaps`,
        "maps",
      );
    }
    names.push(name);
  }
  return names;
}

/** A table's columns and how its sizes are written. */
class Layout {
  readonly columns: Column[];
  readonly names: readonly string[];
  readonly #size: (n: number) => string;
  readonly #cache = new Map<number, string>();
  /** The size columns' width. */
  readonly width: number;
  /** The column where a totals row says `total`. */
  readonly labelAt: number;

  constructor(names: readonly string[], bytes: boolean, largest: number) {
    this.names = names;
    this.#size = bytes ? String : human;
    this.width = Math.max(WIDTH, this.#size(largest).length);
    this.columns = names.map((n) => {
      const c = COLUMNS[n];
      return c.align === "size" ? { ...c, width: Math.max(c.width, this.width) } : c;
    });
    const first = this.columns.findIndex((c) => c.align === "size");
    let at = -1;
    for (let i = 0; i < (first < 0 ? this.columns.length : first); i++) {
      if (this.columns[i].align !== "size") at = i;
    }
    if (at < 0) at = this.columns.findIndex((c) => c.align !== "size");
    this.labelAt = at;
  }

  /** `size(n)` right-aligned in a size column, made once per distinct value. */
  sizeCell(n: number): string {
    let text = this.#cache.get(n);
    if (text === undefined) this.#cache.set(n, text = this.#size(n).padStart(this.width));
    return text;
  }

  /** One line of `cells` (a size cell already padded), each padded to its column. */
  line(cells: readonly string[]): string {
    let text = "";
    const last = this.columns.length - 1;
    for (let i = 0; i <= last; i++) {
      const c = this.columns[i], v = cells[i];
      text += (i === 0 ? "" : " ") +
        (c.align === "right" || c.align === "size"
          ? v.padStart(c.width)
          : i === last
          ? v
          : v.padEnd(c.width));
    }
    return text;
  }

  header(): string {
    return this.line(this.columns.map((c) => c.header));
  }

  /** A totals row: `sums` (one per size column) under `label`, `kind` in the Kind column. */
  totals(label: string, sums: readonly number[], kind?: string, count?: number): string {
    let k = 0;
    const cells = this.columns.map((c, i) => {
      if (c.align === "size") return this.sizeCell(sums[k++]);
      if (i === this.labelAt) return label;
      if (this.names[i] === "kind") return kind ?? "";
      if (this.names[i] === "mapping" && count !== undefined) {
        return `${count} mapping${count === 1 ? "" : "s"}`;
      }
      return "";
    });
    return this.line(cells).trimEnd();
  }
}

/** Sums of each size column, for all mappings and per kind (in the order kinds first appear). */
class Totals {
  readonly all: number[];
  readonly kinds = new Map<string, { sums: number[]; count: number }>();
  constructor(readonly n: number) {
    this.all = new Array(n).fill(0);
  }
  add(kind: string, values: ArrayLike<number>): void {
    let k = this.kinds.get(kind);
    if (k === undefined) this.kinds.set(kind, k = { sums: new Array(this.n).fill(0), count: 0 });
    k.count++;
    for (let i = 0; i < this.n; i++) {
      k.sums[i] += values[i];
      this.all[i] += values[i];
    }
  }
  largest(): number {
    return Math.max(0, ...this.all);
  }
  /** The totals rows: one per kind, then the grand total. */
  print(out: Output, layout: Layout): void {
    // The kind in its own column, "total" where the label goes; else the kind is the label.
    const apart = layout.names.includes("kind") && layout.names[layout.labelAt] !== "kind";
    for (const [kind, { sums, count }] of this.kinds) {
      out.line(layout.totals(apart ? "total" : kind, sums, kind, count));
    }
    out.line(layout.totals("total", this.all));
  }
}

function mapsHeader(
  out: Output,
  pid: ProcessId,
  count: number,
  layout: Layout,
  command: string | undefined,
): void {
  out.line(
    command === undefined
      ? bold(`${pid}:`) + dim(` ${count} mappings`)
      : bold(`${pid}:`) + ` ${command}` + dim(` (${count} mappings)`),
  );
  out.line(bold(layout.header()));
}

/** The strings of a table's cells (mk_proc_smaps_format): bytes, and where each starts. */
class Strings {
  bytes = new Uint8Array(1 << 16);
  length = 0;
  offsets = new Int32Array(256);
  count = 0;
  #encoder = new TextEncoder();

  /** Adds `text`; its index. */
  add(text: string): number {
    if (this.count + 2 > this.offsets.length) {
      const grown = new Int32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    if (this.length + 3 * text.length > this.bytes.length) {
      const grown = new Uint8Array(2 * (this.length + 3 * text.length));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.length += this.#encoder.encodeInto(text, this.bytes.subarray(this.length)).written;
    this.offsets[++this.count] = this.length;
    return this.count - 1;
  }
}

/**
 * printMaps of the same mappings with the default columns, from the columns
 * of readSmapsRows, each line made in C.
 */
export function printRows(
  out: Output,
  pid: ProcessId,
  table: SmapsRows,
  options: TableOptions = {},
): void {
  const { count, rows, pathIds, paths, deleted, kinds } = table;
  const R = MK.SMAPS_ROW_SIZE, C = MK.SMAPS_CELLS;
  const symbols = procSymbols();
  const cells = new Int32Array(count * C);
  const grand = new Float64Array(7);
  // The distinct sizes (a few hundred in a real process): strings 0 to n - 1.
  let values = new Float64Array(4096);
  let n = Number(symbols.mk_proc_smaps_sizes(rows, count, cells, values, values.length, grand));
  if (n === -ERRNO.ENOSPC) {
    values = new Float64Array(7 * count);
    n = Number(symbols.mk_proc_smaps_sizes(rows, count, cells, values, values.length, grand));
  }
  if (n < 0) throw new RangeError(`Cannot gather the sizes of the maps table: ${n}`);
  // The totals per kind, from the same numbers in the same order as printMaps adds them.
  const totals = new Totals(7);
  const v = new Float64Array(7);
  for (let i = 0, r = 0; i < count; i++, r += R) {
    v[0] = rows[r + MK.SMAPS_ROW_END] - rows[r + MK.SMAPS_ROW_START];
    v[1] = rows[r + MK.SMAPS_ROW_RSS];
    v[2] = rows[r + MK.SMAPS_ROW_PSS];
    v[3] = rows[r + MK.SMAPS_ROW_PRIVATE_DIRTY] + rows[r + MK.SMAPS_ROW_SHARED_DIRTY];
    v[4] = rows[r + MK.SMAPS_ROW_ANONYMOUS];
    v[5] = rows[r + MK.SMAPS_ROW_SWAP];
    v[6] = rows[r + MK.SMAPS_ROW_LOCKED];
    totals.add(kinds[pathIds[i]], v);
  }
  const layout = new Layout(DEFAULT_COLUMNS, options.bytes ?? false, totals.largest());
  const strings = new Strings();
  for (let k = 0; k < n; k++) strings.add(layout.sizeCell(values[k]));
  const kindIds = new Map<string, number>();
  const pathCells = new Int32Array(paths.length).fill(-1);
  const kindCells = new Int32Array(paths.length);
  for (let i = 0, c = 0; i < count; i++, c += C) {
    const id = pathIds[i];
    let path = pathCells[id];
    if (path < 0) {
      const kind = kinds[id];
      let k = kindIds.get(kind);
      if (k === undefined) kindIds.set(kind, k = strings.add(kind.padEnd(9)));
      kindCells[id] = k;
      pathCells[id] = path = strings.add(deleted[id] ? paths[id] + " (deleted)" : paths[id]);
    }
    cells[c + MK.SMAPS_CELL_KIND] = kindCells[id];
    cells[c + MK.SMAPS_CELL_PATH] = path;
  }
  mapsHeader(out, pid, count, layout, options.command);
  const written = new BigUint64Array(1);
  let bytes = new Uint8Array(CHUNK);
  for (let done = 0; done < count;) {
    const lines = Number(
      symbols.mk_proc_smaps_format(
        rows.subarray(done * R),
        cells.subarray(done * C),
        count - done,
        strings.bytes,
        BigInt(strings.length),
        strings.offsets,
        strings.count,
        bytes,
        BigInt(bytes.length),
        written,
      ),
    );
    if (lines < 0) throw new RangeError(`Cannot format the maps table: ${lines}`);
    if (lines === 0) {
      bytes = new Uint8Array(bytes.length * 2); // a line longer than the buffer
      continue;
    }
    out.bytes(bytes.subarray(0, Number(written[0])));
    done += lines;
  }
  totals.print(out, layout);
}

/**
 * The table of `entries` (with the sizes of smaps when `sizes`), in the
 * columns of `options.columns` (by default all, or those of maps when not `sizes`).
 */
export function printMaps(
  out: Output,
  pid: ProcessId,
  entries: readonly (MapsEntry | SmapsEntry)[],
  sizes: boolean,
  options: TableOptions = {},
): void {
  const names = options.columns ?? (sizes ? DEFAULT_COLUMNS : BRIEF_COLUMNS);
  const columns = names.map((n) => COLUMNS[n]);
  const sized = columns.filter((c) => c.align === "size");
  const totals = new Totals(sized.length);
  const values = new Array<number>(sized.length);
  // Every cell first (the width of a size column depends on the largest total).
  const texts: (string | number)[][] = [];
  for (const m of entries) {
    const cells = columns.map((c) => c.get(m));
    let k = 0;
    for (const v of cells) if (typeof v === "number") values[k++] = v;
    totals.add(m.kind, values);
    texts.push(cells);
  }
  const layout = new Layout(names, options.bytes ?? false, totals.largest());
  mapsHeader(out, pid, entries.length, layout, options.command);
  for (const cells of texts) {
    out.line(layout.line(cells.map((v) => typeof v === "number" ? layout.sizeCell(v) : v)));
  }
  totals.print(out, layout);
}
