/**
 * `Mapping`: a range of this process's address space that memkit mapped,
 * with zero-copy views that can never crash the process.
 *
 * @module
 */

import { check, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { inRange, roundUp } from "./_validate.ts";

/** How a mapping may be accessed: not at all, read-only, or read-write. */
export type Access = "none" | "r" | "rw";

const PROT: Record<Access, number> = {
  none: MK.PROT_NONE,
  r: MK.PROT_READ,
  rw: MK.PROT_READ | MK.PROT_WRITE,
};
const RANK: Record<Access, number> = { none: 0, r: 1, rw: 2 };

/** Throws TypeError unless `value` is an {@linkcode Access}. */
export function toAccess(value: unknown, allowed: readonly Access[] = ["none", "r", "rw"]): Access {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) {
    return value as Access;
  }
  throw new TypeError(
    `Cannot use access "${String(value)}": expected ${allowed.map((a) => `"${a}"`).join(", ")}`,
  );
}

/**
 * Whether read-only views are available: they are immutable `ArrayBuffer`s,
 * which Deno 2.9 provides under `--v8-flags=--js-immutable-arraybuffer`.
 *
 * @example
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

// ---- regions: the address ranges behind mappings, freed by GC as a backstop ----

/**
 * The state of one mapped address range, shared by the `Mapping` and every
 * `ArrayBuffer` created over it: the range is unmapped when `close()` says so
 * and nothing can reach it any more, or when all of them are collected.
 */
export interface Region {
  /** The start address. */
  readonly address: bigint;
  /** The mapped length in bytes: a multiple of the page size. */
  readonly span: number;
  /** Objects registered with the finalization registry and not yet collected. */
  refs: number;
  /** The range is mapped (the source's pages, or the zero placeholder). */
  live: boolean;
  /** The range still maps the source (false once closed). */
  backed: boolean;
  /** The end of the window in the source, in bytes (for resize checks). */
  readonly end: number;
  /** The set of the source's live regions this one is in, if any. */
  owner?: Set<Region>;
  /** Read-only (immutable) buffers registered and not yet collected. */
  readonly: number;
  /**
   * A writable buffer was moved out of memkit's reach (a transfer that got
   * past the guard): the range is never unmapped, only scrubbed to private
   * zero pages, so the moved buffer can never fault.
   */
  pinned: boolean;
}

const registry = new FinalizationRegistry<Region>((region) => {
  region.refs--;
  if (region.refs === 0) unmapRegion(region);
});

function unmapRegion(region: Region): void {
  if (!region.live) return;
  region.live = false;
  region.backed = false;
  region.owner?.delete(region);
  if (region.pinned) lib().mk_map_scrub(region.address, BigInt(region.span));
  else lib().mk_map_unmap(region.address, BigInt(region.span));
}

const transfer = ArrayBuffer.prototype.transfer;

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

const readonlyRegistry = new FinalizationRegistry<Region>((region) => {
  region.readonly--;
  region.refs--;
  if (region.refs === 0) unmapRegion(region);
});

function holdReadonly(region: Region, target: ArrayBuffer): void {
  region.refs++;
  region.readonly++;
  readonlyRegistry.register(target, region);
}

function hold(region: Region, target: object): void {
  region.refs++;
  registry.register(target, region, target);
}

function letGo(region: Region, target: object): void {
  if (registry.unregister(target)) region.refs--;
}

/** A typed array constructor that {@linkcode Mapping.view} accepts. */
export interface TypedArrayConstructor<T> {
  /** Creates a view over `length` elements of `buffer` from `byteOffset`. */
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  /** The size of one element in bytes. */
  readonly BYTES_PER_ELEMENT: number;
}

/** What a new mapping is made of; internal to memkit. */
export interface MappingInit {
  /** The start address returned by mmap. */
  address: bigint;
  /** The length the caller asked for. */
  length: number;
  /** The protection it was mapped with. */
  access: Access;
  /** The highest access the source allows (a read-only file: `"r"`). */
  maxAccess: Access;
  /** What was mapped, for messages: `memfd:name` or a path. */
  name: string;
  /** The end of the window in the source. */
  end: number;
  /**
   * Bytes of the first mapped page before the view starts (default 0):
   * `address` is then the page-aligned mmap address, and the mapping's views,
   * `address` and `length` cover `[address + offset, address + offset + length)`.
   */
  offset?: number;
}

const CONSTRUCT = Symbol("memkit.Mapping");
let regionOfMapping: (m: Mapping) => Region | undefined;

/** The region behind a mapping; for memkit's own modules, not part of the API. */
export function regionOf(mapping: Mapping): Region {
  const region = regionOfMapping(mapping);
  if (!region) throw new TypeError("Cannot use this value: expected a memkit Mapping");
  return region;
}

