/**
 * Stitching and aliasing: chunks of shared memory placed side by side at new
 * addresses, so that memory scattered over several memfds (or several places
 * of one) reads as one contiguous view, with no copy.
 *
 * @module
 */

import { bytesOf, list, readOptions, type Snapshot } from "./_args.ts";
import { safeArray, TypedArrayPrototypeGetByteLength } from "./_primordials.ts";
import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { inRange, MAX_BYTES, roundUp } from "./_validate.ts";
import { type Access, PROT, toAccess } from "./_access.ts";
import { findRegion, type Piece, type Region, regionAt } from "./_region.ts";
import { createMapping, type Mapping } from "./mapping.ts";
import { type MemFd, memfdState } from "./memfd.ts";
import { queryPermission } from "./permissions.ts";

/** One chunk of a {@linkcode stitch}: a page-aligned window of a memfd or of a mapping. */
export interface Chunk {
  /** Where the bytes live: a memfd, or a shared mapping memkit made (even a stitched one). */
  source: MemFd | Mapping;
  /** Where the chunk starts in the source: a multiple of the page size. Default 0. */
  offset?: number;
  /** The chunk's length: a multiple of the page size. Default: to the end of the source. */
  length?: number;
}

/** Options of {@linkcode stitch} and {@linkcode alias}. */
export interface StitchOptions {
  /** `"rw"` (default) or `"r"`. */
  access?: "r" | "rw";
}

/**
 * A chunk after validation, in memkit's own terms: a memfd's descriptor, or
 * a region (a mapping's memory). Nothing here reads a public getter, which
 * user code could patch between the checks and the system call.
 */
type Placed =
  | { fd: number; regions: Map<object, number>; offset: number; length: number; name: string }
  | { region: Region; offset: number; length: number; name: string };

const MAX_CHUNKS = 2 ** 32 - 1;
/** Each 32-bit half of MK_STITCH_ADDRESS, the first word of an address-kind chunk. */
const ADDRESS_WORD = Number(MK.STITCH_ADDRESS & 0xffffffffn);
if (BigInt(ADDRESS_WORD) * 0x100000001n !== MK.STITCH_ADDRESS) {
  throw new Error("MK_STITCH_ADDRESS must have two equal 32-bit halves");
}

