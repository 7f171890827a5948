/**
 * `Pagemap`: virtual to physical translation and per-page state from
 * `/proc/<pid>/pagemap` and `PAGEMAP_SCAN` range queries. The page flags
 * and map counts of physical pages are in `kpageflags.ts`.
 *
 * Results are columnar: typed arrays with one element per page, filled by
 * one native call however large the range, never an object per page.
 *
 * Page frame numbers are visible only to processes with `CAP_SYS_ADMIN`;
 * the kernel shows everyone else PFN 0 (Linux 4.2+). memkit says so
 * (`pfnVisible: false`) and refuses to translate to physical address 0.
 *
 * @module
 */

import { boolean, list as copyList, lookup, readOptions, show } from "./_args.ts";
import {
  ArrayBufferPrototypeGetByteLength,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  isTypedArray,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeGetLength,
  uncurryThis,
} from "./_primordials.ts";
import { check, ERRNO } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import {
  gateProc,
  hex,
  nativePid,
  noAddressSpace,
  procError,
  type ProcessId,
  toAddress,
} from "./_proc.ts";
import { isDetached } from "./_validate.ts";

const U64 = 1n << 64n;
const PFN_HIDDEN_WHY = "the kernel shows page frame numbers only to processes with " +
  "CAP_SYS_ADMIN and reports PFN 0 to others (Linux 4.2+); run as root, or grant the " +
  "capability (setcap cap_sys_admin+ep)";

/**
 * Bits of {@linkcode PagemapPages.flags}: one byte per page.
 *
 * @example Counting file-backed pages from the flags column
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap
 * import { MemFd, PageBits, Pagemap } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("bits", { size: 2 * 4096 });
 * using m = fd.map();
 * m.bytes()[0] = 1;
 * using pm = Pagemap.open();
 * const { flags } = pm.read({ start: m.address, pages: 2 });
 * assertEquals(flags.filter((f) => f & PageBits.FILE && f & PageBits.PRESENT).length, 1);
 * ```
 */
export const PageBits = {
  /** The page is in memory (bit 63 of the entry). */
  PRESENT: MK.PM_PRESENT,
  /** The page is swapped out (bit 62). */
  SWAPPED: MK.PM_SWAPPED,
  /** A file page or shared anonymous memory (bit 61). */
  FILE: MK.PM_FILE,
  /** Mapped by this process only (bit 56). */
  EXCLUSIVE: MK.PM_EXCLUSIVE,
  /** Soft-dirty: written since the soft-dirty bits were cleared (bit 55). */
  SOFT_DIRTY: MK.PM_SOFT_DIRTY,
  /** Write-protected by userfaultfd (bit 57). */
  UFFD_WP: MK.PM_UFFD_WP,
  /** A guard region installed with MADV_GUARD_INSTALL (bit 58; its marker is not SWAPPED). */
  GUARD: MK.PM_GUARD,
} as const;

const immutableGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "immutable")?.get;
const ArrayBufferPrototypeGetImmutable = immutableGetter
  ? uncurryThis(immutableGetter) as (b: unknown) => boolean
  : () => false;

/** Whether `b` is a non-shared ArrayBuffer, neither detached nor immutable. */
function writableBuffer(b: unknown): boolean {
  try {
    ArrayBufferPrototypeGetByteLength(b); // throws for a SharedArrayBuffer
  } catch {
    return false;
  }
  return !isDetached(b as ArrayBuffer) && !ArrayBufferPrototypeGetImmutable(b);
}

/**
 * Checks, right before the native call writes them, that the columns are
 * what they must be: the right types, `pages` long, and writable memory
 * (not detached, not immutable) — fields that JavaScript could have
 * replaced since the result was made.
 */
function checkColumns(
  cols: { raw: unknown; frame: unknown; flags: unknown },
  pages: number,
): void {
  // Kinds, lengths and buffers from the engine's slots: a `length` or
  // `buffer` property redefined on a column changes nothing.
  const ok = (a: unknown, kind: string) =>
    isTypedArray(a, kind) && TypedArrayPrototypeGetLength(a) === pages &&
    writableBuffer(TypedArrayPrototypeGetBuffer(a));
  if (
    !ok(cols.raw, "BigUint64Array") || !ok(cols.frame, "Float64Array") ||
    !ok(cols.flags, "Uint8Array")
  ) {
    throw new TypeError(
      `Cannot read into those columns: expected a BigUint64Array, a Float64Array and a ` +
        `Uint8Array of ${pages} elements each, writable`,
    );
  }
}

