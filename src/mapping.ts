/**
 * `Mapping`: a range of this process's address space that memkit mapped,
 * with zero-copy views that can never crash the process.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { readOptions, typedLength } from "./_args.ts";
import {
  ArrayBufferPrototypeGetByteLength,
  ArrayBufferPrototypeTransfer,
  BigIntCtor,
  MapPrototypeGet,
  MapPrototypeSet,
  MathCeil,
  MathFloor,
  MathMax,
  MathMin,
  ObjectFreeze,
  ObjectSetPrototypeOf,
  safeArray,
  SetPrototypeAdd,
  setValues,
  TypedArrayPrototypeFill,
  TypedArrayPrototypeGetLength,
  TypedArrayPrototypeSet,
} from "./_primordials.ts";
import { aligned, inRange, isDetached, roundUp } from "./_validate.ts";
import { type Access, accessOf, PROT, toAccess } from "./_access.ts";
import {
  answerRegionOf,
  hold,
  type Holding,
  holdMapping,
  holdReadonly,
  letGo,
  letGoMapping,
  type MappingInit,
  markViewed,
  type Region,
  release,
  unback,
  vacate,
} from "./_region.ts";
import {
  type Advice,
  advise as adviseRange,
  lock as lockRange,
  type LockOptions,
  unlock as unlockRange,
} from "./advise.ts";

export type { Access } from "./_access.ts";

/**
 * Whether read-only views are available: they are immutable `ArrayBuffer`s,
 * which Deno 2.9 provides under `--v8-flags=--js-immutable-arraybuffer`.
 *
 * @example Whether read-only views work in this Deno
 * ```ts
 * import { readOnlyViewsSupported } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * // memkit's doc tests run with --v8-flags=--js-immutable-arraybuffer.
 * assertEquals(readOnlyViewsSupported(), true);
 * ```
 */
export function readOnlyViewsSupported(): boolean {
  return typeof (ArrayBuffer.prototype as { transferToImmutable?: unknown })
    .transferToImmutable === "function";
}

const IMMUTABLE_HINT = "read-only views are immutable ArrayBuffers, which need " +
  "`--v8-flags=--js-immutable-arraybuffer`; run again with that flag, or use " +
  "read() for a copy";

// The views and every check before detaching or unmapping call built-ins
// captured at load (_primordials.ts), as src/_region.ts does, never methods
// looked up at the time of the call.

const getArrayBuffer = Deno.UnsafePointerView.getArrayBuffer;
const pointerCreate = Deno.UnsafePointer.create;

function refuseTransfer(): never {
  throw new TypeError(
    "Cannot transfer the buffer of a memkit view: its mapping must be able to detach it; " +
      "copy it with read() or slice() instead",
  );
}

/**
 * The prototype of memkit's writable buffers: an ArrayBuffer whose transfer
 * methods refuse, since a buffer moved elsewhere could outlive the mapping.
 */
const GUARDED: ArrayBuffer = Object.create(ArrayBuffer.prototype, {
  transfer: { value: refuseTransfer },
  transferToFixedLength: { value: refuseTransfer },
  transferToImmutable: { value: refuseTransfer },
});

/** A typed array constructor that {@linkcode Mapping.view} accepts. */
export interface TypedArrayConstructor<T> {
  /** Creates a view over `length` elements of `buffer` from `byteOffset`. */
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  /** The size of one element in bytes. */
  readonly BYTES_PER_ELEMENT: number;
}

const CONSTRUCT = Symbol("memkit.Mapping");
/**
 * The writable buffers of a mapping that handed out none: one frozen empty
 * array shared by all (a prototype-less array is slow to make, and most
 * mappings of a short cycle need none); `#keep()` makes a mapping its own.
 */
const NO_BUFFERS: ArrayBuffer[] = ObjectFreeze(safeArray<ArrayBuffer>()) as ArrayBuffer[];
let limitMapping: (m: Mapping, rights: number, dryRun: boolean) => void;

/** Creates a Mapping; for memkit's own modules, not part of the API. */
export function createMapping(init: MappingInit): Mapping {
  return new Mapping(CONSTRUCT, init);
}

/**
 * The token of Mapping's constructor, for memkit's own subclasses
 * (`LazyView` in src/uffd.ts); not part of the API.
 */
export function mappingToken(): symbol {
  return CONSTRUCT;
}

/**
 * Protection-key rights (`PKEY_DISABLE_*` bits) now limit a mapping: detaches
 * the writable views that rights without write would make fault, and refuses
 * rights without access while read-only views live. With `dryRun`, only
 * checks. For memkit's own modules (the `Pkey` class), not part of the API.
 */
export function limitByPkey(mapping: Mapping, rights: number, dryRun = false): void {
  limitMapping(mapping, rights, dryRun);
}