/** Checks every chunk before anything is mapped; errors name the chunk's index. */
function validate(given: unknown, access: Access): Placed[] {
  if (!Array.isArray(given)) {
    throw new TypeError("Cannot stitch: expected an array of chunks { source, offset, length }");
  }
  // Every descriptor is copied (one read of each field) before anything is
  // checked: a getter that resizes a memfd or closes a mapping runs now,
  // before the sizes are read, never between a check and the system call.
  const given2 = list(given, "the chunks");
  if (given2.length === 0) throw new RangeError("Cannot stitch: the list of chunks is empty");
  if (given2.length > MAX_CHUNKS) {
    throw new RangeError(`Cannot stitch ${given2.length} chunks: at most ${MAX_CHUNKS}`);
  }
  const chunks = safeArray<Snapshot<"source" | "offset" | "length"> | null>();
  for (let i = 0; i < given2.length; i++) {
    const chunk = given2[i];
    // Not an object: refused in order below, so the first bad chunk is named.
    chunks[i] = chunk === null || typeof chunk !== "object"
      ? null
      : readOptions(chunk, `chunk ${i}`, ["source", "offset", "length"] as const);
  }
  const page = pageSize();
  const sizes = new Map<number, number>();
  const out: Placed[] = new Array(chunks.length);
  let total = 0;
  for (let i = 0; i < chunks.length; i++) {
    const at = `chunk ${i}`;
    const chunk = chunks[i];
    if (chunk === null) {
      throw new TypeError(`Cannot stitch ${at}: expected { source, offset, length }`);
    }
    const source = chunk.source;
    const rawOffset = chunk.offset;
    const rawLength = chunk.length;
    const memfd = memfdState(source);
    const region = memfd ? undefined : findRegion(source);
    let size: number;
    let name: string;
    if (memfd) {
      name = `memfd:${memfd.name}`;
      if (memfd.fd < 0) {
        throw new Deno.errors.BadResource(`Cannot stitch ${at}: memfd "${memfd.name}" is closed`);
      }
      size = sizes.get(memfd.fd) ??
        check(lib().mk_core_fd_size(memfd.fd), "get the size of memfd", { path: name });
      sizes.set(memfd.fd, size);
    } else if (region) {
      name = region.name;
      if (!region.backed) {
        throw new Deno.errors.BadResource(
          `Cannot stitch ${at}: the mapping of "${name}" is closed`,
        );
      }
      if (region.view % BigInt(page) !== 0n) {
        throw new RangeError(
          `Cannot stitch ${at}: the mapping of "${name}" does not start on a page boundary`,
        );
      }
      if (region.device) throw new TypeError(deviceRefusal(at, name));
      if (access === "rw" && region.maxAccess !== "rw") {
        throw new MemkitError(ERRNO.EACCES, "stitch", {
          path: name,
          hint: `${at} comes from a source opened for access "${region.maxAccess}" only; ` +
            'stitch with access "r"',
        });
      }
      size = region.length;
    } else {
      throw new TypeError(`Cannot stitch ${at}: its source must be a MemFd or a Mapping`);
    }
    const limit = roundUp(size, page);
    const offset = inRange(rawOffset ?? 0, `the offset of ${at}`, 0, MAX_BYTES);
    const length = rawLength === undefined
      ? limit - offset
      : inRange(rawLength, `the length of ${at}`, 1, MAX_BYTES);
    if (offset % page !== 0 || length % page !== 0) {
      throw new RangeError(
        `Cannot stitch ${at}: offset ${offset} and length ${length} must be multiples of ` +
          `the page size (${page})`,
      );
    }
    if (length <= 0) {
      throw new RangeError(
        `Cannot stitch ${at}: offset ${offset} is at or past the end of its source ` +
          `(${size} bytes), so the chunk is empty`,
      );
    }
    if (offset + length > limit) {
      throw new RangeError(
        `Cannot stitch ${at}: bytes ${offset} to ${offset + length} are beyond its source's ` +
          `size (${size}); a view past the end would fault (SIGBUS)`,
      );
    }
    total += length;
    if (total > MAX_BYTES) {
      throw new RangeError(`Cannot stitch ${at}: the total passes ${MAX_BYTES} bytes`);
    }
    out[i] = memfd
      ? { fd: memfd.fd, regions: memfd.regions, offset, length, name }
      : { region: region!, offset, length, name };
  }
  return out;
}

/**
 * The source windows behind [offset, offset + length) of a region's view,
 * each with where it starts in the view. A window's last page counts whole:
 * the source backs it up to its end (a memfd of 5000 bytes maps 2 pages).
 */
function piecesOf(region: Region, offset: number, length: number): [Piece, number][] {
  const page = pageSize();
  const out: [Piece, number][] = [];
  for (const p of region.pieces) {
    const start = Math.max(offset, p.at);
    const end = Math.min(offset + length, p.at + roundUp(p.length, page));
    if (start >= end) continue;
    out.push([{ ...p, offset: p.offset + (start - p.at), at: start, length: end - start }, start]);
  }
  return out;
}

/** The chunks as the native call takes them: three 64-bit words each, as 32-bit halves. */
class NativeChunks {
  words = new Uint32Array(96);
  /** For each native chunk, the index of the caller's chunk it came from. */
  from = new Uint32Array(16);
  count = 0;

  #grow(): void {
    const words = new Uint32Array(this.words.length * 2);
    words.set(this.words);
    this.words = words;
    const from = new Uint32Array(this.from.length * 2);
    from.set(this.from);
    this.from = from;
  }

  push(first: number, second: number | bigint, length: number, index: number): void {
    if (this.count === this.from.length) this.#grow();
    const w = this.count * 6;
    this.words[w] = first;
    this.words[w + 1] = first === ADDRESS_WORD ? ADDRESS_WORD : 0;
    if (typeof second === "bigint") {
      this.words[w + 2] = Number(second & 0xffffffffn);
      this.words[w + 3] = Number(second >> 32n);
    } else {
      this.words[w + 2] = second >>> 0;
      this.words[w + 3] = Math.floor(second / 2 ** 32);
    }
    this.words[w + 4] = length >>> 0;
    this.words[w + 5] = Math.floor(length / 2 ** 32);
    this.from[this.count++] = index;
  }

  /** Adds `length` bytes to the last chunk. */
  extend(length: number): void {
    const w = (this.count - 1) * 6;
    const total = this.words[w + 4] + this.words[w + 5] * 2 ** 32 + length;
    this.words[w + 4] = total >>> 0;
    this.words[w + 5] = Math.floor(total / 2 ** 32);
  }
}

