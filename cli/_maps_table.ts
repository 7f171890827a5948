// The table of `memkit maps`, like pmap -X: from SmapsEntry objects
// (readSmaps, readMaps for --brief) or, the same lines, from the columns of
// readSmapsRows with each line made in C (mk_proc_smaps_format).

import { format as formatBytes } from "@std/fmt/bytes";
import { bold, dim } from "./_colors.ts";
import { ERRNO } from "../ffi/errors.ts";
import { MK } from "../ffi/symbols.ts";
import type { MapsEntry, ProcessId, SmapsEntry } from "../src/maps.ts";
import { procSymbols } from "../src/_proc.ts";
import type { SmapsRows } from "../src/_smaps_rows.ts";
export type { SmapsRows };
import { CHUNK, type Output } from "./_out.ts";

const size = (n: number): string => formatBytes(n, { binary: true });

/** The width of a size column. */
const WIDTH = 10;
const sizeColumns = new Map<number, string>();

/** `size(n)` right-aligned in a column, made once per distinct value. */
function sizeColumn(n: number): string {
  let text = sizeColumns.get(n);
  if (text === undefined) sizeColumns.set(n, text = size(n).padStart(WIDTH));
  return text;
}

function mapsHeader(out: Output, pid: ProcessId, count: number, sizes: boolean): void {
  const cols = sizes ? ["Size", "Rss", "Pss", "Dirty", "Anon", "Swap", "Locked"] : ["Size"];
  out.line(bold(`${pid}:`) + dim(` ${count} mappings`));
  out.line(
    bold(
      `${"Address".padStart(16)} Perm ${"Offset".padStart(8)} Device ${"Inode".padStart(8)} ` +
        cols.map((c) => c.padStart(WIDTH)).join(" ") + ` ${"Kind".padEnd(9)} Mapping`,
    ),
  );
}

function mapsTotals(out: Output, totals: number[]): void {
  out.line(
    `${"".padStart(16)} ${"".padEnd(4)} ${"".padStart(8)} ${"".padStart(6)} ${
      "total".padStart(8)
    } ` +
      totals.map((v) => size(v).padStart(WIDTH)).join(" "),
  );
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

/** printMaps of the same mappings, from the columns of readSmapsRows, each line made in C. */
export function printRows(out: Output, pid: ProcessId, table: SmapsRows): void {
  const { count, rows, pathIds, paths, deleted, kinds } = table;
  const R = MK.SMAPS_ROW_SIZE, C = MK.SMAPS_CELLS;
  const symbols = procSymbols();
  const cells = new Int32Array(count * C);
  const totals = new Float64Array(7);
  // The distinct sizes (a few hundred in a real process): strings 0 to n - 1.
  let values = new Float64Array(4096);
  let n = Number(symbols.mk_proc_smaps_sizes(rows, count, cells, values, values.length, totals));
  if (n === -ERRNO.ENOSPC) {
    values = new Float64Array(7 * count);
    n = Number(symbols.mk_proc_smaps_sizes(rows, count, cells, values, values.length, totals));
  }
  if (n < 0) throw new RangeError(`Cannot gather the sizes of the maps table: ${n}`);
  const strings = new Strings();
  for (let k = 0; k < n; k++) strings.add(sizeColumn(values[k]));
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
  mapsHeader(out, pid, count, true);
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
  mapsTotals(out, [...totals]);
}

/** The table of `entries` (with the sizes of smaps when `sizes`). */
export function printMaps(
  out: Output,
  pid: ProcessId,
  entries: readonly (MapsEntry | SmapsEntry)[],
  sizes: boolean,
): void {
  mapsHeader(out, pid, entries.length, sizes);
  let mapped = 0, rss = 0, pss = 0, dirty = 0, anon = 0, swap = 0, locked = 0;
  for (const m of entries) {
    mapped += m.size;
    let columns = sizeColumn(m.size);
    if (sizes) {
      const s = m as Partial<SmapsEntry>;
      const d = (s.privateDirty ?? 0) + (s.sharedDirty ?? 0);
      rss += s.rss ?? 0;
      pss += s.pss ?? 0;
      dirty += d;
      anon += s.anonymous ?? 0;
      swap += s.swap ?? 0;
      locked += s.locked ?? 0;
      columns += ` ${sizeColumn(s.rss ?? 0)} ${sizeColumn(s.pss ?? 0)} ${sizeColumn(d)} ${
        sizeColumn(s.anonymous ?? 0)
      } ${sizeColumn(s.swap ?? 0)} ${sizeColumn(s.locked ?? 0)}`;
    }
    const path = m.deleted ? m.path + " (deleted)" : m.path;
    out.line(
      `${m.start.toString(16).padStart(16)} ${m.perms} ${m.offset.toString(16).padStart(8, "0")} ` +
        `${m.device.padStart(6)} ${String(m.inode).padStart(8)} ${columns} ${
          m.kind.padEnd(9)
        } ${path}`,
    );
  }
  mapsTotals(out, sizes ? [mapped, rss, pss, dirty, anon, swap, locked] : [mapped]);
}
