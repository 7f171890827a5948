/**
 * `SeqLock`: one writer, many readers of a record in shared memory; readers
 * never block the writer and retry when a write overlapped their read.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { readOptions, show } from "./_args.ts";
import { BigIntCtor } from "./_primordials.ts";
import { pidOf, selfIdentity, SharedWindow } from "./_shared_word.ts";
import { inRange, integer } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";

/** Options of {@linkcode SeqLock.read}. */
export interface SeqLockReadOptions {
  /**
   * How many attempts before giving up with `EAGAIN`: each is one call of
   * `fn` that a write overlapped, or a wait (spinning, then yielding the
   * CPU) for a write in progress to end. Default 1000.
   */
  maxRetries?: number;
}

const DEFAULT_RETRIES = 1000;
/** Spins of one wait for a write in progress (a sched_yield every 64). */
const SPINS = 1024;
const HEADER = MK.SEQLOCK_HEADER;
/** Whether this host is little-endian (the header is in host byte order). */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** The sequence bits of the sequence word (cbits/lock.c: SEQ_MASK). */
const SEQ_MASK = (1n << 62n) - 1n;

/**
 * A sequence lock over a record in shared memory: a 32-byte header
 * ({@linkcode SeqLock.headerLength}: magic, version, length, sequence,
 * writer) followed by `length` bytes of data, at an offset that is a
 * multiple of 8. One process writes (`write(fn)`: the sequence is odd while
 * `fn` runs); any number read (`read(fn)`), and `fn` runs again whenever a
 * write overlapped it, so what `read` returns was computed from one
 * consistent version of the data. A second writer is refused (`EBUSY`)
 * while the first lives; a writer that died mid-write is taken over by the
 * next one.
 *
 * `fn` gets a zero-copy view of the data. In `read`, it must only read, and
 * may see a half-written record on an attempt that is then thrown away:
 * compute a result from the view, do not act on it inside `fn`.
 *
 * Requires `--allow-ffi`.
 *
 * @example One record, written and read
 * ```ts
 * import { MemFd, SeqLock } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("seqlock", { size: 4096 });
 * using m = fd.map();
 * using seq = SeqLock.init(m, 0, 16);
 * seq.write((data) => new DataView(data.buffer, data.byteOffset).setFloat64(0, 1.5, true));
 * const value = seq.read((data) => new DataView(data.buffer, data.byteOffset).getFloat64(0, true));
 * assertEquals(value, 1.5);
 * ```
 */
export class SeqLock {
  /** The bytes of the header before the data (32). */
  static readonly headerLength: number = HEADER;

  #window: SharedWindow;
  #data: Uint8Array<ArrayBuffer>;
  #length: number;
  #sym = lib();
  #self = selfIdentity();
  #writing = false;
  #closed = false;

  /** @ignore */
  private constructor(window: SharedWindow, length: number) {
    this.#window = window;
    this.#length = length;
    this.#data = window.view.subarray(HEADER);
  }

  /**
   * Writes a new seqlock header at `offset` of `mapping`, for `length` bytes
   * of data after it (the data is left as it is).
   *
   * @param mapping A writable mapping of shared memory.
   * @param offset Where the header starts: a multiple of 8.
   * @param length The bytes of data after the header.
   * @returns The seqlock.
   *
   * @example Put a seqlock in shared memory
   * ```ts
   * import { MemFd, SeqLock } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("seqlock-init", { size: 4096 });
   * using m = fd.map();
   * using seq = SeqLock.init(m, 0, 64);
   * assertEquals(seq.length, 64);
   * ```
   */
  static init(mapping: Mapping, offset: number, length: number): SeqLock {
    const n = inRange(length, "length", 0, 2 ** 32 - 1 - HEADER);
    const w = new SharedWindow(mapping, offset, HEADER + n, "SeqLock");
    check(lib().mk_seqlock_init(w.at("init"), n), `init ${w.label}`, { path: w.mapping.name });
    // Its readers go on reading if the mapping later becomes read-only.
    return new SeqLock(new SharedWindow(mapping, offset, HEADER + n, "SeqLock", "r"), n);
  }