// Fresh columns of at least this many bytes are faulted in with one call
// before the read fills them (below it, a fault per page costs less).
const PREFAULT_BYTES = 64 * 1024;

/** Faults in a column about to be written, with one call when it is large. */
function prefault(column: BigUint64Array | Float64Array | Uint8Array): void {
  const bytes = TypedArrayPrototypeGetByteLength(column);
  if (bytes < PREFAULT_BYTES) return;
  const buffer = TypedArrayPrototypeGetBuffer(column) as ArrayBuffer;
  lib().mk_core_prefault(
    new Uint8Array(buffer, TypedArrayPrototypeGetByteOffset(column), bytes),
    BigInt(bytes),
  );
}

/**
 * New columns for `pages` pages, all three in one new ArrayBuffer (raw, then
 * frame, then flags: one allocation instead of three). Memory new to the
 * process is what makes fresh columns cost more than reused ones (V8 frees
 * old results only at its next collection): each column is faulted in with
 * one call right before it is written (a page fault a page costs 13 us on
 * this VM, against 0.7 us a page in bulk), and frame and flags only when
 * first read. The buffer is this result's alone: no later read writes it
 * unless the caller passes the result back as `into`.
 */
function freshColumns(pages: number): Columns {
  const buffer = new ArrayBuffer(pages * 17);
  return {
    raw: new BigUint64Array(buffer, 0, pages),
    frame: new Float64Array(buffer, pages * 8, pages),
    flags: new Uint8Array(buffer, pages * 16, pages),
  };
}

/** The three columns of a result. */
interface Columns {
  raw: BigUint64Array<ArrayBuffer>;
  frame: Float64Array<ArrayBuffer>;
  flags: Uint8Array<ArrayBuffer>;
}

const FRAME = 1;
const FLAGS = 2;

/** Marks a result made from fresh columns: frame and flags still to decode. */
let markLazy: (pages: PagemapPages) => void;

/**
 * The pagemap entries of a range of pages, by column: element `i` is the
 * page at `address + i * pageSize`. Made by {@linkcode Pagemap.read}. A new
 * result decodes `frame` and `flags` from `raw` when each is first read (a
 * read costs only the columns used), so a change to `raw` before then shows
 * in them.
 *
 * @example Columns, not objects
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap
 * import { MemFd, Pagemap } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("columns", { size: 3 * 4096 });
 * using m = fd.map();
 * m.bytes()[2 * 4096] = 1;
 * using pm = Pagemap.open();
 * const pages = pm.read({ start: m.address, pages: 3 });
 * assertEquals([pages.pages, pages.presentCount, pages.present(2)], [3, 1, true]);
 * assertEquals(pages.raw[2] >> 63n, 1n);
 * ```
 */
export class PagemapPages {
  /** The virtual address of the first page. */
  readonly address: bigint;
  /** The page size. */
  readonly pageSize: number;
  /** The raw 64-bit entries, as the kernel wrote them. */
  readonly raw: BigUint64Array<ArrayBuffer>;
  #raw: BigUint64Array<ArrayBuffer>;
  #frame: Float64Array<ArrayBuffer>;
  #flags: Uint8Array<ArrayBuffer>;
  /** The columns not decoded yet (FRAME, FLAGS): a fresh result decodes each when first read. */
  #pending: number;
  /** How many pages are present. */
  readonly presentCount: number;
  /** How many pages are swapped out. */
  readonly swappedCount: number;
  /**
   * Whether {@linkcode PagemapPages.frame} holds real PFNs: false without
   * CAP_SYS_ADMIN, when the kernel reports PFN 0 for every present page.
   */
  readonly pfnVisible: boolean;

  /**
   * Built by {@linkcode Pagemap.read}.
   *
   * @ignore
   */
  constructor(
    address: bigint,
    page: number,
    columns: {
      raw: BigUint64Array<ArrayBuffer>;
      frame: Float64Array<ArrayBuffer>;
      flags: Uint8Array<ArrayBuffer>;
    },
    counts: { present: number; swapped: number; pfnVisible: boolean },
  ) {
    this.address = address;
    this.pageSize = page;
    this.raw = this.#raw = columns.raw;
    this.#frame = columns.frame;
    this.#flags = columns.flags;
    this.#pending = 0;
    this.presentCount = counts.present;
    this.swappedCount = counts.swapped;
    this.pfnVisible = counts.pfnVisible;
  }

