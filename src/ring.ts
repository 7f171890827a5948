/**
 * `RingBuffer`: a byte ring whose storage is mapped twice, back to back, so
 * that every readable or writable region is one contiguous zero-copy view,
 * wrap-around included.
 *
 * @module
 */

import { readOptions, string, typedLength } from "./_args.ts";
import { TypedArrayPrototypeSet } from "./_primordials.ts";
import { check } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { cString, inRange, MAX_BYTES } from "./_validate.ts";
import { createMapping, type Mapping } from "./mapping.ts";

/** Options of {@linkcode RingBuffer.create}. */
export interface RingBufferOptions {
  /** A name for the memfd behind the ring, as `/proc/<pid>/maps` shows it. Default `"ring"`. */
  name?: string;
}

/**
 * A single-threaded byte ring of `size` bytes over a memfd mapped twice in a
 * row: byte `i` and byte `i + size` are the same memory, so the free space
 * and the pending bytes are each one contiguous view, however the ring has
 * wrapped. Nothing is ever overwritten: writing more than the free space is
 * a `RangeError`, and full and empty are told apart (`readable` is `size`
 * when full, 0 when empty).
 *
 * Zero-copy producers `reserve(n)` a view, fill it, and `commit(n)`;
 * consumers `peek()` at the pending bytes and `consume(n)` them. `write()`
 * and `read()` copy, for convenience. Views are detached by `close()`.
 *
 * Requires `--allow-ffi`.
 *
 * @example Wrap-around without a split
 * ```ts
 * import { RingBuffer } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using ring = RingBuffer.create(4096);
 * ring.write(new Uint8Array(4000));
 * ring.consume(4000); // the next write starts 96 bytes before the end
 * const view = ring.reserve(200); // one view across the end of the storage
 * view.fill(7);
 * ring.commit(200);
 * assertEquals(ring.peek().length, 200);
 * assertEquals(ring.peek()[199], 7);
 * ```
 */
export class RingBuffer {
  #mapping: Mapping;
  #size: number;
  #head = 0; // bytes consumed so far
  #tail = 0; // bytes committed so far
  #reserved = 0;
  #closed = false;
  #bytes: Uint8Array<ArrayBuffer>;

  /** @ignore */
  private constructor(mapping: Mapping, size: number) {
    this.#mapping = mapping;
    this.#size = size;
    this.#bytes = mapping.bytes();
  }

  /**
   * Creates a ring of `size` bytes: a multiple of the page size.
   *
   * @param size The capacity in bytes.
   * @param options A name for the memfd.
   * @returns The empty ring.
   *
   * @example A 64 KiB ring
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(65536);
   * assertEquals([ring.size, ring.readable, ring.writable], [65536, 0, 65536]);
   * ```
   */
  static create(size: number, options?: RingBufferOptions): RingBuffer {
    const opts = readOptions(options, "options", ["name"] as const);
    const page = pageSize();
    const n = inRange(size, "size", page, MAX_BYTES / 2);
    if (n % page !== 0) {
      throw new RangeError(`Cannot use size "${n}": not a multiple of the page size (${page})`);
    }
    const name = string(opts.name ?? "ring", "name");
    const cname = cString(name, "name");
    const fd = check(lib().mk_memfd_create(cname, 0), "create memfd", { path: name });
    try {
      check(lib().mk_memfd_resize(fd, BigInt(n), null), "resize", { path: `memfd:${name}` });
      const address = lib().mk_ring_map(fd, BigInt(n));
      if (address < 0n) check(address, "map ring", { path: `memfd:${name}` });
      const source = {};
      const mapping = createMapping({
        address,
        length: 2 * n,
        access: "rw",
        maxAccess: "rw",
        name: `ring:${name}`,
        pieces: [
          { source, offset: 0, at: 0, length: n },
          { source, offset: 0, at: n, length: n },
        ],
      });
      return new RingBuffer(mapping, n);
    } finally {
      lib().mk_core_close(fd); // the two mappings keep the memory
    }
  }

  #alive(op: string): void {
    if (this.#closed) throw new Deno.errors.BadResource(`Cannot ${op}: the ring is closed`);
  }

  /** The capacity in bytes. */
  get size(): number {
    return this.#size;
  }

  /** How many bytes are committed and not yet consumed. */
  get readable(): number {
    return this.#tail - this.#head;
  }

  /** How many bytes can be written now. */
  get writable(): number {
    return this.#size - (this.#tail - this.#head);
  }

  /** The start address of the double mapping (the second copy is `size` bytes on). */
  get address(): bigint {
    return this.#mapping.address;
  }