  /**
   * Attaches to the seqlock that `init()` wrote at `offset`, after checking
   * its header and that its data fits the mapping.
   *
   * A reader needs only read access: over a read-only mapping (a page that
   * another process, or the kernel, writes) `read()` works and `write()` is
   * a `TypeError`. Reading through a read-only mapping gives `fn` an
   * immutable view, which needs `--v8-flags=--js-immutable-arraybuffer`.
   *
   * @param mapping A mapping of the same memory: read-write to write, read-only is enough to read.
   * @param offset Where `init()` placed it.
   * @returns The seqlock.
   * @throws {MemkitError} `EBADMSG` when the bytes there are no seqlock of this version.
   *
   * @example Use a seqlock another mapping created
   * ```ts
   * import { MemFd, SeqLock } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("seqlock-attach", { size: 4096 });
   * using m = fd.map();
   * SeqLock.init(m, 64, 8);
   * assertEquals(SeqLock.attach(m, 64).length, 8);
   * ```
   *
   * @example A reader over a read-only mapping
   * ```ts
   * import { MemFd, SeqLock } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("seqlock-reader", { size: 4096 });
   * using rw = fd.map();
   * using ro = fd.map({ access: "r" });
   * using writer = SeqLock.init(rw, 0, 4);
   * writer.write((data) => data.set([1, 2, 3, 4]));
   * using reader = SeqLock.attach(ro, 0);
   * assertEquals(reader.read((data) => data[3]), 4);
   * assertThrows(() => reader.write(() => {}), TypeError); // read-only
   * ```
   */
  static attach(mapping: Mapping, offset: number): SeqLock {
    const head = new SharedWindow(mapping, offset, HEADER, "SeqLock", "r");
    const n = check(lib().mk_seqlock_check(head.at("attach")), `attach ${head.label}`, {
      path: head.mapping.name,
      hints: {
        EBADMSG: `its header does not read as a SeqLock of version ${MK.SEQLOCK_VERSION} ` +
          "(never initialized, another structure, or corrupt)",
      },
    });
    if (head.offset + HEADER + n > head.mapping.length) {
      throw new MemkitError(ERRNO.EBADMSG, `attach ${head.label}`, {
        path: head.mapping.name,
        hint: `its header says ${n} bytes of data, past the end of the mapping ` +
          `(${head.mapping.length} bytes)`,
      });
    }
    return new SeqLock(new SharedWindow(mapping, offset, HEADER + n, "SeqLock", "r"), n);
  }

  /** The bytes of data after the header. */
  get length(): number {
    return this.#length;
  }

