/**
 * The page flags and map counts of physical pages (`/proc/kpageflags`,
 * `/proc/kpagecount`), for the page frame numbers a {@linkcode Pagemap}
 * translates to.
 *
 * @module
 */

import { check } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { show } from "./_args.ts";
import { isTypedArray, TypedArrayPrototypeGetLength } from "./_primordials.ts";
import { requirePermissions } from "./permissions.ts";

/**
 * The named bits of `/proc/kpageflags` (include/uapi/linux/kernel-page-flags.h),
 * by bit number.
 *
 * @example A flag's bit number
 * ```ts
 * import { KPAGE_FLAG_NAMES } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(KPAGE_FLAG_NAMES.indexOf("SWAPBACKED"), 14);
 * ```
 */
export const KPAGE_FLAG_NAMES = [
  "LOCKED",
  "ERROR",
  "REFERENCED",
  "UPTODATE",
  "DIRTY",
  "LRU",
  "ACTIVE",
  "SLAB",
  "WRITEBACK",
  "RECLAIM",
  "BUDDY",
  "MMAP",
  "ANON",
  "SWAPCACHE",
  "SWAPBACKED",
  "COMPOUND_HEAD",
  "COMPOUND_TAIL",
  "HUGE",
  "UNEVICTABLE",
  "HWPOISON",
  "NOPAGE",
  "KSM",
  "THP",
  "OFFLINE",
  "ZERO_PAGE",
  "IDLE",
  "PGTABLE",
] as const;

/** A named page flag of {@linkcode KPAGE_FLAG_NAMES}. */
export type KPageFlagName = typeof KPAGE_FLAG_NAMES[number];

/**
 * The page flags of some PFNs, by column. Made by {@linkcode readKPageFlags}.
 *
 * `pfns` stays a `BigUint64Array` (the column handed to the native read);
 * frame numbers elsewhere are numbers (exact: PFNs are below 2^40).
 *
 * @example Testing and naming flags
 * ```ts
 * import { KPageFlagTable } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const f = new KPageFlagTable(new BigUint64Array([42n]), new BigUint64Array([(1n << 14n) | (1n << 11n)]));
 * assertEquals(f.has(0, "SWAPBACKED"), true);
 * assertEquals(f.names(0), ["MMAP", "SWAPBACKED"]);
 * ```
 */
export class KPageFlagTable {
  /** The PFNs asked for. */
  readonly pfns: BigUint64Array<ArrayBuffer>;
  /** The raw 64-bit flags of each. */
  readonly raw: BigUint64Array<ArrayBuffer>;

  /** Built by {@linkcode readKPageFlags}. */
  constructor(pfns: BigUint64Array<ArrayBuffer>, raw: BigUint64Array<ArrayBuffer>) {
    this.pfns = pfns;
    this.raw = raw;
  }

  /** The number of PFNs (physical pages). */
  get pages(): number {
    return this.raw.length;
  }

  /**
   * The number of PFNs, as {@linkcode KPageFlagTable.pages} gives it.
   *
   * @deprecated Use `pages`: a field named `length` counts bytes everywhere
   * else in memkit; removed in 1.0.0.
   */
  get length(): number {
    return this.pages;
  }

  /** Whether PFN number `i` has `flag`. */
  has(i: number, flag: KPageFlagName): boolean {
    const bit = KPAGE_FLAG_NAMES.indexOf(flag);
    if (bit < 0) throw new TypeError(`Cannot test the page flag "${show(flag)}": unknown`);
    return ((this.raw[i] >> BigInt(bit)) & 1n) === 1n;
  }

  /** The names of the flags set on PFN number `i`. */
  names(i: number): KPageFlagName[] {
    const v = this.raw[i];
    return KPAGE_FLAG_NAMES.filter((_, bit) => ((v >> BigInt(bit)) & 1n) === 1n);
  }
}

function toPfns(pfns: unknown): BigUint64Array<ArrayBuffer> {
  // A copy made from the engine's slots (a real BigUint64Array), else one
  // pass over the iterable; nothing of the caller's is read afterwards.
  if (isTypedArray(pfns, "BigUint64Array")) return new BigUint64Array(pfns as BigUint64Array);
  if (pfns === null || typeof pfns !== "object" || !(Symbol.iterator in pfns)) {
    throw new TypeError(
      "Cannot read page flags: expected PFNs as an array, typed array or iterable",
    );
  }
  const list = [...(pfns as Iterable<unknown>)];
  const out = new BigUint64Array(list.length);
  list.forEach((p, i) => {
    if (typeof p === "number" && Number.isSafeInteger(p) && p >= 0) out[i] = BigInt(p);
    else if (typeof p === "bigint" && p >= 0n && p < 1n << 55n) out[i] = p;
    else throw new TypeError(`Cannot use the PFN "${show(p)}": expected a non-negative integer`);
  });
  return out;
}

function readKpage(
  which: number,
  pfns: BigUint64Array<ArrayBuffer>,
  path: string,
): BigUint64Array<ArrayBuffer> {
  const n = TypedArrayPrototypeGetLength(pfns);
  const out = new BigUint64Array(n);
  if (n === 0) return out;
  check(lib().mk_kpage_read(which, pfns, BigInt(n), out), "read", {
    path,
    hints: {
      EACCES: "it is readable by root only (CAP_SYS_ADMIN)",
      EPERM: "it is readable by root only (CAP_SYS_ADMIN)",
      ERANGE: "a PFN is past the end of physical memory",
    },
  });
  return out;
}