function describe(chunks: Placed[]): string {
  const names = [...new Set(chunks.map((c) => c.name))];
  const shown = names.slice(0, 3);
  const more = names.length > 3 ? `, +${names.length - 3} more` : "";
  return `stitch of ${chunks.length} chunk${chunks.length === 1 ? "" : "s"} (${
    shown.join(", ")
  }${more})`;
}

function mapCountLimit(): string {
  const desc = { name: "read", path: "/proc/sys/vm/max_map_count" } as const;
  if (queryPermission(desc) === "granted") {
    const limit = lib().mk_map_max_count();
    if (limit >= 0n) return `vm.max_map_count is ${limit}`;
  }
  return "the limit is vm.max_map_count (65530 by default; grant " +
    "--allow-read=/proc/sys/vm/max_map_count to have it read)";
}

/** Places the validated chunks in one native call; returns the mapping. */
function place(
  chunks: Placed[],
  access: "r" | "rw",
  name: string,
  length: number,
  operation = "stitch",
): Mapping {
  const page = pageSize();
  const native = new NativeChunks();
  const pieces: Piece[] = [];
  let keyed = false;
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i];
    const { offset, length } = chunk;
    if ("fd" in chunk) {
      // The native side merges neighbours that continue each other in one descriptor.
      native.push(chunk.fd, offset, length, i);
      pieces.push({ source: chunk.regions, owner: chunk.regions, offset, at, length });
      at += length;
      continue;
    }
    // A mapping's chunk: one native chunk per source window it covers (the
    // kernel aliases a window from its start address on, whatever follows).
    const region = chunk.region;
    keyed ||= region.pkeyRights !== undefined;
    let last: Piece | undefined;
    for (const [p, start] of piecesOf(region, offset, length)) {
      const address = region.view + BigInt(start);
      const placed: Piece = { ...p, at: at + (start - offset) };
      if (p.paged) {
        for (let o = 0; o < p.length; o += page) {
          native.push(ADDRESS_WORD, address + BigInt(o), page, i);
        }
      } else if (
        last && !last.paged && last.source === p.source && last.offset + last.length === p.offset &&
        last.at + last.length === placed.at
      ) {
        native.extend(p.length);
      } else {
        native.push(ADDRESS_WORD, address, p.length, i);
      }
      pieces.push(placed);
      last = placed;
    }
    at += length;
  }
  const ret = placeNative(native, chunks.length, access, name, operation);
  // An alias inherits its source's protection key; this new view is not
  // limited by that key's rights, so give its pages the default key 0.
  if (keyed) {
    const retag = lib().mk_pkey_mprotect(ret, BigInt(roundUp(length, page)), PROT[access], 0);
    if (retag < 0n) {
      lib().mk_map_unmap(ret, BigInt(roundUp(length, page)));
      check(retag, operation, { path: name, hint: "giving the new view protection key 0 failed" });
    }
  }
  const readOnlySource = chunks.some((c) => "region" in c && c.region.maxAccess !== "rw");
  return createMapping({
    address: ret,
    length,
    access,
    maxAccess: readOnlySource ? "r" : "rw",
    name,
    pieces,
  });
}