/** Creates a Mapping; for memkit's own modules, not part of the API. */
export function createMapping(init: MappingInit): Mapping {
  return new Mapping(CONSTRUCT, init);
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
 *   with a read-only zero mapping, so stale read-only views read zeros, and
 *   that placeholder is unmapped once the last such view is collected;
 * - `protect()` detaches writable views before it takes write access away,
 *   and refuses `"none"` while read-only views are reachable.
 * - a writable view's buffer refuses `transfer()` (and its kin), since a
 *   moved buffer could outlive the mapping. A transfer list
 *   (`structuredClone`, `postMessage`) gets past that; memkit notices at the
 *   next `close()`, `protect()` or view of the mapping and from then on keeps
 *   the range mapped as private zero pages instead of unmapping it. A mapping
 *   left to the garbage collector after such a transfer is the one case
 *   memkit cannot cover: do not transfer views, copy them (`read()`).
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
    regionOfMapping = (m) => (#region in m ? m.#region : undefined);
  }
  #length: number;
  #offset: number;
  #access: Access;
  #maxAccess: Access;
  #name: string;
  #closed = false;
  #writable: ArrayBuffer | undefined;
  #readonly: ArrayBuffer | undefined;

  /**
   * Not for direct use: mappings come from `MemFd.map()` and `mapFile()`.
   *
   * @param token memkit's private construction token.
   * @param init What was mapped.
   */
  constructor(token: symbol, init: MappingInit) {
    if (token !== CONSTRUCT) {
      throw new TypeError("Cannot construct a Mapping directly: use MemFd.map() or mapFile()");
    }
    const offset = init.offset ?? 0;
    const span = roundUp(offset + init.length, pageSize());
    this.#offset = offset;
    this.#region = {
      address: init.address,
      span,
      refs: 0,
      live: true,
      backed: true,
      end: init.end,
      readonly: 0,
      pinned: false,
    };
    this.#length = init.length;
    this.#access = init.access;
    this.#maxAccess = init.maxAccess;
    this.#name = init.name;
    hold(this.#region, this);
  }

  /** The start address in this process, as a bigint. */
  get address(): bigint {
    return this.#region.address + BigInt(this.#offset);
  }

  /** The length in bytes. */
  get length(): number {
    return this.#length;
  }

  /** The current protection. */
  get access(): Access {
    return this.#access;
  }

  /** What is mapped: `memfd:<name>` or a file path. */
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

  #buffer(op: string): ArrayBuffer {
    this.#alive(op);
    if (this.#access === "rw") {
      if (this.#writable?.detached) this.#detachWritable(); // moved away: pins the region
      if (!this.#writable) {
        const ab = Deno.UnsafePointerView.getArrayBuffer(this.#pointer(), this.#length);
        Object.setPrototypeOf(ab, GUARDED);
        hold(this.#region, ab);
        this.#writable = ab;
      }
      return this.#writable;
    }
    if (this.#access === "none") {
      throw new TypeError(
        `Cannot ${op}: the mapping of "${this.#name}" has protection "none"; protect() it first`,
      );
    }
    if (!this.#readonly) {
      if (!readOnlyViewsSupported()) {
        throw new TypeError(`Cannot ${op} of read-only "${this.#name}": ${IMMUTABLE_HINT}`);
      }
      const raw = Deno.UnsafePointerView.getArrayBuffer(this.#pointer(), this.#length);
      const ro = (raw as unknown as { transferToImmutable(): ArrayBuffer }).transferToImmutable();
      holdReadonly(this.#region, ro);
      this.#readonly = ro;
    }
    return this.#readonly;
  }

  #pointer(): Deno.PointerObject {
    return Deno.UnsafePointer.create(this.#region.address + BigInt(this.#offset))!;
  }

  #range(offset: unknown, length: unknown, unit = 1): [number, number] {
    const off = inRange(offset, "offset", 0, this.#length);
    if (off % unit !== 0) {
      throw new RangeError(`Cannot use offset "${off}": not a multiple of ${unit}`);
    }
    const max = Math.floor((this.#length - off) / unit);
    const len = length === undefined ? max : inRange(length, "length", 0, max);
    return [off, len];
  }

  /**
   * A zero-copy byte view of the mapping (or of `length` bytes from
   * `offset`). Writable when the access is `"rw"`; an immutable view when it
   * is `"r"` (needs `--v8-flags=--js-immutable-arraybuffer`).
   *
   * @param offset The first byte, default 0.
   * @param length The number of bytes, default to the end.
   * @returns A `Uint8Array` over the mapped memory.
   *
   * @example
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
    return new Uint8Array(this.#buffer("view the mapping"), off, len);
  }

  /**
   * A zero-copy typed array view of the mapping.
   *
   * @param Ctor A typed array constructor, e.g. `Uint32Array`.
   * @param offset The first byte, a multiple of the element size; default 0.
   * @param length The number of elements, default as many as fit.
   * @returns An instance of `Ctor` over the mapped memory.
   *
   * @example
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
    if (typeof Ctor !== "function" || !Number.isInteger(Ctor.BYTES_PER_ELEMENT)) {
      throw new TypeError("Cannot create a view: expected a typed array constructor");
    }
    const [off, len] = this.#range(offset, length, Ctor.BYTES_PER_ELEMENT);
    return new Ctor(this.#buffer("view the mapping"), off, len);
  }

  /**
   * Copies bytes out of the mapping into a new `Uint8Array`: the way to read
   * a read-only mapping without immutable `ArrayBuffer` support.
   *
   * @param offset The first byte, default 0.
   * @param length The number of bytes, default to the end.
   * @returns A fresh copy.
   *
   * @example
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
    if (this.#access === "none") {
      throw new TypeError(`Cannot read "${this.#name}": its protection is "none"`);
    }
    const out = new Uint8Array(len);
    if (len > 0) new Deno.UnsafePointerView(this.#pointer()).copyInto(out, off);
    return out;
  }

  /**
   * Copies `data` into the mapping at `offset`. Needs access `"rw"`.
   *
   * @param data The bytes to write.
   * @param offset Where to write them, default 0.
   *
   * @example
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
    if (!(data instanceof Uint8Array)) {
      throw new TypeError("Cannot write: expected a Uint8Array");
    }
    const [off] = this.#range(offset, data.length);
    if (this.#access !== "rw") {
      throw new TypeError(`Cannot write "${this.#name}": its protection is "${this.#access}"`);
    }
    new Uint8Array(this.#buffer("write the mapping"), off, data.length).set(data);
  }

  /**
   * Changes the protection of the whole mapping (`mprotect`). Lowering it
   * first detaches the writable views the new protection would make unsafe;
   * `"none"` is refused while read-only views may still be reachable (a view
   * dropped by the caller counts until the garbage collector has seen it).
   *
   * @param access The new protection.
   * @throws {MemkitError} `EACCES` when the source allows less (a file opened
   * read-only), `EBUSY` for `"none"` while read-only views live.
   *
   * @example
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
   */
  protect(access: Access): void {
    const next = toAccess(access);
    this.#alive("protect the mapping");
    if (RANK[next] > RANK[this.#maxAccess]) {
      throw new MemkitError(13, "protect", {
        path: this.#name,
        hint: `it was opened for access "${this.#maxAccess}" only`,
      });
    }
    // The mapping's own read-only buffer goes with a protection change; views
    // the caller holds keep theirs alive (and keep "none" refused).
    if (next !== this.#access && next !== "r") this.#readonly = undefined;
    if (next === "none" && this.#readonlyLive()) {
      throw new MemkitError(16, "protect", {
        path: this.#name,
        hint: 'read-only views of it are still reachable and would fault under "none"; ' +
          "drop them, or close() the mapping instead",
      });
    }
    if (next === this.#access) return;
    if (RANK[next] < RANK.rw) {
      this.#detachWritable();
      if (this.#region.pinned) {
        throw new MemkitError(16, "protect", {
          path: this.#name,
          hint: "a writable view's buffer was transferred out of memkit's reach " +
            "(structuredClone or postMessage with a transfer list), so write access " +
            "cannot be taken away safely",
        });
      }
    }
    check(
      lib().mk_map_protect(this.#region.address, BigInt(this.#region.span), PROT[next]),
      "protect",
      { path: this.#name },
    );
    this.#access = next;
  }

  #readonlyLive(): boolean {
    return this.#region.readonly > 0;
  }

  #detachWritable(): void {
    const ab = this.#writable;
    if (!ab) return;
    this.#writable = undefined;
    letGo(this.#region, ab);
    // Detached already: someone moved it past the guard; memkit cannot reach
    // the moved buffer, so the range must stay mapped (scrubbed on close).
    if (ab.detached) this.#region.pinned = true;
    else transfer.call(ab, 0);
  }

  /**
   * Unmaps the memory. Writable views are detached first (they read
   * `undefined`); read-only views read zeros from then on. Idempotent.
   *
   * @example
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
    this.#closed = true;
    this.#detachWritable();
    letGo(this.#region, this);
    this.#readonly = undefined;
    const region = this.#region;
    region.backed = false;
    region.owner?.delete(region);
    if (!region.pinned && this.#readonlyLive()) {
      // Immutable buffers cannot be detached: swap the pages for zeros in
      // place; the registry unmaps the placeholder after their collection.
      const ret = lib().mk_map_placeholder(region.address, BigInt(region.span));
      if (ret < 0n) check(ret, "close", { path: this.#name });
    } else {
      unmapRegion(region);
    }
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    const state = this.#closed ? "closed" : `access "${this.#access}"`;
    return `Mapping { "${this.#name}", 0x${
      this.address.toString(16)
    }, ${this.#length} bytes, ${state} }`;
  }
}