/**
 * The page flags of physical pages (`/proc/kpageflags`), decoded into named
 * flags. Runs of consecutive PFNs are read with one `pread` each, all in one
 * native call.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/kpageflags`; the kernel lets
 * only root (CAP_SYS_ADMIN) read it.
 *
 * @param pfns Page frame numbers, e.g. from {@linkcode PagemapPages.frame}.
 * @returns The flags of each.
 * @throws {MemkitError} `EACCES` without privilege; `ERANGE` for a PFN past
 * the end of physical memory.
 *
 * @example The flags of a memfd page (shared memory)
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap,/proc/kpageflags (as root)
 * import { MemFd, Pagemap, readKPageFlags } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * using fd = MemFd.create("flags", { size: 4096 });
 * using m = fd.map();
 * m.bytes()[0] = 1;
 * using pm = Pagemap.open();
 * const pages = pm.read({ start: m.address, pages: 1 });
 * if (pages.pfnVisible) {
 *   const flags = readKPageFlags([pages.pfn(0)!]);
 *   assert(flags.has(0, "SWAPBACKED") && !flags.has(0, "ANON"));
 * }
 * ```
 */
export function readKPageFlags(
  pfns: Iterable<number | bigint> | BigUint64Array,
): KPageFlagTable {
  const list = toPfns(pfns);
  requirePermissions("kpageflags");
  return new KPageFlagTable(list, readKpage(MK.KPAGE_FLAGS, list, "/proc/kpageflags"));
}

/**
 * How many times each physical page is mapped (`/proc/kpagecount`).
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/kpagecount`; the kernel lets
 * only root (CAP_SYS_ADMIN) read it.
 *
 * @param pfns Page frame numbers.
 * @returns The map count of each.
 * @throws {MemkitError} `EACCES` without privilege.
 *
 * @example A memfd page mapped twice
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap,/proc/kpagecount (as root)
 * import { MemFd, Pagemap, readKPageCounts } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("count", { size: 4096 });
 * using a = fd.map();
 * using b = fd.map();
 * a.bytes()[0] = 1;
 * b.bytes()[1] = 1;
 * using pm = Pagemap.open();
 * const pages = pm.read({ start: a.address, pages: 1 });
 * if (pages.pfnVisible) assertEquals(readKPageCounts([pages.pfn(0)!])[0], 2);
 * ```
 */
export function readKPageCounts(
  pfns: Iterable<number | bigint> | BigUint64Array,
): Float64Array {
  const list = toPfns(pfns);
  requirePermissions("kpagecount");
  return Float64Array.from(readKpage(MK.KPAGE_COUNT, list, "/proc/kpagecount"), Number);
}

// ---- the names before 0.x: deprecated aliases, removed in 1.0.0 ----

/**
 * The former name of {@linkcode readKPageFlags}.
 *
 * @deprecated Renamed to {@linkcode readKPageFlags}: no two exports differ
 * only by case (`kpageflags`, `KPageFlags`); removed in 1.0.0.
 *
 * @example The same function as readKPageFlags
 * ```ts
 * import { kpageflags, readKPageFlags } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(kpageflags, readKPageFlags);
 * ```
 */
export const kpageflags: typeof readKPageFlags = readKPageFlags;

/**
 * The former name of {@linkcode readKPageCounts}.
 *
 * @deprecated Renamed to {@linkcode readKPageCounts}, beside
 * {@linkcode readKPageFlags}; removed in 1.0.0.
 *
 * @example The same function as readKPageCounts
 * ```ts
 * import { kpagecount, readKPageCounts } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(kpagecount, readKPageCounts);
 * ```
 */
export const kpagecount: typeof readKPageCounts = readKPageCounts;

/**
 * The former name of {@linkcode KPageFlagTable}.
 *
 * @deprecated Renamed to {@linkcode KPageFlagTable}: no two exports differ
 * only by case (`KPageFlags`, `kpageflags`); removed in 1.0.0.
 *
 * @example The same class as KPageFlagTable
 * ```ts
 * import { KPageFlags, KPageFlagTable } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(KPageFlags, KPageFlagTable);
 * ```
 */
export const KPageFlags: typeof KPageFlagTable = KPageFlagTable;
/**
 * The former name of {@linkcode KPageFlagTable}, as a type.
 *
 * @deprecated Renamed to {@linkcode KPageFlagTable}; removed in 1.0.0.
 */
export type KPageFlags = KPageFlagTable;

/**
 * The former name of {@linkcode KPAGE_FLAG_NAMES}.
 *
 * @deprecated Renamed to {@linkcode KPAGE_FLAG_NAMES}: no two exports differ
 * only by case (`KPAGE_FLAGS`, `KPageFlags`); removed in 1.0.0.
 *
 * @example The same list as KPAGE_FLAG_NAMES
 * ```ts
 * import { KPAGE_FLAG_NAMES, KPAGE_FLAGS } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(KPAGE_FLAGS, KPAGE_FLAG_NAMES);
 * ```
 */
export const KPAGE_FLAGS: typeof KPAGE_FLAG_NAMES = KPAGE_FLAG_NAMES;

/**
 * The former name of {@linkcode KPageFlagName}.
 *
 * @deprecated Renamed to {@linkcode KPageFlagName}: no two exports differ
 * only by case (`KPageFlag`, `kpageflags`); removed in 1.0.0.
 */
export type KPageFlag = KPageFlagName;