/**
 * A range of this process's address space mapped by memkit.
 *
 * Views (`bytes()`, `view()`) are zero-copy and share one `ArrayBuffer` per
 * protection state. No use of a view can crash the process:
 * - `close()` detaches every writable buffer it handed out before unmapping,
 *   so a stale writable view reads `undefined` and has length 0;
 * - a read-only mapping's views are immutable `ArrayBuffer`s (a write throws
 *   a TypeError); since V8 cannot detach those, `close()` replaces the pages
 *   in place with private zero pages, so stale read-only views read zeros;
 * - Deno's own APIs keep a view's address, not its buffer (a socket read in
 *   flight completes into it after `close()`): a range that handed out a
 *   view is never unmapped at `close()` but kept as private read-write zero
 *   pages in a quarantine of 64 ranges, so a late
 *   write lands there and never in another mapping; the oldest range is
 *   unmapped when a newer one comes in past that bound;
 * - `protect()` detaches writable views before it takes write access away
 *   from any page, and refuses `"none"` while read-only views are reachable;
 *   a view never covers a page its protection would make fault. Lowering a
 *   protection moves a mapping that handed out views to a new `address`
 *   (detaching every writable view) and quarantines the old range.
 * - a writable view's buffer refuses `transfer()` (and its kin), since a
 *   moved buffer could outlive the mapping. A transfer list
 *   (`structuredClone`, `postMessage`) gets past that; memkit notices at the
 *   next `close()`, `protect()` or view of the mapping, or when the garbage
 *   collector frees it, and from then on keeps the range mapped as private
 *   zero pages instead of unmapping it. Not covered: dropping the mapping
 *   first and moving a view it left behind afterwards. Copy views
 *   (`read()`), do not transfer them.
 *
 * A view keeps its mapping alive: garbage collection never unmaps memory
 * that JavaScript can still reach, and unmaps what nothing reaches.
 *
 * @example Two addresses, one memory
 * ```ts
 * import { MemFd } from "@memkit/memkit";
 * import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
 *
 * using fd = MemFd.create("example", { size: 4096 });
 * using rw = fd.map({ access: "rw" });
 * using ro = fd.map({ access: "r" });
 * assertNotEquals(rw.address, ro.address);
 * rw.bytes()[7] = 42;
 * assertEquals(ro.bytes()[7], 42);
 * assertThrows(() => {
 *   ro.bytes()[7] = 1;
 * }, TypeError);
 * ```
 */
