// The table of `memkit maps`: a process's smaps parsed by the native side
// into columns (mk_proc_smaps_rows), one row of doubles per mapping and its
// path, without a SmapsEntry per mapping. Text not exactly as the kernel
// prints it is parsed by readSmaps instead (undefined here), so the table
// always says what readSmaps says.

import { ERRNO } from "../ffi/errors.ts";
import { MK } from "../ffi/symbols.ts";
import { DELETED, kindOf } from "./_maps_kind.ts";
import type { MappingKind } from "./maps.ts";
import { type ProcessId, procSymbols, readLines, readProc } from "./_proc.ts";

/** The mappings of a process, in columns. */
export interface SmapsRows {
  /** How many mappings. */
  count: number;
  /** `count` rows of MK.SMAPS_ROW_SIZE doubles (the MK.SMAPS_ROW_* columns). */
  rows: Float64Array;
  /** Each mapping's path: an index into `paths`, `deleted` and `kinds`. */
  pathIds: Int32Array;
  /** The paths as SmapsEntry.path has them (without " (deleted)"), each once a run of them. */
  paths: string[];
  /** Whether the kernel marked each path " (deleted)". */
  deleted: boolean[];
  /** The kind of each path's mappings. */
  kinds: MappingKind[];
}

const ROW = MK.SMAPS_ROW_SIZE;
const PATH = MK.SMAPS_ROW_PATH, PATH_LENGTH = MK.SMAPS_ROW_PATH_LENGTH;
const INODE = MK.SMAPS_ROW_INODE;
/** For a slice of a file: a BOM there is text, not a mark to drop. */
const sliceDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Parses chunks into rows; `bad` once a line is not as the kernel prints it. */
class RowParser {
  count = 0;
  bad = false;
  rows = new Float64Array(1024 * ROW);
  pathIds = new Int32Array(1024);
  paths: string[] = [];
  deleted: boolean[] = [];
  kinds: MappingKind[] = [];
  // The last path's bytes: a file's mappings come together.
  #last = new Uint8Array(256);
  #lastLength = -1;
  #lastInode = -1;

  feed(t: Uint8Array, b: number, e: number): void {
    if (this.bad) return;
    const text = b === 0 ? t.subarray(0, e) : t.subarray(b, e);
    // A header line is at least 18 bytes ("0-0 ---p 0 00:00 0").
    const need = this.count + Math.ceil(text.length / 16) + 1;
    if (need * ROW > this.rows.length) {
      const grown = new Float64Array(Math.max(need, 2 * this.rows.length / ROW) * ROW);
      grown.set(this.rows.subarray(0, this.count * ROW));
      this.rows = grown;
      const ids = new Int32Array(grown.length / ROW);
      ids.set(this.pathIds.subarray(0, this.count));
      this.pathIds = ids;
    }
    const before = this.count;
    const ret = procSymbols().mk_proc_smaps_rows(
      text,
      BigInt(text.length),
      this.rows,
      before,
      this.rows.length / ROW,
    );
    if (ret < 0n) {
      if (ret !== -BigInt(ERRNO.EBADMSG)) throw new RangeError(`Cannot parse smaps rows: ${ret}`);
      this.bad = true;
      return;
    }
    this.count = Number(ret);
    const rows = this.rows;
    const ids = this.pathIds;
    for (let r = before; r < this.count; r++) ids[r] = this.#path(text, rows, r * ROW);
  }

  /** The path id of the row at `at`, from its bytes in text. */
  #path(text: Uint8Array, rows: Float64Array, at: number): number {
    const p = rows[at + PATH], n = rows[at + PATH_LENGTH], inode = rows[at + INODE];
    const i = this.paths.length;
    if (n === this.#lastLength && inode === this.#lastInode && i > 0) {
      let same = true;
      for (let k = 0; k < n && same; k++) same = text[p + k] === this.#last[k];
      if (same) return i - 1;
    }
    let path = "";
    let deleted = false;
    if (n > 0) {
      path = sliceDecoder.decode(text.subarray(p, p + n));
      if (path.endsWith(DELETED)) {
        deleted = true;
        path = path.slice(0, -DELETED.length);
      }
      if (path.includes("\\012")) path = path.replaceAll("\\012", "\n");
    }
    this.paths.push(path);
    this.deleted.push(deleted);
    this.kinds.push(kindOf(path, inode, deleted).kind);
    if (n > this.#last.length) this.#last = new Uint8Array(n * 2);
    this.#last.set(text.subarray(p, p + n));
    this.#lastLength = n;
    this.#lastInode = inode;
    return i;
  }

  finish(): void {}
}

/**
 * Reads `/proc/<pid>/smaps` into columns, gated and failing as readSmaps
 * does; undefined when a line is not exactly as the kernel prints it (then
 * readSmaps parses it in full).
 */
export function readSmapsRows(pid: ProcessId): SmapsRows | undefined {
  const parser = new RowParser();
  readProc(pid, "smaps", parser);
  if (parser.bad) return undefined;
  const { count, rows, pathIds, paths, deleted, kinds } = parser;
  return { count, rows, pathIds, paths, deleted, kinds };
}

/**
 * Parses smaps text as readSmapsRows does (for tests: the CLI reads /proc),
 * read `chunk` bytes at a time so that lines and blocks cross chunks.
 */
export function parseSmapsRows(bytes: Uint8Array, chunk = 1 << 16): SmapsRows | undefined {
  const parser = new RowParser();
  let at = 0;
  readLines(
    (into) => {
      const n = Math.min(into.length, bytes.length - at);
      into.set(bytes.subarray(at, at + n));
      at += n;
      return n;
    },
    (buf, b, e) => parser.feed(buf, b, e),
    new Uint8Array(chunk),
  );
  if (parser.bad) return undefined;
  const { count, rows, pathIds, paths, deleted, kinds } = parser;
  return { count, rows, pathIds, paths, deleted, kinds };
}