/** The one native call; turns a failure into an error naming the chunk. */
function placeNative(
  native: NativeChunks,
  count: number,
  access: "r" | "rw",
  name: string,
  operation: string,
): bigint {
  const report = new BigUint64Array(3);
  const ret = lib().mk_map_stitch(native.words, native.count, PROT[access], report);
  if (ret >= 0n) return ret;
  const failed = Number(report[0]);
  const needed = Number(report[1]);
  const placed = Number(report[2]);
  const errno = Number(-ret);
  const index = failed < native.count ? native.from[failed] : -1;
  let hint: string;
  if (index < 0 && placed === 0 && errno === ERRNO.ENOMEM) {
    hint = "reserving the address space for the whole view failed (too large for this process)";
  } else {
    hint = `placing ${index >= 0 ? `chunk ${index} (of ${count})` : "the view"} failed`;
    if (errno === ERRNO.ENOMEM) {
      hint += `; the request needs ${needed} mapping${needed === 1 ? "" : "s"} (neighbouring ` +
        `chunks that continue each other share one) besides those the process has, and ` +
        `${mapCountLimit()}; use larger chunks, or raise the limit (sysctl vm.max_map_count)`;
    } else if (errno === ERRNO.EINVAL && index >= 0 && operation === "alias") {
      hint += `; ${PRIVATE_HINT}`;
    } else if (errno === ERRNO.EACCES) {
      hint += `; a source does not allow access "${access}"`;
    }
  }
  throw new MemkitError(errno, operation, { path: name, hint });
}

/**
 * Maps chunks of memfds and of shared mappings side by side into one new
 * `Mapping`, zero-copy: the bytes of the result are the chunks in the order
 * given, and a write through either side shows through every alias. Chunks
 * may come from several sources, repeat, or overlap.
 *
 * One native call does the whole list: it reserves the full length
 * (`PROT_NONE`), then places each chunk inside the reservation with
 * `mmap(MAP_FIXED | MAP_SHARED)` (a mapping's chunk with
 * `mremap(old_size 0)`), merging neighbours that continue each other in the
 * same source into one mapping. Each mapping costs a few microseconds and
 * counts against `vm.max_map_count` (65530 by default): a chunk of 4 KiB is
 * cheaper to copy than to map.
 *
 * Every chunk is checked before anything is mapped. If the kernel refuses a
 * chunk midway, everything placed so far is unmapped and the error names the
 * chunk; for `ENOMEM` it says how many mappings the request needed and the
 * limit (read when `--allow-read=/proc/sys/vm/max_map_count` is granted).
 *
 * Requires `--allow-ffi`.
 *
 * @param chunks The chunks, in the order they appear in the result.
 * @param options The access of the result (`"rw"` by default).
 * @returns One mapping over all the chunks.
 * @throws {TypeError} For a chunk that is not `{ source, offset, length }`.
 * @throws {RangeError} For an unaligned or out-of-range chunk, naming its index.
 * @throws {MemkitError} When the kernel refuses, naming the chunk.
 *
 * @example Two memfds read as one
 * ```ts
 * import { MemFd, stitch } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using a = MemFd.create("a", { size: 4096 });
 * using b = MemFd.create("b", { size: 8192 });
 * using am = a.map();
 * using bm = b.map();
 * am.bytes().fill(1);
 * bm.bytes().fill(2);
 * using joined = stitch([
 *   { source: b, offset: 4096, length: 4096 },
 *   { source: a },
 * ]);
 * assertEquals(joined.length, 8192);
 * assertEquals([joined.bytes()[0], joined.bytes()[4096]], [2, 1]);
 * joined.bytes()[4096] = 9; // writes land in memfd "a"
 * assertEquals(am.bytes()[0], 9);
 * ```
 */
export function stitch(chunks: readonly Chunk[], options?: StitchOptions): Mapping {
  const opts = readOptions(options, "options", ["access"] as const);
  const access = toAccess(opts.access ?? "rw", ["r", "rw"]) as "r" | "rw";
  const placed = validate(chunks, access);
  const length = placed.reduce((n, c) => n + c.length, 0);
  return place(placed, access, describe(placed), length);
}

const PRIVATE_HINT = "its memory is private (MAP_PRIVATE: the JavaScript heap, malloc, a " +
  "private file mapping), and Linux refuses to alias private memory since 4.14 " +
  "(mremap with old size 0 returns EINVAL); allocate the memory in a MemFd from the start " +
  "and map that as often as you like, or serve a lazy view of it with userfaultfd";

/** Why a driver's mapping (mapDevice) is never stitched nor aliased. */
function deviceRefusal(at: string, name: string): string {
  return `Cannot stitch ${at}: "${name}" is a driver's mapping (mapDevice); a second mapping ` +
    "of its pages (mremap) is filled by the driver's fault handler, which it need not have " +
    "(a touch would be SIGBUS)";
}