export class Mapping {
  #region: Region;
  static {
    answerRegionOf((m) => (#region in m ? m.#region : undefined), Mapping.prototype);
    limitMapping = (m, rights, dryRun) => m.#limit(rights, dryRun);
  }
  #address: bigint;
  /** Bytes between the start of the first mapped page and the view (physical memory). */
  #head: number;
  #length: number;
  #access: Access;
  /** Per-page `PROT_*` bits while pages differ ("mixed"); undefined while uniform. */
  #prot: Uint8Array | undefined;
  #maxAccess: Access;
  #name: string;
  #closed = false;
  #writable: ArrayBuffer | undefined;
  /** The region, and every writable buffer handed out and not detached (the whole one too). */
  #holding: Holding;
  /**
   * The current writable and read-only buffers of a mixed mapping, by first
   * page; made when first needed (most mappings are never mixed).
   */
  #runs: Map<number, ArrayBuffer> | undefined;
  #readonlyRuns: Map<number, ArrayBuffer> | undefined;
  #readonly: ArrayBuffer | undefined;

  /**
   * Not for direct use: mappings come from `MemFd.map()`, `mapAnonymous()`,
   * `mapFile()`, `stitch()`, `alias()` and `guarded()`.
   *
   * @param token memkit's private construction token.
   * @param init What was mapped.
   * @ignore
   */
  constructor(token: symbol, init: MappingInit) {
    if (token !== CONSTRUCT) {
      throw new TypeError("Cannot construct a Mapping directly: use MemFd.map() or mapFile()");
    }
    const owners = new Set<Map<object, number>>();
    const head = init.offset ?? 0;
    this.#head = head;
    const view = head === 0 ? init.address : init.address + BigIntCtor(head);
    const page = pageSize();
    this.#region = {
      address: init.reserved?.address ?? init.address,
      span: init.reserved?.span ?? roundUp(head + init.length, page),
      refs: 0,
      live: true,
      backed: true,
      pieces: init.pieces,
      owners,
      readonly: 0,
      viewed: false,
      pinned: false,
      maxAccess: init.maxAccess,
      prot: PROT[init.access],
      view,
      viewSpan: roundUp(init.length, page),
      length: init.length,
      name: init.name,
      onUnback: init.onUnback,
      device: init.device,
    };
    const pieces = init.pieces;
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (!piece.owner) continue;
      const end = piece.offset + piece.length;
      MapPrototypeSet(
        piece.owner,
        this.#region,
        MathMax(MapPrototypeGet(piece.owner, this.#region) ?? 0, end),
      );
      SetPrototypeAdd(owners, piece.owner);
    }
    this.#address = view;
    this.#length = init.length;
    this.#access = init.access;
    this.#maxAccess = init.maxAccess;
    this.#name = init.name;
    this.#holding = { region: this.#region, buffers: NO_BUFFERS };
    holdMapping(this.#holding, this);
  }

  /**
   * The start address in this process, as a bigint. A `protect()` that
   * lowers the protection of a mapping that handed out views changes it.
   */
  get address(): bigint {
    return this.#address;
  }

  /** The length in bytes. */
  get length(): number {
    return this.#length;
  }

  /**
   * The address after the last byte (exclusive): `address + length`, as a
   * bigint. Moves with {@linkcode Mapping.address}.
   */
  get end(): bigint {
    return this.#address + BigInt(this.#length);
  }

  /**
   * The current protection, or `"mixed"` after `protect()` gave parts of the
   * mapping different ones (see {@linkcode Mapping.accessAt}).
   */
  get access(): Access | "mixed" {
    return this.#prot ? "mixed" : this.#access;
  }

  /**
   * The protection of the page holding byte `offset`.
   *
   * @param offset A byte offset in the mapping.
   * @returns The access of that page.
   *
   * @example One page's protection
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("pages", { size: 2 * 4096 });
   * using m = fd.map();
   * m.protect("r", { offset: 4096 });
   * assertEquals([m.access, m.accessAt(0), m.accessAt(4096)], ["mixed", "rw", "r"]);
   * ```
   */
  accessAt(offset: number): Access {
    this.#alive("read the protection");
    const off = inRange(offset, "offset", 0, this.#length - 1);
    if (!this.#prot) return this.#access;
    return accessOf(this.#prot[MathFloor(off / pageSize())])!;
  }

  /** What is mapped: `memfd:<name>`, a file path, or a description. */
  get name(): string {
    return this.#name;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #alive(op: string): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the mapping of "${this.#name}" is closed`);
    }
  }

  /** `PROT_*` bits after the protection key's rights, if one limits the mapping. */
  #effective(prot: number): number {
    const rights = this.#region.pkeyRights?.() ?? 0;
    if (rights & MK.PKEY_DISABLE_ACCESS) return MK.PROT_NONE;
    if (rights & MK.PKEY_DISABLE_WRITE) return prot & ~MK.PROT_WRITE;
    return prot;
  }

  /** The protection every page of [off, off + len) has in common. */
  #common(off: number, len: number): number {
    if (!this.#prot) return this.#effective(PROT[this.#access]);
    const page = pageSize();
    // An empty range at the very end: the protection of the last page.
    const p0 = MathMin(MathFloor(off / page), TypedArrayPrototypeGetLength(this.#prot) - 1);
    const p1 = MathMax(p0 + 1, MathCeil((off + len) / page));
    let prot = 0xff;
    for (let i = p0; i < p1; i++) prot &= this.#prot[i];
    return this.#effective(prot);
  }

  /** A buffer over [off, off + len) and the offset in the mapping where it starts. */
  #buffer(op: string, off: number, len: number): [ArrayBuffer, number] {
    this.#alive(op);
    if (this.#moved()) this.#detachWritable(); // pins the region
    const prot = this.#common(off, len);
    if (!(prot & MK.PROT_READ)) {
      const where = this.#prot ? ` at offset ${off}` : "";
      throw new TypeError(
        `Cannot ${op}: the mapping of "${this.#name}" has protection "none"${where}; ` +
          "protect() it first",
      );
    }
    if (!this.#prot) return [prot & MK.PROT_WRITE ? this.#whole() : this.#immutable(op), 0];
    if (len === 0) return [new ArrayBuffer(0), off]; // its own: nothing to share or steal
    // Parts of a mixed mapping get a buffer over the run of pages around the
    // request that all allow the access, so no view can reach a page whose
    // protection would make it fault. One buffer per run, until the next
    // protection change.
    const page = pageSize();
    const pages = this.#prot;
    const need = prot & MK.PROT_WRITE ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    const allows = (i: number) => (this.#effective(pages[i]) & need) === need;
    let first = MathFloor(off / page);
    let last = MathMax(first + 1, MathCeil((off + len) / page));
    while (first > 0 && allows(first - 1)) first--;
    while (last < TypedArrayPrototypeGetLength(pages) && allows(last)) last++;
    const start = first * page;
    const end = MathMin(last * page, this.#length);
    const cache = need & MK.PROT_WRITE
      ? (this.#runs ??= new Map())
      : (this.#readonlyRuns ??= new Map());
    let buffer = MapPrototypeGet(cache, first);
    if (
      buffer === undefined || isDetached(buffer) ||
      ArrayBufferPrototypeGetByteLength(buffer) !== end - start
    ) {
      markViewed(this.#region);
      const raw = getArrayBuffer(this.#pointer(start), end - start);
      if (need & MK.PROT_WRITE) {
        ObjectSetPrototypeOf(raw, GUARDED);
        hold(this.#region, raw);
        this.#keep(raw);
        buffer = raw;
      } else {
        buffer = this.#freeze(op, raw);
      }
      MapPrototypeSet(cache, first, buffer);
    }
    return [buffer, start];
  }

  #whole(): ArrayBuffer {
    if (!this.#writable) {
      markViewed(this.#region);
      const ab = getArrayBuffer(this.#pointer(0), this.#length);
      ObjectSetPrototypeOf(ab, GUARDED);
      hold(this.#region, ab);
      this.#keep(ab);
      this.#writable = ab;
    }
    return this.#writable;
  }

  #immutable(op: string): ArrayBuffer {
    if (!this.#readonly) {
      markViewed(this.#region);
      const raw = getArrayBuffer(this.#pointer(0), this.#length);
      this.#readonly = this.#freeze(op, raw);
    }
    return this.#readonly;
  }

  #freeze(op: string, raw: ArrayBuffer): ArrayBuffer {
    if (!readOnlyViewsSupported()) {
      throw new TypeError(`Cannot ${op} of read-only "${this.#name}": ${IMMUTABLE_HINT}`);
    }
    const ro = (raw as unknown as { transferToImmutable(): ArrayBuffer }).transferToImmutable();
    holdReadonly(this.#region, ro);
    return ro;
  }

  #pointer(offset: number): Deno.PointerObject {
    return pointerCreate(this.#address + BigIntCtor(offset))!;
  }

  #range(offset: unknown, length: unknown, unit = 1): [number, number] {
    const off = inRange(offset, "offset", 0, this.#length);
    if (off % unit !== 0) {
      throw new RangeError(`Cannot use offset "${off}": not a multiple of ${unit}`);
    }
    const max = MathFloor((this.#length - off) / unit);
    const len = length === undefined ? max : inRange(length, "length", 0, max);
    return [off, len];
  }

  /**
   * A zero-copy byte view of the mapping (or of `length` bytes from
   * `offset`). Writable when the access is `"rw"`; an immutable view when it
   * is `"r"` or `"rx"` (needs `--v8-flags=--js-immutable-arraybuffer`). Over
   * a mapping with mixed protections, the view's buffer covers only the pages
   * asked for, and those must all be readable.
   *
   * @param offset The first byte, default 0.
   * @param length The number of bytes, default to the end.
   * @returns A `Uint8Array` over the mapped memory.
   *
   * @example A byte view of part of a mapping
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("bytes", { size: 4096 });
   * using m = fd.map();
   * m.bytes(100, 3).set([1, 2, 3]);
   * assertEquals([...m.bytes(99, 5)], [0, 1, 2, 3, 0]);
   * ```
   */
  bytes(offset = 0, length?: number): Uint8Array<ArrayBuffer> {
    const [off, len] = this.#range(offset, length);
    const [buffer, base] = this.#buffer("view the mapping", off, len);
    return new Uint8Array(buffer, off - base, len);
  }

  /**
   * A zero-copy typed array view of the mapping.
   *
   * @param Ctor A typed array constructor, e.g. `Uint32Array`.
   * @param offset The first byte, a multiple of the element size; default 0.
   * @param length The number of elements, default as many as fit.
   * @returns An instance of `Ctor` over the mapped memory.
   *
   * @example A typed view
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("words", { size: 4096 });
   * using m = fd.map();
   * m.view(Uint32Array)[1] = 0x01020304;
   * assertEquals([...m.bytes(4, 4)], [4, 3, 2, 1]);
   * ```
   */
  view<T>(Ctor: TypedArrayConstructor<T>, offset = 0, length?: number): T {
    // Read once: a getter could answer the check one size and the view another.
    const size = typeof Ctor === "function" ? Ctor.BYTES_PER_ELEMENT : undefined;
    if (typeof size !== "number" || size !== 1 && size !== 2 && size !== 4 && size !== 8) {
      throw new TypeError("Cannot create a view: expected a typed array constructor");
    }
    const [off, len] = this.#range(offset, length, size);
    const [buffer, base] = this.#buffer("view the mapping", off, len * size);
    return new Ctor(buffer, off - base, len);
  }

  /**
   * Copies bytes out of the mapping into a new `Uint8Array`: the way to read
   * a read-only mapping without immutable `ArrayBuffer` support.
   *
   * @param offset The first byte, default 0.
   * @param length The number of bytes, default to the end.
   * @returns A fresh copy.
   *
   * @example Copy bytes out
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("read", { size: 4096 });
   * using m = fd.map();
   * m.write(new Uint8Array([9, 8]), 10);
   * assertEquals(m.read(10, 2), new Uint8Array([9, 8]));
   * ```
   */
  read(offset = 0, length?: number): Uint8Array<ArrayBuffer> {
    this.#alive("read the mapping");
    const [off, len] = this.#range(offset, length);
    if (!(this.#common(off, len) & MK.PROT_READ)) {
      throw new TypeError(`Cannot read "${this.#name}": its protection is "none" there`);
    }
    const out = new Uint8Array(len);
    if (len > 0) new Deno.UnsafePointerView(this.#pointer(0)).copyInto(out, off);
    return out;
  }

  /**
   * Copies `data` into the mapping at `offset`. Needs access `"rw"` there.
   *
   * @param data The bytes to write.
   * @param offset Where to write them, default 0.
   *
   * @example Copy bytes in
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("write", { size: 4096 });
   * using m = fd.map();
   * m.write(new TextEncoder().encode("hi"), 1);
   * assertEquals(m.bytes(0, 3), new Uint8Array([0, 104, 105]));
   * ```
   */
  write(data: Uint8Array, offset = 0): void {
    this.#alive("write the mapping");
    // The length from the engine's slot, not a `length` the caller redefined.
    const n = typedLength(data, "Uint8Array", "data");
    const [off] = this.#range(offset, n);
    if (!(this.#common(off, n) & MK.PROT_WRITE)) {
      throw new TypeError(`Cannot write "${this.#name}": its protection is "${this.access}"`);
    }
    const [buffer, base] = this.#buffer("write the mapping", off, n);
    TypedArrayPrototypeSet(new Uint8Array(buffer, off - base, n), data);
  }

  /**
   * Changes the protection of the mapping, or of the page-aligned range
   * `{ offset, length }` of it (`mprotect`). Taking write access away from
   * any page first detaches every writable view; `"none"` is refused while
   * read-only views may still be reachable (a view dropped by the caller
   * counts until the garbage collector has seen it). Changing part of the
   * mapping makes its access `"mixed"`. Taking read or write access away
   * from a mapping that handed out views moves it to a new
   * {@linkcode Mapping.address} (the same memory), detaching every writable
   * view (each points into the old range), and the old range goes to the
   * quarantine like a closed one: a Deno op still holding an old view's
   * address writes there, not into pages that would now fault. It stays in
   * place while read-only views of it are reachable (they go on showing the
   * memory), for physical memory, views starting inside a page, ranges
   * pinned by a moved buffer, and guard markers (`advise(..., "guard")`).
   *
   * @param access The new protection.
   * @param range The part to change: `offset` a multiple of the page size,
   * `length` one too (or reaching the end); default the whole mapping.
   * @throws {MemkitError} `EACCES` when the source allows less (a file opened
   * read-only), `EBUSY` for `"none"` while read-only views live.
   *
   * @example Whole mapping
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("protect", { size: 4096 });
   * using m = fd.map();
   * const old = m.bytes();
   * m.protect("r");
   * assertEquals(old.length, 0); // detached, not a crash
   * assertThrows(() => {
   *   m.bytes()[0] = 1;
   * }, TypeError);
   * ```
   *
   * @example One page
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("guard", { size: 3 * 4096 });
   * using m = fd.map();
   * m.protect("none", { offset: 4096, length: 4096 });
   * m.bytes(0, 4096)[0] = 1; // the first page is still writable
   * assertThrows(() => m.bytes(4096, 1), TypeError); // the second one is off limits
   * assertEquals(m.accessAt(2 * 4096), "rw");
   * ```
   */
  protect(access: Access, range?: { offset?: number; length?: number }): void {
    // Copies first: a primitive access, the range's fields read once each.
    access = toAccess(access);
    const wanted = PROT[access];
    const area = range === undefined
      ? undefined
      : readOptions(range, "range", ["offset", "length"] as const);
    this.#alive("protect the mapping");
    if ((wanted & MK.PROT_WRITE) && this.#maxAccess !== "rw") {
      throw new MemkitError(ERRNO.EACCES, "protect", {
        path: this.#name,
        hint: this.#maxAccess === "r"
          ? 'it was opened read-only (access "r")'
          : `it was opened for access "${this.#maxAccess}" only`,
      });
    }
    const page = pageSize();
    const head = this.#head;
    const span = roundUp(head + this.#length, page);
    let off = 0;
    let end = span;
    if (area !== undefined) {
      if (head !== 0) {
        throw new RangeError(
          `Cannot protect part of "${this.#name}": its view starts ${head} bytes into a page; ` +
            "protect the whole mapping",
        );
      }
      // Indexed, not destructured: destructuring calls Array.prototype[Symbol.iterator].
      const bounds = this.#protectRange(area, page, span);
      off = bounds[0];
      end = bounds[1];
    }
    if (
      wanted !== MK.PROT_NONE && this.#region.guards?.subarray(off / page, end / page).includes(1)
    ) {
      throw new MemkitError(ERRNO.EBUSY, "protect", {
        path: this.#name,
        hint:
          'guard markers make those pages fault whatever their protection; advise "unguard" first',
      });
    }
    const pages = this.#prot;
    let changes: boolean, lowersWrite: boolean, readable: boolean, lowers: boolean;
    const taken = (now: number) => now & ~wanted & (MK.PROT_READ | MK.PROT_WRITE);
    if (pages === undefined) {
      // Uniform: one comparison instead of a page table.
      const now = PROT[this.#access];
      changes = now !== wanted;
      lowersWrite = (now & MK.PROT_WRITE) !== 0 && (wanted & MK.PROT_WRITE) === 0;
      readable = (now & MK.PROT_READ) !== 0;
      lowers = taken(now) !== 0;
    } else {
      changes =
        lowersWrite =
        readable =
        lowers =
          false;
      for (let i = off / page; i < end / page; i++) {
        const now = pages[i];
        if (now !== wanted) changes = true;
        if ((now & MK.PROT_WRITE) && !(wanted & MK.PROT_WRITE)) lowersWrite = true;
        if (now & MK.PROT_READ) readable = true;
        if (taken(now)) lowers = true;
      }
    }
    if (!changes) return;
    if (wanted === MK.PROT_NONE && readable && this.#region.readonly > 0) {
      throw new MemkitError(ERRNO.EBUSY, "protect", {
        path: this.#name,
        hint: 'read-only views of it are still reachable and would fault under "none"; ' +
          "drop them, or close() the mapping instead",
      });
    }
    if (lowersWrite) this.#dropWrite("protect");
    if (lowers) this.#relocate();
    const base = this.#address - BigIntCtor(head);
    const ret = lib().mk_map_protect(base + BigIntCtor(off), BigIntCtor(end - off), wanted);
    if (ret < 0n) {
      // mprotect works mapping by mapping and stops at the first refusal: put
      // back what it changed before it, so memkit's record stays the truth.
      for (let a = off; a < end;) {
        const old = pages ? pages[a / page] : PROT[this.#access];
        let b = a + page;
        while (b < end && (pages ? pages[b / page] : old) === old) b += page;
        lib().mk_map_protect(base + BigIntCtor(a), BigIntCtor(b - a), old);
        a = b;
      }
      check(ret, "protect", { path: this.#name });
    }
    this.#readonly = undefined;
    this.#runs = undefined;
    this.#readonlyRuns = undefined;
    if (off === 0 && end === span) {
      this.#prot = undefined;
      this.#access = access;
      this.#mirror();
      return;
    }
    const table = pages ?? new Uint8Array(span / page);
    if (!pages) TypedArrayPrototypeFill(table, PROT[this.#access]);
    TypedArrayPrototypeFill(table, wanted, off / page, end / page);
    const first = table[0];
    let uniform = true;
    const count = TypedArrayPrototypeGetLength(table);
    for (let i = 1; i < count && uniform; i++) uniform = table[i] === first;
    if (uniform) {
      this.#prot = undefined;
      this.#access = accessOf(first)!;
    } else {
      this.#prot = table;
    }
    this.#mirror();
  }

  /**
   * Records the protection in the region too: views keep the range mapped
   * after this object is collected, and what may go through them then
   * (PhysicalMemory's readU*) must know each page's protection.
   */
  #mirror(): void {
    this.#region.prot = PROT[this.#access];
    this.#region.protPages = this.#prot;
  }

  /** Checks a `{ offset, length }` for protect(); returns [start, end) in whole pages. */
  #protectRange(
    range: { readonly offset?: unknown; readonly length?: unknown },
    page: number,
    span: number,
  ): [number, number] {
    const off = aligned(range.offset ?? 0, "offset", page);
    if (off >= this.#length) {
      throw new RangeError(`Cannot protect from offset "${off}": beyond the mapping's length`);
    }
    const len = range.length === undefined ? span - off : inRange(range.length, "length", 1, span);
    if (off + len > span || (len % page !== 0 && off + len !== this.#length)) {
      throw new RangeError(
        `Cannot protect ${len} bytes at offset ${off}: expected page multiples inside the ` +
          `mapping's ${this.#length} bytes`,
      );
    }
    return [off, roundUp(off + len, page)];
  }

  /**
   * Before a protection goes down: moves the mapping to a new address (a
   * second mapping of the same memory, `mk_map_relocate`) and leaves the old
   * range to the quarantine as private zero pages, when a buffer was ever
   * created over it. A Deno op that still holds an old view's address (a
   * read in flight, a TLS copy) then lands in those pages instead of pages
   * the new protection would make fault, and never in another mapping.
   * Stays in place while read-only views of it are reachable (they must go
   * on showing the memory), where the kernel cannot make the second mapping
   * (physical memory), for a view that starts inside a page, and for a range
   * pinned by a moved buffer, or over guard markers (`advise(..., "guard")`),
   * which belong to the range's page tables and would not move with it.
   */
  #relocate(): void {
    const old = this.#region;
    // Immutable views of it must keep showing the memory: those stay in place.
    if (!old.viewed || old.pinned || old.readonly > 0 || this.#head !== 0 || old.device) return;
    // Guard markers live in the page tables of this range: a move would drop them.
    // (Built-ins captured at load throughout: a patched Array.prototype.push
    // or iterator must not make the move place less than the whole mapping.)
    const guards = old.guards;
    if (guards !== undefined) {
      for (let i = 0; i < TypedArrayPrototypeGetLength(guards); i++) if (guards[i]) return;
    }
    this.#detachWritable(); // every writable buffer points into the old range
    if (old.pinned) return;
    const page = pageSize();
    const into = Number(old.view - old.address);
    const runs: bigint[] = safeArray();
    const pieces = old.pieces;
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      const step = p.paged ? page : roundUp(p.length, page);
      for (let a = 0; a < p.length; a += step) {
        runs[runs.length] = BigIntCtor(into + p.at + a);
        runs[runs.length] = BigIntCtor(MathMin(step, roundUp(p.length - a, page)));
      }
    }
    const words = new BigUint64Array(runs.length);
    for (let i = 0; i < runs.length; i++) words[i] = runs[i];
    const to = lib().mk_map_relocate(old.address, BigIntCtor(old.span), words, runs.length / 2);
    if (to < 0n) return;
    const region: Region = {
      address: to,
      span: old.span,
      view: to + BigIntCtor(into),
      viewSpan: old.viewSpan,
      length: old.length,
      name: old.name,
      refs: 1, // this mapping's
      live: true,
      backed: true,
      pieces: old.pieces,
      owners: new Set(),
      readonly: 0,
      viewed: false,
      pinned: false,
      maxAccess: old.maxAccess,
      prot: old.prot,
      protPages: old.protPages,
      pkeyRights: old.pkeyRights,
    };
    const owners = setValues(old.owners);
    for (let i = 0; i < owners.length; i++) {
      const owner = owners[i];
      const reach = MapPrototypeGet(owner, old);
      if (reach === undefined) continue;
      MapPrototypeSet(owner, region, reach);
      SetPrototypeAdd(region.owners, owner);
    }
    unback(old);
    this.#region = region;
    this.#holding.region = region;
    this.#address = region.view;
    this.#readonly = undefined;
    this.#readonlyRuns = undefined;
    // Each run took the protection of its first page: put back every page's.
    const span = roundUp(this.#length, page);
    const table = this.#prot;
    for (let a = 0; a < span;) {
      const prot = table ? table[a / page] : PROT[this.#access];
      let b = a + page;
      while (b < span && (table ? table[b / page] : prot) === prot) b += page;
      lib().mk_map_protect(region.view + BigIntCtor(a), BigIntCtor(b - a), prot);
      a = b;
    }
    old.refs--; // the mapping now holds the new region
    if (old.refs === 0) release(old);
  }

  /** Detaches the writable views before write access goes away. */
  #dropWrite(op: string): void {
    this.#detachWritable();
    if (this.#region.pinned) {
      throw new MemkitError(ERRNO.EBUSY, op, {
        path: this.#name,
        hint: "a writable view's buffer was transferred out of memkit's reach " +
          "(structuredClone or postMessage with a transfer list), so write access " +
          "cannot be taken away safely",
      });
    }
  }

  #limit(rights: number, dryRun: boolean): void {
    if (this.#closed || rights === 0) return;
    if ((rights & MK.PKEY_DISABLE_ACCESS) && this.#region.readonly > 0) {
      throw new MemkitError(ERRNO.EBUSY, "set the protection key of", {
        path: this.#name,
        hint: "read-only views of it are still reachable and would fault without access; " +
          "drop them first",
      });
    }
    if (!dryRun) this.#dropWrite("set the protection key of");
    else if (this.#region.pinned || this.#moved()) {
      throw new MemkitError(ERRNO.EBUSY, "set the protection key of", {
        path: this.#name,
        hint: "a writable view's buffer was transferred out of memkit's reach, so write " +
          "access cannot be taken away safely",
      });
    }
    this.#readonly = undefined;
    this.#readonlyRuns = undefined;
  }

  /** Records a writable buffer handed out, for detaching (and for the finalizer). */
  #keep(ab: ArrayBuffer): void {
    let buffers = this.#holding.buffers;
    if (buffers === NO_BUFFERS) buffers = this.#holding.buffers = safeArray();
    buffers[buffers.length] = ab;
  }

  #detachWritable(): void {
    this.#writable = undefined;
    this.#runs = undefined;
    const buffers = this.#holding.buffers;
    if (buffers.length === 0) return;
    this.#holding.buffers = NO_BUFFERS;
    for (let i = 0; i < buffers.length; i++) {
      const ab = buffers[i];
      letGo(this.#region, ab);
      // Detached already: someone moved it past the guard; memkit cannot reach
      // the moved buffer, so the range must stay mapped (scrubbed on close).
      if (isDetached(ab)) this.#region.pinned = true;
      else ArrayBufferPrototypeTransfer(ab, 0);
    }
  }

  /** Whether a writable buffer handed out was moved away (a transfer list). */
  #moved(): boolean {
    const buffers = this.#holding.buffers;
    for (let i = 0; i < buffers.length; i++) if (isDetached(buffers[i])) return true;
    return false;
  }

  /**
   * Unmaps the memory. Writable views are detached first (they read
   * `undefined`); read-only views read zeros from then on. When a view was
   * ever handed out, the range stays reserved as private zero pages in the
   * quarantine (a Deno op may still hold its address) and leaves it after 64
   * later such closes: unmapped, or placed under memkit's next mapping of
   * its length. Idempotent.
   *
   * @example Views go empty when the mapping closes
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const fd = MemFd.create("close", { size: 4096 });
   * const m = fd.map();
   * const view = m.bytes();
   * m.close();
   * assertEquals(view[0], undefined);
   * fd.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#detachWritable();
    const region = this.#region;
    // A Deno op may still hold a view's address (a read in flight completes
    // into it), and immutable views cannot be detached: a range that handed
    // out a buffer gets private zero pages in place, and the quarantine keeps
    // it reserved. Should the kernel refuse, the mapping stays open (and its
    // source guarded against shrinking): the views must keep their pages.
    const ret = vacate(region);
    if (ret < 0n) check(ret, "close", { path: this.#name });
    this.#closed = true;
    letGoMapping(region, this);
    if (region.refs === 0) release(region);
    this.#readonly = undefined;
    this.#readonlyRuns = undefined;
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    const state = this.#closed ? "closed" : `access "${this.access}"`;
    return `Mapping { "${this.#name}", 0x${
      this.address.toString(16)
    }, ${this.#length} bytes, ${state} }`;
  }

  // ---- pinning and advice: thin delegates of src/advise.ts ----

  /**
   * Locks the mapping, or a page-aligned range of it, in memory (`mlock2`);
   * see {@linkcode lock}.
   *
   * @param options `onFault`: lock pages as they fault in (`MLOCK_ONFAULT`).
   * @param range The part to lock, in whole pages; default the whole mapping.
   *
   * @example Lock on fault
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   *
   * using fd = MemFd.create("m-lock", { size: 4096 });
   * using m = fd.map();
   * m.lock({ onFault: true });
   * m.bytes()[0] = 1; // this page is locked from now on
   * m.unlock();
   * ```
   */
  lock(options?: LockOptions, range?: { offset?: number; length?: number }): void {
    lockRange(part(this, "lock", range), options);
  }

  /**
   * Unlocks the mapping, or a page-aligned range of it (`munlock`); see
   * {@linkcode unlock}.
   *
   * @param range The part to unlock, in whole pages; default the whole mapping.
   *
   * @example Lock, then unlock
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   *
   * using fd = MemFd.create("m-unlock", { size: 4096 });
   * using m = fd.map();
   * m.lock();
   * m.unlock();
   * ```
   */
  unlock(range?: { offset?: number; length?: number }): void {
    unlockRange(part(this, "unlock", range));
  }

  /**
   * Gives the kernel advice about the mapping, or a page-aligned range of it
   * (`madvise`); see {@linkcode advise} for each advice and why none can
   * make a view fault.
   *
   * @param advice The advice.
   * @param range The part it is about, in whole pages; default the whole mapping.
   *
   * @example Drop the page table entries of a memfd's mapping
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("m-advise", { size: 4096 });
   * using m = fd.map();
   * m.bytes()[0] = 3;
   * m.advise("dontneed");
   * assertEquals(m.bytes()[0], 3); // shared memory keeps its data
   * ```
   */
  advise(advice: Advice, range?: { offset?: number; length?: number }): void {
    adviseRange(part(this, "advise", range), advice);
  }
}

/** A delegate's target: the mapping, or `{ mapping, offset, length }` for a range object. */
function part(
  mapping: Mapping,
  op: string,
  range: { offset?: number; length?: number } | undefined,
): Mapping | { mapping: Mapping; offset?: number; length?: number } {
  if (range === undefined) return mapping;
  if (range === null || typeof range !== "object") {
    throw new TypeError(`Cannot ${op}: expected a range { offset, length }`);
  }
  return { mapping, offset: range.offset, length: range.length };
}