  static {
    markLazy = (pages) => {
      pages.#pending = FRAME | FLAGS;
    };
  }

  /** Decodes a pending column from the raw entries (once, when first read). */
  #decode(which: number): void {
    this.#pending &= ~which;
    const raw = this.#raw;
    const column = which === FRAME ? this.#frame : this.#flags;
    const n = TypedArrayPrototypeGetLength(raw);
    // All three share one buffer: detached (transferred), they all read empty.
    if (n === 0 || TypedArrayPrototypeGetLength(column) !== n) return;
    prefault(column);
    lib().mk_pagemap_decode(
      raw,
      BigInt(n),
      which === FRAME ? column : null,
      which === FLAGS ? column as Uint8Array : null,
    );
  }

  /**
   * Per page: the PFN of a present page, the swap offset of a swapped one,
   * else 0. PFNs read 0 when {@linkcode PagemapPages.pfnVisible} is false.
   * Decoded from {@linkcode PagemapPages.raw} when first read.
   */
  get frame(): Float64Array<ArrayBuffer> {
    if (this.#pending & FRAME) this.#decode(FRAME);
    return this.#frame;
  }

  /**
   * Per page: {@linkcode PageBits} set on it. Decoded from
   * {@linkcode PagemapPages.raw} when first read.
   */
  get flags(): Uint8Array<ArrayBuffer> {
    if (this.#pending & FLAGS) this.#decode(FLAGS);
    return this.#flags;
  }

  /** The number of pages. */
  get pages(): number {
    return TypedArrayPrototypeGetLength(this.#flags);
  }

  /**
   * The number of pages, as {@linkcode PagemapPages.pages} gives it.
   *
   * @deprecated Use `pages`: a field named `length` counts bytes everywhere
   * else in memkit; removed in 1.0.0.
   */
  get length(): number {
    return this.pages;
  }

  /** The address after the last page (exclusive): `address + pages * pageSize`, as a bigint. */
  get end(): bigint {
    return this.address + BigInt(this.pages) * BigInt(this.pageSize);
  }

  /** Whether page `i` is present in memory. */
  present(i: number): boolean {
    return (this.flags[i] & MK.PM_PRESENT) !== 0;
  }

  /** Whether page `i` is swapped out. */
  swapped(i: number): boolean {
    return (this.flags[i] & MK.PM_SWAPPED) !== 0;
  }

  /** Whether page `i` is a file page or shared anonymous memory. */
  file(i: number): boolean {
    return (this.flags[i] & MK.PM_FILE) !== 0;
  }

  /** Whether page `i` is mapped by this process only. */
  exclusive(i: number): boolean {
    return (this.flags[i] & MK.PM_EXCLUSIVE) !== 0;
  }

  /** Whether page `i` is soft-dirty. */
  softDirty(i: number): boolean {
    return (this.flags[i] & MK.PM_SOFT_DIRTY) !== 0;
  }

  /** Whether page `i` is write-protected by userfaultfd. */
  uffdWp(i: number): boolean {
    return (this.flags[i] & MK.PM_UFFD_WP) !== 0;
  }

  /** Whether page `i` is in a guard region. */
  guard(i: number): boolean {
    return (this.flags[i] & MK.PM_GUARD) !== 0;
  }

  /**
   * The PFN of page `i`, or `null` when it is not present.
   *
   * @throws {Deno.errors.PermissionDenied} When PFNs are hidden (no CAP_SYS_ADMIN).
   */
  pfn(i: number): number | null {
    if (!this.present(i)) return null;
    if (!this.pfnVisible) {
      throw new Deno.errors.PermissionDenied(
        `Cannot read the PFN of ${
          hex(this.address + BigInt(i * this.pageSize))
        }: ${PFN_HIDDEN_WHY}`,
      );
    }
    return this.frame[i];
  }

  /** The swap type (bits 0-4) of page `i`, or `null` when it is not swapped out. */
  swapType(i: number): number | null {
    return this.swapped(i) ? Number(this.raw[i] & 0x1fn) : null;
  }

  /** The swap offset (bits 5-54) of page `i`, or `null` when it is not swapped out. */
  swapOffset(i: number): number | null {
    return this.swapped(i) ? this.frame[i] : null;
  }
}

/** A `PAGEMAP_SCAN` page category. */
export type PageCategory =
  | "present"
  | "written"
  | "file"
  | "swapped"
  | "pfn-zero"
  | "huge"
  | "soft-dirty"
  | "guard"
  | "wp-allowed";

const CATEGORY_BITS: Readonly<Record<PageCategory, number>> = {
  "wp-allowed": MK.PAGE_IS_WPALLOWED,
  written: MK.PAGE_IS_WRITTEN,
  file: MK.PAGE_IS_FILE,
  present: MK.PAGE_IS_PRESENT,
  swapped: MK.PAGE_IS_SWAPPED,
  "pfn-zero": MK.PAGE_IS_PFNZERO,
  huge: MK.PAGE_IS_HUGE,
  "soft-dirty": MK.PAGE_IS_SOFT_DIRTY,
  guard: MK.PAGE_IS_GUARD,
};

function categoryMask(list: unknown, what: string): number {
  if (list === undefined) return 0;
  if (!Array.isArray(list)) {
    throw new TypeError(`Cannot use ${what}: expected an array of categories`);
  }
  const names = copyList(list, what);
  let mask = 0;
  for (let i = 0; i < names.length; i++) {
    const c = names[i];
    // Own keys only: "constructor" or "toString" name no category.
    const bit = lookup(CATEGORY_BITS, c);
    if (bit === undefined) {
      throw new TypeError(
        `Cannot use the page category "${show(c)}": expected one of ${
          Object.keys(CATEGORY_BITS).join(", ")
        }`,
      );
    }
    mask |= bit;
  }
  return mask;
}

const namesCache = new Map<number, readonly PageCategory[]>();
function categoryNames(mask: number): readonly PageCategory[] {
  let names = namesCache.get(mask);
  if (names === undefined) {
    names = Object.freeze(
      (Object.entries(CATEGORY_BITS) as [PageCategory, number][])
        .filter(([, bit]) => (mask & bit) !== 0).map(([name]) => name),
    );
    namesCache.set(mask, names);
  }
  return names;
}

/** A range of pages that share the reported categories. */
export interface ScanRegion {
  /** The first address. */
  start: bigint;
  /** The address after the last page. */
  end: bigint;
  /** The number of pages. */
  pages: number;
  /** The categories reported for every page of it (those asked for in `report`). */
  categories: readonly PageCategory[];
}

/** Options of {@linkcode Pagemap.scan}. */
export interface ScanOptions {
  /** Categories every reported page has. */
  require?: PageCategory[];
  /** Categories no reported page has. */
  exclude?: PageCategory[];
  /** Categories of which a reported page has at least one. */
  anyOf?: PageCategory[];
  /**
   * The categories reported per region (adjacent pages merge when these
   * agree). Default: those named above plus `present`, `swapped`, `file`.
   */
  report?: PageCategory[];
  /**
   * Compute from pagemap entries instead of the ioctl (what memkit does by
   * itself where the kernel lacks `PAGEMAP_SCAN`): no `pfn-zero`, `huge` or
   * `wp-allowed`, and pages outside any mapping count as empty pages.
   */
  fallback?: boolean;
}

/** Options of {@linkcode Pagemap.read}. */
export interface ReadOptions {
  /** An earlier result of the same length to reuse; it is overwritten. */
  into?: PagemapPages;
}

/**
 * A page-aligned range of virtual addresses, in one of three forms: `{ start,
 * end }` (end exclusive), `{ start, length }` (bytes, a page multiple) or
 * `{ start, pages }` (a count of pages). {@linkcode Pagemap.read} and
 * {@linkcode Pagemap.scan} take the same ranges; an object that gives two of
 * `end`, `length` and `pages` is a TypeError.
 */
export type AddressRange =
  | { start: bigint | number; end: bigint | number; length?: never; pages?: never }
  | { start: bigint | number; length: bigint | number; end?: never; pages?: never }
  | { start: bigint | number; pages: number; end?: never; length?: never };

const RANGE_FORMS = "{ start, end }, { start, length } or { start, pages }";

/**
 * Reads an {@linkcode AddressRange} once (each field one time, into
 * primitives) and checks it: `[start, end)`, page-aligned, `start <= end <=
 * 2^64`. TypeError or RangeError before any system call.
 */
function addressRange(range: unknown, page: number, op: string): { start: bigint; end: bigint } {
  if (typeof range !== "object" || range === null) {
    throw new TypeError(`Cannot ${op}: expected a range ${RANGE_FORMS}`);
  }
  const area = readOptions(range, "range", ["start", "end", "length", "pages"] as const);
  const given = (area.end !== undefined ? 1 : 0) + (area.length !== undefined ? 1 : 0) +
    (area.pages !== undefined ? 1 : 0);
  if (given !== 1) {
    throw new TypeError(
      `Cannot ${op}: expected a range ${RANGE_FORMS}, ` +
        (given === 0 ? "not a start alone" : "with one of end, length and pages"),
    );
  }
  const start = toAddress(area.start, "start");
  const size = BigInt(page);
  let end: bigint;
  if (area.end !== undefined) {
    end = area.end === U64 ? U64 : toAddress(area.end, "end");
  } else if (area.length !== undefined) {
    end = start + toAddress(area.length, "length");
  } else {
    const pages = area.pages;
    if (typeof pages !== "number") {
      throw new TypeError(`Cannot use pages "${show(pages)}": expected a number of pages`);
    }
    if (!Number.isSafeInteger(pages) || pages < 0) {
      throw new RangeError(`Cannot use pages "${show(pages)}": expected an integer from 0`);
    }
    end = start + BigInt(pages) * size;
  }
  if (end > U64) {
    throw new RangeError(
      `Cannot ${op} ${hex(start)}-${hex(end)}: past the end of the address space (2^64)`,
    );
  }
  const unaligned = start % size !== 0n
    ? `start "${hex(start)}"`
    : end % size === 0n
    ? undefined
    : area.length !== undefined
    ? `length "${show(area.length)}"`
    : `end "${hex(end)}"`;
  if (unaligned !== undefined) {
    throw new RangeError(`Cannot ${op} at ${unaligned}: not a multiple of the page size (${page})`);
  }
  if (end < start) {
    throw new RangeError(`Cannot ${op} ${hex(start)}-${hex(end)}: the end is below the start`);
  }
  return { start, end };
}

// The backstop for a pagemap dropped unclosed: its descriptor is closed
// once the object is collected.
const closer = new FinalizationRegistry<number>((fd) => {
  lib().mk_core_close(fd);
});

/**
 * An open `/proc/<pid>/pagemap`: per-page state of a process's virtual
 * memory, and translation of its addresses to physical ones.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/pagemap` (in the
 * form `pid` is given: `/proc/self/pagemap` for `"self"`; for this
 * process's own pid either form).
 *
 * @example Pages are present once touched
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap
 * import { MemFd, Pagemap } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("pm", { size: 4 * 4096 });
 * using m = fd.map();
 * m.bytes()[4096] = 1;
 * using pm = Pagemap.open("self");
 * const pages = pm.read({ start: m.address, pages: 4 });
 * assertEquals([0, 1, 2, 3].map((i) => pages.present(i)), [false, true, false, false]);
 * assertEquals(pages.file(1), true); // a memfd page is shared memory
 * ```
 */
export class Pagemap {
  #fd: number;
  readonly #pid: ProcessId;
  readonly #page: number;
  readonly #capable: boolean;
  #summary = new BigUint64Array(3);
  #one = {
    raw: new BigUint64Array(1),
    frame: new Float64Array(1),
    flags: new Uint8Array(1),
  };
  #vec = new BigUint64Array(3 * 1024);
  #walkEnd = new BigUint64Array(1);
  #masks = new BigUint64Array(4);

  /** @ignore */
  private constructor(fd: number, pid: ProcessId, capable: boolean) {
    this.#fd = fd;
    this.#pid = pid;
    this.#page = pageSize();
    this.#capable = capable;
    FinalizationRegistryPrototypeRegister(closer, this, fd, this);
  }

  /**
   * Opens a process's pagemap.
   *
   * @param pid A pid, or `"self"` (the default).
   * @returns The open pagemap; close it (or `using`).
   * @throws {Deno.errors.NotFound} When no such process exists.
   * @throws {Deno.errors.NotCapable} When the read permission is missing.
   * @throws {MemkitError} When the kernel refuses (`EACCES`: another user's process).
   *
   * @example Open this process's pagemap
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { Pagemap } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using pm = Pagemap.open("self");
   * assertEquals(pm.pid, "self");
   * ```
   */
  static open(pid: ProcessId = "self"): Pagemap {
    const native = nativePid(pid);
    gateProc("pagemap", pid);
    const ret = lib().mk_pagemap_open(native);
    if (ret < 0n) throw procError(Number(-ret), pid, "pagemap", "open");
    const capable = lib().mk_proc_cap_sys_admin() === 1n;
    return new Pagemap(Number(ret), pid, capable);
  }

  /** The process, as given to {@linkcode Pagemap.open}. */
  get pid(): ProcessId {
    return this.#pid;
  }

  /** Whether {@linkcode Pagemap.close} was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Whether this process had CAP_SYS_ADMIN when it opened the pagemap, so
   * that the kernel shows it PFNs.
   */
  get pfnVisible(): boolean {
    return this.#capable;
  }

  #alive(op: string): number {
    if (this.#fd < 0) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the pagemap of ${this.#pid} is closed`);
    }
    return this.#fd;
  }

  /** Throws NotFound when the process has no address space left (exited): its pagemap reads empty. */
  #checkAddressSpace(fd: number, op: string): void {
    const one = this.#one;
    const got = lib().mk_pagemap_read(fd, 0n, 1n, one.raw, one.frame, one.flags, null);
    if (got === 0n) throw noAddressSpace(this.#pid, "pagemap", op);
  }

  /** Reads entries into the given columns; returns the pages read, after the end checks. */
  #readInto(
    op: string,
    address: bigint,
    pages: number,
    cols: { raw: BigUint64Array; frame: Float64Array; flags: Uint8Array },
    rawOnly = false,
  ): number {
    const fd = this.#alive(op);
    checkColumns(cols, pages);
    if (rawOnly) prefault(cols.raw);
    const ret = lib().mk_pagemap_read(
      fd,
      address,
      BigInt(pages),
      cols.raw,
      rawOnly ? null : cols.frame,
      rawOnly ? null : cols.flags,
      this.#summary,
    );
    const got = check(ret, op, { path: `/proc/${this.#pid}/pagemap` });
    if (got < pages) {
      // Short: the end of the address space, or a process that has exited
      // (whose pagemap reads empty everywhere).
      this.#checkAddressSpace(fd, op);
      const end = address + BigInt(got) * BigInt(this.#page);
      throw new RangeError(
        `Cannot ${op} ${pages} pages at ${hex(address)}: past the end of the address space ` +
          `(the pagemap of ${this.#pid} ends at ${hex(end)})`,
      );
    }
    return got;
  }

  #checkRange(address: unknown, pages: unknown, op: string): bigint {
    const addr = toAddress(address);
    if (addr % BigInt(this.#page) !== 0n) {
      throw new RangeError(
        `Cannot ${op} at address "${hex(addr)}": not a multiple of the page size (${this.#page})`,
      );
    }
    if (typeof pages !== "number" || !Number.isInteger(pages) || pages < 1 || pages > 2 ** 40) {
      throw new RangeError(`Cannot ${op} "${show(pages)}" pages: expected 1 to 2^40`);
    }
    if (addr + BigInt(pages) * BigInt(this.#page) > U64) {
      throw new RangeError(
        `Cannot ${op} ${pages} pages at ${hex(addr)}: past the end of the address space (2^64)`,
      );
    }
    return addr;
  }

  /**
   * Reads the pagemap entries of a range of pages, decoded into columns,
   * with one native call however many pages.
   *
   * @param range The pages: page-aligned `{ start, pages }`, `{ start, end }`
   * or `{ start, length }` (bytes), at least one page (an
   * {@linkcode AddressRange}, as {@linkcode Pagemap.scan} takes).
   * @param options `into`: an earlier result of the same length whose columns
   * are overwritten instead of allocating new ones (for repeated reads of
   * large ranges: fresh columns are a new buffer of 4.25 MiB per GiB read,
   * memory the process must fault in, and the collector free).
   * @returns The columns.
   * @throws {TypeError} For a range that is not one of the three forms (two
   * of `end`, `length` and `pages` included).
   * @throws {RangeError} For an unaligned bound, no pages or more than 2^40,
   * or a range past the end of the address space.
   * @throws {Deno.errors.NotFound} When the process has exited.
   *
   * @example A mapping nobody touched is absent
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, Pagemap } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("untouched", { size: 64 * 4096 });
   * using m = fd.map();
   * using pm = Pagemap.open();
   * assertEquals(pm.read({ start: m.address, pages: 64 }).presentCount, 0);
   * assertEquals(pm.read({ start: m.address, end: m.end }).pages, 64);
   * ```
   */
  read(range: AddressRange, options?: ReadOptions): PagemapPages;
  /**
   * Reads the pagemap entries of `pages` pages from `address`: the form
   * before ranges, kept until 1.0.0.
   *
   * @deprecated Use read({ start, pages }), the range {@linkcode Pagemap.scan} takes too.
   *
   * @param address A page-aligned virtual address.
   * @param pages How many pages (at least 1).
   * @param options `into`: an earlier result of the same length to overwrite.
   * @returns The columns.
   *
   * @example The positional form reads the same pages
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, Pagemap } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("positional", { size: 2 * 4096 });
   * using m = fd.map();
   * m.bytes()[0] = 1;
   * using pm = Pagemap.open();
   * assertEquals([...pm.read(m.address, 2).flags], [...pm.read({ start: m.address, pages: 2 }).flags]);
   * ```
   */
  read(address: bigint | number, pages: number, options?: ReadOptions): PagemapPages;
  read(
    first: AddressRange | bigint | number,
    second?: number | ReadOptions,
    third?: ReadOptions,
  ): PagemapPages {
    let address: unknown, pages: unknown, options: unknown;
    if (typeof first === "object" && first !== null) {
      const { start, end } = addressRange(first, this.#page, "read the pagemap");
      address = start;
      // 2^40 pages at most (checked below): the quotient is exact as a number.
      const n = (end - start) / BigInt(this.#page);
      pages = n > 1n << 41n ? Infinity : Number(n);
      options = second;
    } else {
      address = first;
      pages = second;
      options = third;
    }
    const opts = readOptions(options, "options", ["into"] as const);
    const addr = this.#checkRange(address, pages, "read the pagemap");
    const count = pages as number;
    const into = opts.into;
    if (into !== undefined && !(into instanceof PagemapPages)) {
      throw new TypeError("Cannot read into that: expected a PagemapPages from read()");
    }
    // The columns read once each; whether they fit is decided from the
    // engine's slots (checkColumns), never from `length` properties.
    const given = into === undefined
      ? undefined
      : readOptions(into, "into", ["raw", "frame", "flags"] as const);
    const fits = given !== undefined && isTypedArray(given.flags, "Uint8Array") &&
      TypedArrayPrototypeGetLength(given.flags) === count;
    const cols = fits ? given as Columns : freshColumns(count);
    this.#readInto("read the pagemap", addr, count, cols, !fits);
    const [present, swapped, zeroPfn] = this.#summary;
    const pfnVisible = present > 0n ? zeroPfn === 0n : this.#capable;
    const result = new PagemapPages(addr, this.#page, cols, {
      present: Number(present),
      swapped: Number(swapped),
      pfnVisible,
    });
    // Fresh columns: frame and flags are decoded from raw when first read.
    if (!fits) markLazy(result);
    return result;
  }

  /**
   * The physical address behind a virtual address, or `null` when its page
   * is not present (never touched, or swapped out).
   *
   * The answer is a snapshot, never a handle: the kernel may move the page
   * to another frame at any time, and locking it does not stop that.
   * {@linkcode lock} (`mlock2`) keeps a page resident (never swapped out or
   * reclaimed) but not in place: compaction migrates locked pages while
   * `vm.compact_unevictable_allowed` is 1 (the default), and so do NUMA
   * balancing and memory hot-unplug. Read the address again before each
   * use, and never hand it to a device or to another process.
   *
   * @param address Any virtual address.
   * @returns The physical address, as a bigint.
   * @throws {Deno.errors.PermissionDenied} When the kernel hides PFNs
   * (without CAP_SYS_ADMIN), instead of returning address 0.
   *
   * @example The physical address of a byte (as root)
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, Pagemap } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("translate", { size: 4096 });
   * using m = fd.map();
   * m.bytes()[0] = 1;
   * using pm = Pagemap.open();
   * if (pm.pfnVisible) assertEquals((pm.translate(m.address + 5n)! & 0xfffn), 5n);
   * // Without CAP_SYS_ADMIN the kernel hides frame numbers: an error, not address 0.
   * else assertThrows(() => pm.translate(m.address), Deno.errors.PermissionDenied);
   * ```
   */
  translate(address: bigint | number): bigint | null {
    const addr = toAddress(address);
    const page = BigInt(this.#page);
    const base = addr - addr % page;
    this.#readInto("translate", base, 1, this.#one);
    if ((this.#one.flags[0] & MK.PM_PRESENT) === 0) return null;
    const pfn = this.#one.raw[0] & ((1n << 55n) - 1n);
    if (pfn === 0n) {
      throw new Deno.errors.PermissionDenied(`Cannot translate ${hex(addr)}: ${PFN_HIDDEN_WHY}`);
    }
    return pfn * page + addr % page;
  }

  /**
   * Finds the page ranges of `range` by category with the `PAGEMAP_SCAN`
   * ioctl (Linux 6.7+), or from pagemap entries where the kernel lacks it.
   * Adjacent pages with the same reported categories form one region.
   *
   * @param range Page-aligned `{ start, end }`, `{ start, length }` (bytes) or
   * `{ start, pages }`: an {@linkcode AddressRange}, as {@linkcode Pagemap.read} takes.
   * @param options What a page must have, must not have, and what to report.
   * @returns The regions in address order.
   *
   * @example The touched pages of a mapping
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, Pagemap } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("scan", { size: 8 * 4096 });
   * using m = fd.map();
   * m.bytes().fill(1, 2 * 4096, 5 * 4096);
   * using pm = Pagemap.open();
   * const regions = pm.scan({ start: m.address, length: m.length }, { require: ["present"] });
   * assertEquals(regions.map((r) => [r.start - m.address, r.pages]), [[2n * 4096n, 3]]);
   * assertEquals(regions[0].categories, ["file", "present"]);
   * ```
   */
  scan(range: AddressRange, options?: ScanOptions): ScanRegion[] {
    const bounds = addressRange(range, this.#page, "scan");
    const opts = readOptions(
      options,
      "options",
      ["require", "exclude", "anyOf", "report", "fallback"] as const,
    );
    const start = bounds.start;
    const page = BigInt(this.#page);
    let end = bounds.end;
    if (end === U64) end -= page; // the last page is never user memory
    const require = categoryMask(opts.require, "require");
    const exclude = categoryMask(opts.exclude, "exclude");
    const anyOf = categoryMask(opts.anyOf, "anyOf");
    if (require & exclude) {
      throw new RangeError("Cannot scan: a category is both required and excluded");
    }
    const report = opts.report === undefined
      ? require | exclude | anyOf | MK.PAGE_IS_PRESENT | MK.PAGE_IS_SWAPPED | MK.PAGE_IS_FILE
      : categoryMask(opts.report, "report");
    if (report === 0) throw new RangeError("Cannot scan: report at least one category");
    const fd = this.#alive("scan the pagemap");
    const masks = this.#masks;
    masks[0] = BigInt(require | exclude);
    masks[1] = BigInt(exclude);
    masks[2] = BigInt(anyOf);
    masks[3] = BigInt(report);
    const flags = opts.fallback === undefined
      ? 0
      : boolean(opts.fallback, "fallback")
      ? MK.SCAN_FALLBACK
      : 0;
    const out: ScanRegion[] = [];
    let at = start;
    const vec = this.#vec;
    const cap = vec.length / 3;
    while (at < end) {
      const ret = lib().mk_pagemap_scan(fd, at, end, masks, flags, vec, BigInt(cap), this.#walkEnd);
      // A process that has exited: kernels answer ESRCH (6.18) or ENOENT, or
      // read as empty (below); each is the NotFound that read() raises.
      if (ret === -BigInt(ERRNO.ESRCH) || ret === -BigInt(ERRNO.ENOENT)) {
        throw noAddressSpace(this.#pid, "pagemap", "scan the pagemap");
      }
      const n = check(ret, "scan the pagemap", {
        path: `/proc/${this.#pid}/pagemap`,
        hints: {
          EOPNOTSUPP: "pfn-zero, huge and wp-allowed need the PAGEMAP_SCAN ioctl (Linux 6.7+)",
        },
      });
      for (let i = 0; i < n; i++) {
        const s = vec[3 * i], e = vec[3 * i + 1], c = Number(vec[3 * i + 2]);
        const last = out[out.length - 1];
        const names = categoryNames(c);
        if (last !== undefined && last.end === s && last.categories === names) {
          last.end = e;
          last.pages = Number((e - last.start) / page);
        } else {
          out.push({ start: s, end: e, pages: Number((e - s) / page), categories: names });
        }
      }
      const walked = this.#walkEnd[0];
      if (walked <= at || n < cap) break; // the walk is complete (or ended at the top)
      at = walked;
    }
    if (out.length === 0) {
      // Nothing found, or nothing to find: a process that has exited reads
      // as empty everywhere, which read() and translate() report as NotFound.
      this.#checkAddressSpace(fd, "scan the pagemap");
    }
    return out;
  }

  /** Closes the pagemap. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    // Unregister first: the backstop must never close this descriptor
    // number again, after it was reused.
    FinalizationRegistryPrototypeUnregister(closer, this);
    const fd = this.#fd;
    this.#fd = -1;
    lib().mk_core_close(fd);
  }

  /** Closes the pagemap (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
