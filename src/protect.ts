/**
 * Protection: `mprotect` on mappings or page ranges of them, and mappings
 * with guard pages.
 *
 * @module
 */

import { check } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { inRange, MAX_BYTES, roundUp } from "./_validate.ts";
import { MK } from "../ffi/symbols.ts";
import { readOptions } from "./_args.ts";
import { uncurryThis } from "./_primordials.ts";
import { type Access, accessOf, PROT, toAccess } from "./_access.ts";
import { findRegion } from "./_region.ts";
import { createMapping, Mapping } from "./mapping.ts";
import { findMapping } from "./maps.ts";

/** A page-aligned part of a mapping, for {@linkcode protect}. */
export interface MappingRange {
  /** The mapping. */
  mapping: Mapping;
  /** Where the range starts: a multiple of the page size. Default 0. */
  offset?: number;
  /** Its length: a multiple of the page size, or reaching the end. Default: to the end. */
  length?: number;
}

/**
 * Changes the protection of a mapping, or of a page-aligned range of it
 * (`mprotect`): `"none"`, `"r"`, `"rw"` or `"rx"`. Views the new protection
 * would make unsafe are dealt with first, as {@linkcode Mapping.protect}
 * explains: writable views are detached when write access goes, and
 * `"none"` is refused while read-only views live.
 *
 * The protection is this process's own: another process that maps the same
 * memfd keeps the access it mapped it with.
 *
 * Requires `--allow-ffi`.
 *
 * @param target A mapping, or `{ mapping, offset, length }`.
 * @param access The new protection.
 *
 * @example A guard page in the middle
 * ```ts
 * import { MemFd, protect } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("middle", { size: 3 * 4096 });
 * using m = fd.map();
 * protect({ mapping: m, offset: 4096, length: 4096 }, "none");
 * assertEquals([m.accessAt(0), m.accessAt(4096), m.accessAt(8192)], ["rw", "none", "rw"]);
 * protect(m, "r");
 * assertEquals(m.access, "r");
 * ```
 */
export function protect(target: Mapping | MappingRange, access: Access): void {
  // A brand check, not instanceof (which Symbol.hasInstance can answer), and
  // the range's fields read once, into memkit's own object.
  if (findRegion(target) !== undefined) return mappingProtect(target as Mapping, access);
  if (target === null || typeof target !== "object") {
    throw new TypeError("Cannot protect: expected a Mapping or { mapping, offset, length }");
  }
  const range = readOptions(target, "target", ["mapping", "offset", "length"] as const);
  if (findRegion(range.mapping) === undefined) {
    throw new TypeError("Cannot protect: expected a Mapping or { mapping, offset, length }");
  }
  mappingProtect(range.mapping as Mapping, access, {
    offset: range.offset as number | undefined,
    length: range.length as number | undefined,
  });
}

/** `Mapping.prototype.protect` as memkit defined it. */
const mappingProtect = uncurryThis(Mapping.prototype.protect);

/** Options of {@linkcode guarded}. */
export interface GuardedOptions {
  /** How many `PROT_NONE` pages on each side; default 1. */
  guardPages?: number;
  /** The access of the usable part: `"rw"` (default), `"r"` or `"none"`. */
  access?: Access;
}

/**
 * A new mapping of shared anonymous memory with `PROT_NONE` guard pages on
 * both sides: a native access just before its start or past its last page
 * faults at once instead of corrupting a neighbour. The usable part is
 * rounded up to whole pages (the guard after it starts at the next page
 * boundary), reads as zeros at first, and can be aliased and stitched like
 * a memfd's mapping. memkit's own views can never reach the guards.
 *
 * Requires `--allow-ffi`.
 *
 * @param length The usable length in bytes.
 * @param options The guard pages on each side and the access.
 * @returns The mapping of the usable part.
 *
 * @example A buffer between guard pages
 * ```ts
 * import { guarded } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using m = guarded(8192, { guardPages: 2 });
 * m.bytes()[8191] = 1; // the last usable byte; the next one is a guard page
 * assertEquals(m.length, 8192);
 * ```
 */
export function guarded(length: number, options?: GuardedOptions): Mapping {
  const opts = readOptions(options, "options", ["guardPages", "access"] as const);
  const len = inRange(length, "length", 1, MAX_BYTES);
  const guardPages = inRange(opts.guardPages ?? 1, "guardPages", 0, 2 ** 20);
  const access = toAccess(opts.access ?? "rw", ["none", "r", "rw"]);
  const page = pageSize();
  const span = roundUp(len, page);
  const guard = guardPages * page;
  const name = `guarded(${len}, ${guardPages} guard page${guardPages === 1 ? "" : "s"})`;
  const address = lib().mk_map_guarded(BigInt(span), BigInt(guard), PROT[access]);
  if (address < 0n) check(address, "map", { path: name });
  return createMapping({
    address,
    length: len,
    access,
    maxAccess: "rw",
    name,
    pieces: [{ source: {}, offset: 0, at: 0, length: span }],
    reserved: { address: address - BigInt(guard), span: span + 2 * guard },
  });
}

/** What {@linkcode protectionAt} finds at an address. */
export interface Protection {
  /** The start of the mapping (the kernel's VMA) holding the address. */
  start: bigint;
  /** The address after its last byte. */
  end: bigint;
  /** The protection as memkit names it, or `undefined` for one it does not (`"-w-"`, `"rwx"`). */
  access: Access | undefined;
  /** Readable. */
  read: boolean;
  /** Writable. */
  write: boolean;
  /** Executable. */
  exec: boolean;
  /** Shared (`MAP_SHARED`) rather than private. */
  shared: boolean;
  /** The permissions as `/proc/self/maps` prints them, e.g. `"r--s"`. */
  perms: string;
}

/**
 * The current protection of any address in this process, whoever mapped
 * it, as the kernel reports it (`PROCMAP_QUERY`, or `/proc/self/maps` where
 * the kernel lacks the ioctl); `null` where nothing is mapped.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/self/maps`.
 *
 * @param address Any address in this process.
 * @returns The protection of the mapping there, or `null`.
 *
 * @example The protection at an address
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/maps
 * import { guarded, protectionAt } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using g = guarded(4096);
 * assertEquals(protectionAt(g.address)?.access, "rw");
 * assertEquals(protectionAt(g.address - 1n)?.access, "none"); // the guard page
 * assertEquals(protectionAt(0n), null);
 * ```
 */
export function protectionAt(address: bigint | number): Protection | null {
  const entry = findMapping(address, "self");
  if (entry === null) return null;
  const { read, write, exec } = entry;
  const access = accessOf(
    (read ? MK.PROT_READ : 0) | (write ? MK.PROT_WRITE : 0) | (exec ? MK.PROT_EXEC : 0),
  );
  return {
    start: entry.start,
    end: entry.end,
    access,
    read,
    write,
    exec,
    shared: entry.shared,
    perms: entry.perms,
  };
}

// ---- the names before 0.x: deprecated aliases, removed in 1.0.0 ----

/**
 * The former name of {@linkcode protectionAt}.
 *
 * @deprecated Renamed to {@linkcode protectionAt}: no two exports differ
 * only by case (`protection`, `Protection`); removed in 1.0.0.
 *
 * @example The same function as protectionAt
 * ```ts
 * import { protection, protectionAt } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(protection, protectionAt);
 * ```
 */
export const protection: typeof protectionAt = protectionAt;