/**
 * A second address for memory you already have: the same bytes as `source`,
 * no copy, with its own protection (`mremap(old, 0, len, MREMAP_MAYMOVE)`).
 * `source` is a memkit mapping of shared memory (a memfd, a file, a stitched
 * view, a `guarded()` mapping), or an `ArrayBuffer` or typed array whose
 * memory is shared. The JavaScript heap is private memory, which Linux
 * refuses to alias: that is a `MemkitError` (`EINVAL`) explaining what works
 * instead. An `ArrayBuffer`'s alias covers the whole pages that hold it: its
 * bytes start at `address % pageSize()` in the result.
 *
 * Requires `--allow-ffi`.
 *
 * @param source The memory to alias.
 * @param options The access of the alias (`"rw"` by default).
 * @returns The new mapping.
 * @throws {MemkitError} `EINVAL` for private memory.
 *
 * @example A read-only alias of a writable mapping
 * ```ts
 * import { alias, MemFd } from "@memkit/memkit";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * using fd = MemFd.create("aliased", { size: 4096 });
 * using rw = fd.map();
 * using ro = alias(rw, { access: "r" });
 * rw.bytes()[0] = 5;
 * assertEquals(ro.bytes()[0], 5);
 * assertThrows(() => {
 *   ro.bytes()[0] = 6;
 * }, TypeError);
 * ```
 *
 * @example The JavaScript heap is private: refused, with the reason
 * ```ts
 * import { alias, MemkitError } from "@memkit/memkit";
 * import { assertThrows } from "@std/assert";
 *
 * const err = assertThrows(() => alias(new Uint8Array(1 << 20)), MemkitError);
 * if (err.code !== "EINVAL") throw err;
 * ```
 */
export function alias(
  source: Mapping | ArrayBuffer | ArrayBufferView,
  options?: StitchOptions,
): Mapping {
  const opts = readOptions(options, "options", ["access"] as const);
  const access = toAccess(opts.access ?? "rw", ["r", "rw"]) as "r" | "rw";
  const region = findRegion(source);
  if (region) {
    const [chunk] = validate([{ source, offset: 0 }], access);
    return place([chunk], access, `alias of ${region.name}`, region.length, "alias");
  }
  // The memory's extent from the engine's slots, not from properties the
  // caller can redefine on the view.
  const view = bytesOf(source);
  if (!view) {
    throw new TypeError("Cannot alias: expected a Mapping, an ArrayBuffer or a typed array");
  }
  const byteLength = TypedArrayPrototypeGetByteLength(view);
  if (byteLength === 0) throw new RangeError("Cannot alias an empty buffer");
  const page = BigInt(pageSize());
  const start = Deno.UnsafePointer.value(Deno.UnsafePointer.of(view));
  const first = start - start % page;
  const span = Number((start + BigInt(byteLength) - first + page - 1n) / page * page);
  const name = `alias of a ${byteLength}-byte buffer`;
  // A view memkit handed out: alias the mapping's memory, so its sources
  // know of the alias (a memfd cannot shrink under it) and keys are reset.
  const found = regionAt(first, span);
  if (found) {
    const [owner, offset] = found;
    const placed: Placed = { region: owner, offset, length: span, name: owner.name };
    if (owner.device) throw new TypeError(deviceRefusal("this buffer", owner.name));
    if (owner.view % page !== 0n) {
      throw new RangeError(`Cannot alias: the mapping of "${owner.name}" does not start on a page`);
    }
    return place([placed], access, name, span, "alias");
  }
  // Not memkit's memory: nothing says which pages belong to one source, so
  // each page is aliased on its own (the kernel merges neighbours again).
  const native = new NativeChunks();
  for (let o = 0; o < span; o += Number(page)) {
    native.push(ADDRESS_WORD, first + BigInt(o), Number(page), 0);
  }
  const ret = placeNative(native, 1, access, name, "alias");
  return createMapping({
    address: ret,
    length: span,
    access,
    maxAccess: "rw",
    name,
    pieces: [{ source: {}, offset: 0, at: 0, length: span, paged: true }],
  });
}