  /** The address after the double mapping (exclusive): `address + 2 * size`, as a bigint. */
  get end(): bigint {
    return this.#mapping.end;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A writable view of the next `n` bytes of free space, contiguous even
   * across the end of the storage. Write into it, then `commit()`. A new
   * `reserve()` replaces the previous reservation.
   *
   * @param n How many bytes, at most `writable`; default all of them.
   * @returns A `Uint8Array` over the ring's memory.
   * @throws {RangeError} When `n` is more than the free space.
   *
   * @example Reserve, write in place, commit
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * new TextEncoder().encodeInto("hello", ring.reserve(5));
   * ring.commit(5);
   * assertEquals(new TextDecoder().decode(ring.peek()), "hello");
   * ```
   */
  reserve(n?: number): Uint8Array<ArrayBuffer> {
    this.#alive("reserve");
    const free = this.writable;
    const len = n === undefined ? free : this.#count(n, free, "reserve", "free");
    this.#reserved = len;
    const start = this.#tail % this.#size;
    return this.#bytes.subarray(start, start + len);
  }

  /**
   * Makes `n` reserved bytes readable.
   *
   * @param n How many of the reserved bytes, default all of them.
   * @throws {RangeError} When `n` is more than was reserved.
   *
   * @example Commit fewer bytes than reserved
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * ring.reserve(100).fill(1);
   * ring.commit(10); // only 10 of the 100 were used
   * assertEquals(ring.readable, 10);
   * ```
   */
  commit(n?: number): void {
    this.#alive("commit");
    const len = n === undefined
      ? this.#reserved
      : this.#count(n, this.#reserved, "commit", "reserved");
    this.#tail += len;
    this.#reserved = 0;
  }

  /**
   * Copies `data` in (one copy, into the contiguous free space).
   *
   * @param data The bytes.
   * @throws {RangeError} When they do not fit: the ring never overwrites.
   *
   * @example A full ring refuses more
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * ring.write(new Uint8Array(4096)); // full
   * assertThrows(() => ring.write(new Uint8Array(1)), RangeError);
   * ```
   */
  write(data: Uint8Array): void {
    this.#alive("write");
    // The length from the engine's slot, not a `length` the caller redefined.
    const n = typedLength(data, "Uint8Array", "data");
    this.#count(n, this.writable, "write", "free");
    const start = this.#tail % this.#size;
    TypedArrayPrototypeSet(this.#bytes, data, start);
    this.#tail += n;
    this.#reserved = 0;
  }

  /**
   * A view of the `n` oldest readable bytes (default all), contiguous even
   * across the end of the storage. They stay in the ring until `consume()`.
   * The view is writable (the ring is one mapping), but bytes written through
   * it are the pending data, not free space.
   *
   * @param n How many bytes, at most `readable`; default all of them.
   * @returns A `Uint8Array` over the ring's memory.
   *
   * @example Look without consuming
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * ring.write(new Uint8Array([1, 2, 3]));
   * assertEquals([...ring.peek(2)], [1, 2]);
   * ```
   */
  peek(n?: number): Uint8Array<ArrayBuffer> {
    this.#alive("peek");
    const have = this.readable;
    const len = n === undefined ? have : this.#count(n, have, "peek at", "readable");
    const start = this.#head % this.#size;
    return this.#bytes.subarray(start, start + len);
  }

  /**
   * Drops the `n` oldest readable bytes (default all), making room.
   *
   * @param n How many, at most `readable`.
   *
   * @example Consume part of what is readable
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * ring.write(new Uint8Array(10));
   * ring.consume(4);
   * assertEquals(ring.readable, 6);
   * ```
   */
  consume(n?: number): void {
    this.#alive("consume");
    const have = this.readable;
    this.#head += n === undefined ? have : this.#count(n, have, "consume", "readable");
  }

  /**
   * Copies out and consumes the `n` oldest readable bytes (default all).
   *
   * @param n How many, at most `readable`.
   * @returns A fresh copy.
   *
   * @example Read and consume in one call
   * ```ts
   * import { RingBuffer } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using ring = RingBuffer.create(4096);
   * ring.write(new Uint8Array([5, 6]));
   * assertEquals(ring.read(), new Uint8Array([5, 6]));
   * assertEquals(ring.readable, 0);
   * ```
   */
  read(n?: number): Uint8Array<ArrayBuffer> {
    const out = this.peek(n).slice();
    this.#head += out.length;
    return out;
  }

  #count(n: unknown, max: number, op: string, what: string): number {
    // The common case first, without a call: this runs once per message.
    if (typeof n === "number" && n >= 0 && n <= max && Number.isInteger(n)) return n;
    const len = inRange(n, "length", 0, Number.MAX_SAFE_INTEGER);
    throw new RangeError(`Cannot ${op} ${len} bytes: only ${max} ${what}`);
  }

  /** Unmaps the ring; views handed out are detached (they read `undefined`). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#mapping.close();
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.closed
      ? "RingBuffer { closed }"
      : `RingBuffer { ${this.#size} bytes, ${this.readable} readable, ${this.writable} writable }`;
  }
}