  /** Where the header starts in its mapping. */
  get offset(): number {
    return this.#window.offset;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #at(op: string): bigint {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op} ${this.#window.label}: it is closed`);
    }
    const w = this.#window;
    if (w.view[0] === undefined || (!w.writable && w.mapping.closed)) {
      w.refresh(op);
      this.#data = w.view.subarray(HEADER);
    }
    return w.address;
  }

  /**
   * Runs `fn` as the writer: readers retry until it returns. Not reentrant.
   *
   * @param fn Writes the new record into the view it gets.
   * @returns What `fn` returned.
   * @throws {MemkitError} `EBUSY` while another live process writes,
   * `EDEADLK` inside another `write()` of this process.
   * @throws {TypeError} When the mapping is read-only there.
   *
   * @example Write the protected bytes
   * ```ts
   * import { MemFd, SeqLock } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("seqlock-write", { size: 4096 });
   * using m = fd.map();
   * using seq = SeqLock.init(m, 0, 4);
   * seq.write((data) => data.set([1, 2, 3, 4]));
   * assertEquals(seq.read((data) => [...data]), [1, 2, 3, 4]);
   * ```
   */
  write<T>(fn: (data: Uint8Array<ArrayBuffer>) => T): T {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot use fn "${show(fn)}": expected a function`);
    }
    const address = this.#at("write");
    const w = this.#window;
    if (!w.writable) {
      // A read-only view: the mapping may have become writable since.
      w.refresh("write");
      this.#data = w.view.subarray(HEADER);
    }
    if (!w.writable) {
      const access = w.mapping.accessAt(w.offset);
      throw new TypeError(
        `Cannot write ${w.label} "${w.mapping.name}": ` +
          (access === "rw"
            ? "a protection key keeps it read-only"
            : `the mapping is read-only there (access "${access}")`) +
          '; a writer needs access "rw"',
      );
    }
    if (this.#writing) this.#fail(-BigIntCtor(ERRNO.EDEADLK), "write");
    const r = this.#sym.mk_seqlock_write_begin(address, this.#self);
    if (r < 0n) this.#fail(r, "write");
    this.#writing = true;
    try {
      return fn(this.#data);
    } finally {
      this.#writing = false;
      const end = this.#sym.mk_seqlock_write_end(address, this.#self);
      if (end < 0n) this.#fail(end, "end the write of");
    }
  }

  /**
   * Runs `fn` over the data until no write overlapped it, and returns what
   * it returned. An exception from `fn` on an overlapped attempt is thrown
   * away (the record was half-written); on a clean attempt it propagates.
   *
   * @param fn Reads the view it gets and computes a result from it.
   * @param options `maxRetries` (default 1000).
   * @returns What `fn` returned on a clean attempt.
   * @throws {MemkitError} `EAGAIN` when every attempt overlapped a write (a
   * writer that writes without pause, or one that died mid-write).
   *
   * @example Read a consistent snapshot
   * ```ts
   * import { MemFd, SeqLock } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("seqlock-read", { size: 4096 });
   * using m = fd.map();
   * using seq = SeqLock.init(m, 0, 8);
   * seq.write((data) => data.fill(9));
   * assertEquals(seq.read((data) => data[7], { maxRetries: 10 }), 9);
   * ```
   */
  read<T>(fn: (data: Uint8Array<ArrayBuffer>) => T, options?: SeqLockReadOptions): T {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot use fn "${show(fn)}": expected a function`);
    }
    const retries = options === undefined ? DEFAULT_RETRIES : inRange(
      integer(
        readOptions(options, "options", ["maxRetries"] as const).maxRetries ??
          DEFAULT_RETRIES,
        "maxRetries",
      ),
      "maxRetries",
      1,
      Number.MAX_SAFE_INTEGER,
    );
    const sym = this.#sym;
    let address = this.#at("read");
    let waits = 0;
    let overlaps = 0;
    for (let attempt = 0; attempt < retries; attempt++) {
      const seq = sym.mk_seqlock_read_begin(address, SPINS);
      if (seq < 0n) {
        if (seq === -BigIntCtor(ERRNO.EAGAIN)) {
          waits++;
          continue;
        }
        if (this.#window.stale) {
          address = this.#at("read");
          continue;
        }
        this.#fail(seq, "read");
      }
      let out: T;
      try {
        out = fn(this.#data);
      } catch (e) {
        if (sym.mk_seqlock_read_end(address, seq) === 0n) throw e;
        overlaps++;
        continue;
      }
      if (sym.mk_seqlock_read_end(address, seq) === 0n) return out;
      overlaps++;
    }
    const writer = sym.mk_seqlock_writer(address);
    const view = this.#window.view;
    const now = new DataView(view.buffer, view.byteOffset, HEADER).getBigUint64(16, LITTLE) &
      SEQ_MASK;
    const who = writer > 0n
      ? `pid ${pidOf(writer)} is writing (${
        sym.mk_lock_alive(writer) === 1n ? "alive" : "dead: the next write() takes over"
      })`
      : now & 1n
      ? `a write is in progress (sequence ${now}, odd) by a writer that records no identity ` +
        "(a kernel writer, or one that broke the protocol)"
      : "no write is in progress now";
    throw new MemkitError(ERRNO.EAGAIN, `read ${this.#window.label}`, {
      path: this.#window.mapping.name,
      hint: `gave up after ${retries} attempts (${waits} found a write in progress, ` +
        `${overlaps} overlapped one); ${who}`,
    });
  }

  #fail(r: bigint, op: string): never {
    const w = this.#window;
    if (r === -BigIntCtor(ERRNO.EBADMSG) && w.stale) w.refresh(op);
    const writer = this.#sym.mk_seqlock_writer(w.address);
    check(r, `${op} ${w.label}`, {
      path: w.mapping.name,
      hints: {
        EBUSY: `pid ${pidOf(writer)} is writing it (a SeqLock has one writer at a time)`,
        EDEADLK: "this process is writing it already (write() is not reentrant)",
        EPERM: "this process is not its writer any more (a peer took the write over)",
        EBADMSG: `its header no longer reads as a SeqLock of version ${MK.SEQLOCK_VERSION}: ` +
          "the memory was overwritten",
      },
    });
    throw new MemkitError(Number(-r), op); // unreachable: check() threw
  }

  /** Detaches from the seqlock; the memory is untouched. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
